"""The conformance suite run with the Python SDK: every scenario of conformance/*.json against a real floatd
server process (SQLite, or PostgreSQL with FLOATD_TEST_STORE=postgres). See docs/conformance.md."""
from __future__ import annotations

import base64
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from floatd import FakeClock, FloatingLicense, FloatingLicenseError
from harness import STORE, FloatdServer, Proxy, libfaketime, pg_cluster_unavailable

SCENARIOS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "*.json")))


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


class Device:
    def __init__(self, name: str, root: str) -> None:
        self.name = name
        self.fingerprint = f"conformance-{name}-{os.urandom(4).hex()}"
        self.state_dir = os.path.join(root, name)
        self.clock = FakeClock()
        #: the device's way to the server (one origin per device, so its programs share one state namespace)
        self.proxy: Proxy | None = None


class Client:
    def __init__(self, world: "World", name: str, device: Device) -> None:
        self.world = world
        self.name = name
        self.device = device
        if device.proxy is None:
            device.proxy = Proxy(world.server.url)
            world.point(device.proxy)
        self.proxy = device.proxy
        self.events: list[str] = []
        self.retries: list[str] = []
        self.lic = self.make()

    def make(self) -> FloatingLicense:
        lic = FloatingLicense(server_url=self.proxy.url, license_key=self.world.license["key"], state_dir=self.device.state_dir,
                              fingerprint=self.device.fingerprint, clock=self.device.clock, handle_exit=False,
                              random=lambda: 0.5, request_timeout_seconds=5, hostname="conformance", user="tester")
        lic.on("renewed", lambda s: self.events.append("renewed"))
        lic.on("reacquired", lambda s: self.events.append("reacquired"))
        lic.on("violation", lambda v: self.events.append("violation:" + v.code))
        lic.on("retry", lambda r: self.retries.append(r["error"].code))
        return lic


class World:
    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.root = tempfile.mkdtemp(prefix="floatd-conf-")
        self.server = FloatdServer(faketime=bool(scenario.get("serverClock"))).start()
        self.license = self.server.make_license(scenario["policy"])
        self.devices: dict[str, Device] = {}
        self.clients: dict[str, Client] = {}
        self.impostor: FloatdServer | None = None
        self.forge_mode = "off"
        self.genuine: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def point(self, p: Proxy) -> None:
        p.target = self.impostor.url if self.impostor else self.server.url
        p.rewrite = self.rewrite

    def client(self, name: str, device: str | None = None) -> Client:
        if name not in self.clients:
            dn = device or "main"
            if dn not in self.devices:
                self.devices[dn] = Device(dn, self.root)
            self.clients[name] = Client(self, name, self.devices[dn])
        return self.clients[name]

    def rewrite(self, method: str, path: str, status: int, headers: dict[str, str], body: bytes):
        if not path.startswith("/v1/client/"):
            return None
        key = method + " " + path
        previous = self.genuine.get(key)
        self.genuine[key] = (status, dict(headers), body)
        mode = self.forge_mode
        if mode == "refusal":
            forged = json.dumps({"error": {"code": "LICENSE_SUSPENDED", "message": "forged"}}).encode()
            return 403, headers, forged
        if mode == "unsigned-refusal":
            forged = json.dumps({"error": {"code": "LICENSE_SUSPENDED", "message": "forged"}}).encode()
            h = {k: v for k, v in headers.items() if k not in ("floatd-signature", "signature", "signature-input", "floatd-date", "content-digest")}
            return 403, h, forged
        if mode == "replay" and previous:
            return previous
        return None

    def close(self) -> None:
        for c in self.clients.values():
            try:
                c.lic.close(checkin=False)
            except Exception:  # noqa: BLE001
                pass
        for d in self.devices.values():
            if d.proxy:
                d.proxy.close()
        if self.impostor:
            self.impostor.stop()
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def check_fields(actual: dict[str, Any], expect: dict[str, Any], what: str) -> None:
    for k, v in expect.items():
        assert actual.get(k) == v, f"{what}: {k} is {actual.get(k)!r}, expected {v!r} (all: {actual})"


def status_dict(lic: FloatingLicense) -> dict[str, Any]:
    s = lic.status()
    return {"state": s.state, "valid": s.valid, "offline": s.offline, "serverReachable": s.server_reachable,
            "violations": s.violations, "instances": s.instances, "seatsUsed": s.seats_used}


def collapse(xs: list[str]) -> list[str]:
    """Repeats of one event count once, and renewals right after a reacquire are part of it (docs/conformance.md)."""
    out: list[str] = []
    for x in xs:
        if out and (out[-1] == x or (x == "renewed" and out[-1] == "reacquired")):
            continue
        out.append(x)
    return out


def run_step(w: World, st: dict[str, Any], label: str) -> None:
    do = st["do"]
    c = w.client(st["client"], st.get("device")) if "client" in st else None

    def expect_error(fn) -> Any:
        if "expectError" in st:
            with pytest.raises(FloatingLicenseError) as ei:
                fn()
            assert ei.value.code == st["expectError"], f"{label}: raised {ei.value.code} ({ei.value.message})"
            return None
        return fn()

    if do == "checkout":
        r = expect_error(lambda: c.lic.checkout())
        if r is not None:
            got = {"ok": r.ok, **({"source": r.source, "created": r.created} if r.ok else {"code": r.code})}
            check_fields(got, st.get("expect", {}), label)
    elif do == "checkout_offline":
        r = expect_error(lambda: c.lic.checkout_offline(duration_seconds=st["seconds"]))
        if r is not None:
            check_fields(status_dict(c.lic), st.get("expect", {}), label)
    elif do == "return_offline":
        check_fields({"released": c.lic.return_offline()}, st.get("expect", {}), label)
    elif do == "checkin":
        r = c.lic.checkin()
        check_fields({"released": r.released, "instances": r.instances, "reachedServer": r.reached_server}, st.get("expect", {}), label)
    elif do == "sync":
        r = c.lic.sync_instances()
        check_fields({"dropped": len(r["dropped"]), "instances": r["instances"]}, st.get("expect", {}), label)
    elif do == "status":
        check_fields(status_dict(c.lic), st["expect"], label)
    elif do == "events":
        got = collapse(c.events)
        assert got == st["expect"], f"{label}: events {got}, expected {st['expect']}"
        if "retries" in st:
            assert sorted(set(c.retries)) == sorted(set(st["retries"])), f"{label}: retries {c.retries}, expected {st['retries']}"
        c.events.clear()
        c.retries.clear()
    elif do == "advance":
        left = float(st["seconds"])
        while left > 0:
            step = min(5.0, left)
            if w.server.faketime:
                w.server.advance(step)
            for d in w.devices.values():
                d.clock.advance(step)
            left -= step
        if w.server.faketime and w.server.alive():
            w.server.settle()
    elif do == "set_clock":
        c.device.clock.set_wall(c.device.clock.now() + st["seconds"])
    elif do == "network":
        for d in w.devices.values():
            if d.proxy:
                d.proxy.down = not st["up"]
    elif do == "partition":
        c.proxy.down = st["cut"]
    elif do == "kill_server":
        w.server.kill()
    elif do == "start_server":
        w.server.start()
        for d in w.devices.values():
            if d.proxy:
                w.point(d.proxy)
    elif do == "crash":
        # the program ends without a word (kill -9, a closed laptop): no check-in, and its process is gone
        c.lic.close(checkin=False)
        entry = os.path.join(c.lic.state.dir, "instances", f"{c.lic.instance_id}.json")  # type: ignore[union-attr]
        if os.path.exists(entry):
            e = json.load(open(entry))
            e["pid"] = dead_pid()
            json.dump(e, open(entry, "w"))
    elif do == "restart":
        c.lic.close(checkin=False)
        c.lic = c.make()
    elif do == "seats":
        s, lic = w.server.admin("GET", f"/v1/admin/licenses/{w.license['id']}")
        check_fields({"used": lic["seatsUsed"]}, st["expect"], label)
    elif do == "reclaim":
        s, body = w.server.admin("POST", "/v1/admin/reclaim")
        if s >= 500 and w.server.faketime:
            # a reclaim joins the sweep already running (service/reclaim.ts): after the harness raced the server's
            # clock, that may be a background sweep whose queries the race timed out (on PostgreSQL); one more
            s, body = w.server.admin("POST", "/v1/admin/reclaim")
        assert s == 200, f"{label}: {s} {body}"
    elif do == "admin":
        lid = w.license["id"]
        a = st["action"]
        if a in ("suspend", "resume"):
            s, b = w.server.admin("POST", f"/v1/admin/licenses/{lid}/{a}")
        elif a == "expire":
            past = datetime.fromtimestamp(time.time() - 60, tz=timezone.utc).isoformat().replace("+00:00", "Z")
            s, b = w.server.admin("PATCH", f"/v1/admin/licenses/{lid}", {"expiresAt": past})
        elif a == "release":
            s, b = w.server.admin("GET", f"/v1/admin/licenses/{lid}/leases")
            for lease in b["items"]:
                s, b = w.server.admin("POST", f"/v1/admin/leases/{lease['id']}/release", {"force": True})
        else:
            raise AssertionError(f"unknown admin action {a}")
        assert s < 300, f"{label}: admin {a}: {s} {b}"
    elif do == "forge":
        w.forge_mode = st["mode"]
    elif do == "impostor":
        if st["on"]:
            w.impostor = FloatdServer(store="sqlite").start()
            w.impostor.make_license({"seats": 5})
        else:
            assert w.impostor
            w.impostor.stop()
            w.impostor = None
        for d in w.devices.values():
            if d.proxy:
                w.point(d.proxy)
    else:
        raise AssertionError(f"{label}: unknown step {do}")


@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p)[:-5] for p in SCENARIOS])
def test_scenario(path: str) -> None:
    scenario = json.load(open(path))
    if scenario.get("serverClock") and not libfaketime():
        if os.environ.get("CI") == "true":
            pytest.fail("libfaketime is required in CI (apt-get install faketime)")
        pytest.skip("!!! libfaketime is not installed (apt-get install faketime): this scenario moves the server's clock !!!")
    if scenario.get("serverClock") and STORE == "postgres":
        # on PostgreSQL the database is a private cluster under the server's libfaketime (testing/pgfaketime.ts):
        # PostgreSQL 15 binaries and root, to run it as the postgres user
        why = pg_cluster_unavailable()
        if why:
            if os.environ.get("CI") == "true":
                pytest.fail(f"this scenario moves the server's clock: {why} (required in CI)")
            pytest.skip(f"!!! this scenario moves the server's clock and cannot run here on PostgreSQL: {why} !!!")
    w = World(scenario)
    try:
        for i, st in enumerate(scenario["steps"]):
            run_step(w, st, f"{scenario['name']} step {i + 1} ({st['do']})")
        for d in w.devices.values():
            assert d.clock.errors == [], f"timer errors: {d.clock.errors}"
    except BaseException as e:
        # the server's own log says why it answered what it did
        log = "".join(w.server._out)[-4000:] if w.server else ""
        if log:
            e.add_note(f"--- server output (last 4000 characters) ---\n{log}")
        raise
    finally:
        w.close()
