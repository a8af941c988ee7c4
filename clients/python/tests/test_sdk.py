"""The Python SDK against a real floatd server process (SQLite, or PostgreSQL with FLOATD_TEST_STORE=postgres)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import pytest

from floatd import FakeClock, FloatingLicense, FloatingLicenseError
from floatd import routes
from harness import ROOT, Proxy


def make(server, lic, tmp_path, **kw):
    opts = dict(server_url=server.url, license_key=lic["key"], state_dir=str(tmp_path / "state"), fingerprint="py-test-device-1",
                clock=FakeClock(), handle_exit=False, random=lambda: 0.5, hostname="h", user="u")
    opts.update(kw)
    return FloatingLicense(**opts)


def seats_used(server, lic) -> int:
    return server.admin("GET", f"/v1/admin/licenses/{lic['id']}")[1]["seatsUsed"]


def test_routes_match_the_protocol_declarations():
    text = open(os.path.join(ROOT, "packages", "protocol", "src", "routes", "client.ts")).read()
    declared = set(re.findall(r"method: '(\w+)',\s*\n\s*path: '([^']+)'", text))
    mine = {(r.method, r.path) for r in routes.CLIENT_ROUTES}
    assert declared == mine


def test_checkout_heartbeat_checkin_and_context_manager(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 300, "heartbeatIntervalSeconds": 60})
    a = make(server, lic, tmp_path)
    renewed = []
    a.on("renewed", lambda s: renewed.append(s))
    r = a.checkout()
    assert r.ok and r.source == "server" and r.created
    # The checkout's answer is an RFC 9421 message signature (the SDK sends Accept-Signature), Ed25519 by the server key.
    assert a.api.last_verified_by == "MessageSignatureVerifier"
    assert seats_used(server, lic) == 1
    st = a.status()
    assert st.state == "online" and st.valid and st.seats_total == 1 and st.token
    a.clock.advance(60)  # type: ignore[attr-defined]
    assert len(renewed) == 1
    # The heartbeat's answer is HMAC-SHA256-signed under the session key the checkout agreed.
    assert a.api.last_verified_by == "SessionKeyVerifier"
    b = make(server, lic, tmp_path / "b", fingerprint="py-test-device-2")
    denied = b.checkout()
    assert not denied.ok and denied.code == "NO_SEATS_AVAILABLE" and denied.seats_total == 1 and "all 1 seats are in use" in denied.message
    assert b.api.last_verified_by == "MessageSignatureVerifier"  # a refusal: Ed25519
    assert a.checkin().released
    assert a.api.last_verified_by == "SessionKeyVerifier"
    assert seats_used(server, lic) == 0
    with make(server, lic, tmp_path / "c", fingerprint="py-test-device-3") as c:
        assert c.status().valid and seats_used(server, lic) == 1
    assert seats_used(server, lic) == 0
    b.close(checkin=False)


def test_wait_for_a_seat(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 300})
    holder = make(server, lic, tmp_path / "h", fingerprint="py-holder-01")
    assert holder.checkout().ok
    waiter = make(server, lic, tmp_path / "w", fingerprint="py-waiter-01", wait_interval_seconds=15)
    waits = []

    def on_waiting(info):
        waits.append(info)
        if len(waits) == 2:
            holder.checkin()

    waiter.on("waiting", on_waiting)
    r = waiter.checkout(wait=True, timeout=600)
    assert r.ok and r.created and len(waits) == 2
    timed = make(server, lic, tmp_path / "t", fingerprint="py-waiter-02")
    r2 = timed.checkout(wait=True, timeout=40)
    assert not r2.ok and r2.timed_out
    waiter.close()
    timed.close(checkin=False)


def test_retry_after_is_honoured(server, tmp_path):
    lic = server.make_license({"seats": 1})
    proxy = Proxy(server.url)
    left = [2]

    def busy(method, path, status, headers, body):
        if path.startswith("/v1/client/checkout") and left[0] > 0:
            left[0] -= 1
            return 429, {"retry-after": "120", "content-type": "application/json"}, b'{"error":{"code":"RATE_LIMITED","message":"slow down"}}'
        return None

    proxy.rewrite = busy
    try:
        c = make(server, lic, tmp_path, server_url=proxy.url)
        retries = []
        c.on("retry", lambda r: retries.append(r))
        r = c.checkout()
        assert r.ok
        assert [x["error"].code for x in retries] == ["RATE_LIMITED", "RATE_LIMITED"]
        assert all(x["delay"] >= 120 for x in retries)
        c.close()
    finally:
        proxy.close()


def test_tampered_state_is_refused(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": None})
    proxy = Proxy(server.url)
    try:
        a = make(server, lic, tmp_path, server_url=proxy.url)
        assert a.checkout().ok
        a.close(checkin=False)
        path = os.path.join(a.state.dir, "lease.json")  # type: ignore[union-attr]
        outer = json.load(open(path))
        body = json.loads(outer["body"])
        body["receivedAt"] += 10**9
        outer["body"] = json.dumps(body)
        json.dump(outer, open(path, "w"))
        proxy.down = True
        b = make(server, lic, tmp_path, server_url=proxy.url, retry=None)
        with pytest.raises(FloatingLicenseError) as e:
            b.checkout()
        assert e.value.code == "INVALID_SIGNATURE"
        assert not os.path.exists(path)
    finally:
        proxy.close()


def test_fixed_server_keys_refuse_another_server(server, tmp_path):
    lic = server.make_license({"seats": 1})
    other = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}
    c = make(server, lic, tmp_path, server_public_keys=other)
    with pytest.raises(FloatingLicenseError) as e:
        c.checkout()
    assert e.value.code == "INVALID_SIGNATURE"
    jwks = json.loads(__import__("urllib.request").request.urlopen(server.url + "/.well-known/jwks.json").read())
    ok = make(server, lic, tmp_path / "ok", server_public_keys=jwks)
    assert ok.checkout().ok
    ok.close()


def test_background_thread_renews_with_the_system_clock(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 10, "heartbeatIntervalSeconds": 1})
    c = FloatingLicense(server_url=server.url, license_key=lic["key"], state_dir=str(tmp_path / "s"), fingerprint="py-thread-01", handle_exit=False)
    renewed = threading.Event()
    c.on("renewed", lambda s: renewed.set())
    assert c.checkout().ok
    assert renewed.wait(15), "no heartbeat from the renewal thread"
    c.close()
    assert seats_used(server, lic) == 0


def test_check_in_at_exit(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 300})
    prog = (
        "import sys; sys.path.insert(0, sys.argv[1]); from floatd import FloatingLicense\n"
        "lic = FloatingLicense(server_url=sys.argv[2], license_key=sys.argv[3], state_dir=sys.argv[4], fingerprint='py-exit-01')\n"
        "assert lic.checkout().ok\nprint('held', flush=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", prog, os.path.join(ROOT, "clients", "python"), server.url, lic["key"], str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "held" in r.stdout, r.stderr
    assert seats_used(server, lic) == 0


def test_example_program(server, tmp_path):
    lic = server.make_license({"seats": 1})
    r = subprocess.run([sys.executable, os.path.join(ROOT, "clients", "python", "examples", "app.py"), "--seconds", "0"],
                       env={**os.environ, "FLOATD_URL": server.url, "LICENSE_KEY": lic["key"], "FLOATD_STATE_DIR": str(tmp_path / "e"),
                            "PYTHONPATH": os.path.join(ROOT, "clients", "python")},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "licensed" in r.stdout
    assert seats_used(server, lic) == 0


def _signed(private_key, *, status=200, method="POST", target="/v1/client/leases/lse_1/heartbeat?x=1", nonce="n0nce_AbC",
            body=b'{"ok":true}', alg="ed25519", date="2026-12-05T18:00:00.250Z", created=None, kid="k1"):
    """An answer signed the way the server signs one (protocol/src/messageSignature.ts)."""
    import base64
    from floatd.http import COVERED_COMPONENTS, SignedAnswer, digest_header, signature_base
    digest = digest_header(body)
    params = f'{COVERED_COMPONENTS};created={created if created is not None else 1796493600};keyid="{kid}";alg="{alg}";nonce="{nonce}"'
    sig = base64.b64encode(private_key.sign(signature_base(status, method, target, digest, date, params).encode())).decode()
    headers = {"signature-input": f"floatd={params}", "signature": f"floatd=:{sig}:", "floatd-date": date, "content-digest": digest}
    return lambda **over: SignedAnswer(**{"status": status, "method": method, "path": target, "nonce": nonce, "headers": headers,
                                          "body": body, **over})


def test_message_signature_verifier_refuses_what_is_not_the_servers_answer_to_this_request():
    import base64
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from floatd import MessageSignatureVerifier

    key = Ed25519PrivateKey.generate()

    def check(kid, data, sig):
        assert kid == "k1"
        try:
            key.public_key().verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)), data)
        except InvalidSignature:
            raise FloatingLicenseError("INVALID_SIGNATURE", "does not verify") from None

    v = MessageSignatureVerifier(check)
    answer = _signed(key)
    assert v.verify(answer()) is True
    refused = {
        "another request's nonce (a replay)": answer(nonce="other_nonce"),
        "another status": answer(status=403),
        "another path": answer(path="/v1/client/leases/lse_2/heartbeat?x=1"),
        "another query": answer(path="/v1/client/leases/lse_1/heartbeat?x=2"),
        "another method": answer(method="DELETE"),
        "another body": answer(body=b'{"ok":false}'),
    }
    for what, a in refused.items():
        with pytest.raises(FloatingLicenseError) as e:
            v.verify(a)
        assert e.value.code == "INVALID_SIGNATURE", what
    for what, a in {
        "created that is not the date": _signed(key, created=1796493601)(),
        "an HMAC under a session key it never offered": _signed(key, alg="hmac-sha256")(),
        "another key's signature": _signed(Ed25519PrivateKey.generate())(),
    }.items():
        with pytest.raises(FloatingLicenseError) as e:
            v.verify(a)
        assert e.value.code == "INVALID_SIGNATURE", what
    # Without Signature-Input the answer is not this verifier's (the legacy verifier, or "unsigned", decides).
    bare = answer()
    assert v.verify(type(bare)(**{**bare.__dict__, "headers": {k: x for k, x in bare.headers.items() if k != "signature-input"}})) is False
