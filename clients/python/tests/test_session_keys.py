"""Session keys (issue #17) through the Python SDK against a real floatd server: the checkout agrees an X25519 key,
the answers on the use (heartbeat, check-in, feature changes) come HMAC-SHA256-signed under it, a heartbeat keeps
the held token until a third of the TTL is left, and a client that lost its key gets a new one. Forged HMAC answers
(altered, replayed, another key, an HMAC-signed error) are refused."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re

import pytest

from floatd import FloatingLicenseError, SessionKey, SessionKeyVerifier, SignedAnswer
from floatd.http import COVERED_COMPONENTS, MessageSignatureVerifier, digest_header, signature_base
from floatd.session_keys import agreed_key, new_offer, session_key_id, shared_secret
from harness import ROOT, Proxy, _node
from harness import sdk_client as make

HEARTBEAT = re.compile(r"^/v1/client/leases/[^/]+/heartbeat$")
CHECKIN = re.compile(r"^/v1/client/leases/[^/]+/checkin$")


def _hmac_headers(key: SessionKey, *, status: int, method: str, target: str, nonce: str, body: bytes,
                  date: str = "2026-12-05T18:00:00.250Z", keyid: str | None = None) -> dict[str, str]:
    """An answer's headers HMAC-signed the way the server signs one (protocol/src/messageSignature.ts)."""
    from datetime import datetime

    digest = digest_header(body)
    created = int(datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp())
    params = f'{COVERED_COMPONENTS};created={created};keyid="{keyid or key.keyid}";alg="hmac-sha256";nonce="{nonce}"'
    mac = hmac.new(key.key, signature_base(status, method, target, digest, date, params).encode(), hashlib.sha256).digest()
    return {"signature-input": f"floatd={params}", "signature": f"floatd=:{base64.b64encode(mac).decode()}:", "floatd-date": date,
            "content-digest": digest}


def _nonce_of(headers: dict[str, str]) -> str:
    m = re.search(r';nonce="([^"]+)"', headers.get("signature-input", ""))
    assert m, headers
    return m.group(1)


def _other_key() -> SessionKey:
    key = os.urandom(32)
    return SessionKey(session_key_id(key), key)


def test_session_key_derivation_matches_the_servers():
    """The key and its id, byte for byte as packages/protocol/src/sessionKeys.ts derives them; a low-order or
    malformed server half gives no key."""
    offer = new_offer()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", offer.x25519)
    out = json.loads(_node(
        f"import {{ x25519Pair, sharedSecret, sessionKeyOf, sessionKeyId }} from {json.dumps(os.path.join(ROOT, 'packages/protocol/dist/sessionKeys.js'))};"
        f"const p = x25519Pair(); const k = sessionKeyOf(sharedSecret(p.privateKey, {json.dumps(offer.x25519)}), 'lse_py1');"
        "console.log(JSON.stringify({ x: p.x25519, key: k.toString('hex'), keyid: sessionKeyId(k) }));"))
    key = agreed_key(offer, out["x"], "lse_py1")
    assert key is not None and key.key.hex() == out["key"] and key.keyid == out["keyid"]
    low_order = base64.urlsafe_b64encode(bytes([1] + [0] * 31)).decode().rstrip("=")  # u = 1: the shared secret is all zeros
    for bad in ("A" * 43, low_order, "not-a-key", None, 42):
        assert shared_secret(offer.private_key, bad) is None and agreed_key(offer, bad, "lse_py1") is None


def test_session_key_verifier_refuses_hmac_answers_that_are_not_this_requests_under_its_key():
    key = _other_key()
    v = SessionKeyVerifier()
    target, nonce, body = "/v1/client/leases/lse_1/heartbeat", "n0nce_AbC", b'{"ok":true}'

    def answer(*, headers=None, **over):
        base = dict(status=200, method="POST", path=target, nonce=nonce, body=body, session_key=key)
        base.update(over)
        h = headers or _hmac_headers(key, status=base["status"], method="POST", target=target, nonce=nonce, body=body)
        return SignedAnswer(headers=h, **base)

    assert v.verify(answer()) is True
    good = _hmac_headers(key, status=200, method="POST", target=target, nonce=nonce, body=body)
    flipped = base64.b64decode(good["signature"][len("floatd=:"):-1])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    stranger = _other_key()
    refused = {
        "an altered HMAC": answer(headers={**good, "signature": f"floatd=:{base64.b64encode(flipped).decode()}:"}),
        "another request's nonce (a replay)": answer(nonce="other_nonce"),
        "another path": answer(path="/v1/client/leases/lse_2/heartbeat"),
        "another body": answer(body=b'{"ok":false}'),
        "another key under the held key's id": answer(headers=_hmac_headers(SessionKey(key.keyid, stranger.key), status=200, method="POST",
                                                                           target=target, nonce=nonce, body=body)),
        "another key id": answer(headers=_hmac_headers(stranger, status=200, method="POST", target=target, nonce=nonce, body=body)),
        "a request that named no key": answer(session_key=None),
        "an HMAC-signed error": answer(status=403, headers=_hmac_headers(key, status=403, method="POST", target=target, nonce=nonce, body=body)),
        "created that is not the date": answer(headers={**good, "floatd-date": "2026-12-05T18:00:01.250Z"}),
    }
    for what, a in refused.items():
        with pytest.raises(FloatingLicenseError) as e:
            v.verify(a)
        assert e.value.code == "INVALID_SIGNATURE", what
    # An Ed25519 answer is not this verifier's (MessageSignatureVerifier decides), nor is one without Signature-Input;
    # an HMAC answer that reaches MessageSignatureVerifier is refused there.
    ed = {**good, "signature-input": good["signature-input"].replace('alg="hmac-sha256"', 'alg="ed25519"')}
    assert v.verify(answer(headers=ed)) is False
    assert v.verify(answer(headers={k: x for k, x in good.items() if k != "signature-input"})) is False
    with pytest.raises(FloatingLicenseError):
        MessageSignatureVerifier(lambda *_: None).verify(answer())


def test_answers_on_the_use_are_hmac_signed_and_the_token_is_kept_until_a_third_of_the_ttl_is_left(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 300, "heartbeatIntervalSeconds": 30, "features": [{"name": "render", "seats": 1}]})
    proxy = Proxy(server.url)
    heartbeats: list[dict] = []

    def watch(method, path, status, headers, body):
        if HEARTBEAT.match(path) and status == 200:
            heartbeats.append({"token": "token" in json.loads(body), "input": headers.get("signature-input", "")})
        return None

    proxy.rewrite = watch
    try:
        a = make(server, lic, tmp_path, server_url=proxy.url, fingerprint="py-ses-device-1")
        renewed = []
        a.on("renewed", renewed.append)
        assert a.checkout().ok
        assert a.api.last_verified_by == "MessageSignatureVerifier"  # the checkout (and the key's exchange): Ed25519
        key = a.api.session_key
        assert key is not None and re.fullmatch(r"ses_[A-Za-z0-9_-]{22}", key.keyid)
        token = a.status().token
        stored = a.state.read_sealed("lease.json").data  # type: ignore[union-attr]
        first_expiry = a.status().lease_expires_at
        assert first_expiry is not None

        # Heartbeats every 28.5 s (30 s less the jitter): the answers are HMAC-signed under the key the requests named,
        # carry no token while the held one has more than a third of the 300 s TTL left, and the lease still extends.
        a.clock.advance(30)  # type: ignore[attr-defined]
        assert len(renewed) == 1 and a.api.last_verified_by == "SessionKeyVerifier"
        assert f';keyid="{key.keyid}";alg="hmac-sha256"' in heartbeats[-1]["input"] and not heartbeats[-1]["token"]
        st = a.status()
        assert st.state == "online" and st.valid and st.token == token and st.lease_expires_at > first_expiry  # type: ignore[operator]
        assert a.state.read_sealed("lease.json").data == stored  # type: ignore[union-attr]
        a.clock.advance(6 * 28.5)  # type: ignore[attr-defined]  # the 7th heartbeat at 199.5 s: 100.5 s of the token left
        assert len(renewed) == 7 and [h["token"] for h in heartbeats] == [False] * 7
        assert a.status().token == token and a.state.read_sealed("lease.json").data == stored  # type: ignore[union-attr]
        # The 8th at 228 s: 72 s left (a third or less): it asks for a new token, still HMAC-signed, and keeps it.
        a.clock.advance(28.5)  # type: ignore[attr-defined]
        assert len(renewed) == 8 and heartbeats[-1]["token"] and a.api.last_verified_by == "SessionKeyVerifier"
        renewed_at = a.state.read_sealed("lease.json").data  # type: ignore[union-attr]
        assert renewed_at["receivedAt"] > stored["receivedAt"] and a.status().token == renewed_at["token"]
        # and the next one, with a fresh token, asks for none again
        a.clock.advance(28.5)  # type: ignore[attr-defined]
        assert len(renewed) == 9 and not heartbeats[-1]["token"] and a.status().valid

        # A feature change and the check-in: HMAC-signed too.
        assert a.set_features(["base", "render"]).features == ["base", "render"]
        assert a.api.last_verified_by == "SessionKeyVerifier"
        assert a.checkin().released
        assert a.api.last_verified_by == "SessionKeyVerifier"
        assert a.status().violations == []
    finally:
        proxy.close()


def test_forged_hmac_answers_are_refused_and_the_seat_kept(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 600, "heartbeatIntervalSeconds": 60})
    proxy = Proxy(server.url)
    forge: list[str] = []
    earlier: list[tuple[int, dict[str, str], bytes]] = []
    a = make(server, lic, tmp_path, server_url=proxy.url, fingerprint="py-ses-forged-1")

    def rewrite(method, path, status, headers, body):
        if not (HEARTBEAT.match(path) or CHECKIN.match(path)) or status != 200:
            return None
        if not forge:
            earlier.append((status, headers, body))
            return None
        mode = forge.pop(0)
        key, nonce = a.api.session_key, _nonce_of(headers)
        assert key is not None and 'alg="hmac-sha256"' in headers["signature-input"]
        if mode == "altered":
            mac = bytearray(base64.b64decode(headers["signature"][len("floatd=:"):-1]))
            mac[5] ^= 0x40
            return status, {**headers, "signature": f"floatd=:{base64.b64encode(bytes(mac)).decode()}:"}, body
        if mode == "replayed":  # an earlier genuine answer under the same key, for another request (its nonce)
            return earlier[-1]
        if mode == "another-key":  # the held key's id, another key's HMAC
            return status, {**headers, **_hmac_headers(SessionKey(key.keyid, os.urandom(32)), status=status, method=method, target=path,
                                                       nonce=nonce, body=body, date=headers["floatd-date"])}, body
        if mode == "another-keyid":
            return status, {**headers, **_hmac_headers(_other_key(), status=status, method=method, target=path, nonce=nonce, body=body,
                                                       date=headers["floatd-date"])}, body
        if mode == "hmac-error":  # a refusal HMAC-signed (even under the right key): the server signs errors with Ed25519
            forged = json.dumps({"error": {"code": "LICENSE_SUSPENDED", "message": "forged"}}).encode()
            return 403, {**headers, **_hmac_headers(key, status=403, method=method, target=path, nonce=nonce, body=forged,
                                                    date=headers["floatd-date"])}, forged
        raise AssertionError(mode)

    proxy.rewrite = rewrite
    try:
        retries, renewed, violations = [], [], []
        a.on("retry", retries.append)
        a.on("renewed", renewed.append)
        a.on("violation", violations.append)
        assert a.checkout().ok
        token = a.status().token
        a.clock.advance(60)  # type: ignore[attr-defined]
        assert len(renewed) == 1 and earlier
        for n, mode in enumerate(("altered", "replayed", "another-key", "another-keyid", "hmac-error"), start=1):
            forge.append(mode)
            # the forged answer is refused (a retry, INVALID_SIGNATURE); the retry 0.75 s later gets the genuine one
            a.clock.advance(60)  # type: ignore[attr-defined]
            assert [r["error"].code for r in retries] == ["INVALID_SIGNATURE"] * n, mode
            assert len(renewed) == n + 1 and a.api.last_verified_by == "SessionKeyVerifier", mode
            st = a.status()
            assert st.state == "online" and st.valid and st.violations == [] and st.token == token, mode
        assert violations == []
        # A check-in answered under another key is not believed: the SDK does not take it as having reached the server.
        forge.append("another-key")
        r = a.checkin()
        assert not r.reached_server and not r.released
    finally:
        proxy.close()


def test_a_restart_without_the_key_and_a_server_that_lost_it_get_a_new_one(server, tmp_path):
    lic = server.make_license({"seats": 1, "leaseTtlSeconds": 300, "heartbeatIntervalSeconds": 60})
    proxy = Proxy(server.url)
    exchanged: list[bool] = []

    def watch(method, path, status, headers, body):
        if HEARTBEAT.match(path) and status == 200:
            exchanged.append("session" in json.loads(body))
        return None

    proxy.rewrite = watch
    try:
        a = make(server, lic, tmp_path, server_url=proxy.url, fingerprint="py-ses-restart-1")
        assert a.checkout().ok and a.api.session_key is not None
        a.close(checkin=False)  # the process ends without a check-in: its key goes with it

        # A restart while the server is unreachable runs on the stored token, with no session key (Ed25519 answers only) ...
        proxy.down = True
        b = make(server, lic, tmp_path, server_url=proxy.url, fingerprint="py-ses-restart-1")
        r = b.checkout()
        assert r.ok and r.source == "cached-token" and b.api.session_key is None
        # ... and its reconnection (a checkout, as the JS SDK's) offers a new key: the heartbeats after it are HMAC-signed.
        proxy.down = False
        contacts = []
        b.on("renewed", contacts.append)  # the same lease, joined again
        b.clock.advance(1)  # type: ignore[attr-defined]
        assert len(contacts) == 1 and b.status().state == "online"
        assert b.api.last_verified_by == "MessageSignatureVerifier" and b.api.session_key is not None
        b.clock.advance(60)  # type: ignore[attr-defined]
        assert b.api.last_verified_by == "SessionKeyVerifier" and exchanged == [False]

        # The server no longer knows the key the client names (a revived use): its renewal comes Ed25519-signed, with a
        # token; the next heartbeat exchanged a new key in its body (an Ed25519 answer with the server's half), and the
        # heartbeats after it are HMAC-signed under the new key.
        lost = SessionKey("ses_" + "A" * 22, os.urandom(32))
        b.api.session_key = lost
        b.clock.advance(60)  # type: ignore[attr-defined]
        assert b.api.last_verified_by == "MessageSignatureVerifier" and b.api.session_key == lost and exchanged == [False, False]
        b.clock.advance(60)  # type: ignore[attr-defined]
        assert b.api.last_verified_by == "MessageSignatureVerifier" and exchanged == [False, False, True]
        assert b.api.session_key is not None and b.api.session_key != lost
        b.clock.advance(60)  # type: ignore[attr-defined]
        assert b.api.last_verified_by == "SessionKeyVerifier" and exchanged == [False, False, True, False]
        st = b.status()
        assert st.state == "online" and st.valid and st.violations == []
        assert b.checkin().reached_server and b.api.last_verified_by == "SessionKeyVerifier"
    finally:
        proxy.close()
