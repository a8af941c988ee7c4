"""``FloatingLicense``: the object an application embeds (the Python twin of the Node SDK's class).

It checks out a seat, keeps it with heartbeats on a background thread, survives server outages on its
signed lease token, borrows seats offline, detects clock tampering, and reports what it cannot fix as
``violation`` events. It never ends the process: the application decides.
"""
from __future__ import annotations

import atexit
import getpass
import os
import random as _random
import re
import socket
import threading
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Literal

from . import routes
from .clock import Clock, SystemClock, TimerHandle
from .environment import machine_environment
from .errors import FloatingLicenseError
from .fingerprint import FINGERPRINT_RE, device_fingerprint
from .http import Api, Ed25519AnswerVerifier, MessageSignatureVerifier, SessionKeyVerifier, normalize_server_url
from .session_keys import X25519Offer, agreed_key, new_offer
from .state import StateDir
from .trust import KeyTrust, parse_keys

VERSION = "0.1.0"
LEASE_FILE = "lease.json"
OFFLINE_FILE = "offline.json"
CLOCK_FILE = "clock.json"

LicenseState = Literal["idle", "online", "offline", "cached", "lost", "closed"]
ViolationCode = Literal["SEAT_LOST", "LICENSE_EXPIRED", "LICENSE_SUSPENDED", "SERVER_UNREACHABLE", "OFFLINE_EXPIRED", "CLOCK_TAMPERED"]
VIOLATION_CODES = ("SEAT_LOST", "LICENSE_EXPIRED", "LICENSE_SUSPENDED", "SERVER_UNREACHABLE", "OFFLINE_EXPIRED", "CLOCK_TAMPERED")
_SYSTEM_CLOCK: SystemClock | None = None


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, tz=timezone.utc)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def normalize_key(key: str) -> str | None:
    """Case, spaces, dashes and I/L/O look-alikes forgiven; the server checks the check symbol."""
    raw = re.sub(r"[\s-]", "", str(key).upper()).replace("I", "1").replace("L", "1").replace("O", "0")
    if len(raw) != 25 or not re.fullmatch(r"[0-9A-Z]{25}", raw):
        return None
    return "-".join(raw[i:i + 5] for i in range(0, 25, 5))


@dataclass
class Violation:
    code: str
    message: str
    at: datetime
    cause: str | None = None


@dataclass
class LicenseStatus:
    state: str
    valid: bool
    lease_id: str | None
    device_id: str | None
    instance_id: str
    fingerprint: str | None
    lease_expires_at: datetime | None
    offline: bool
    offline_expires_at: datetime | None
    last_contact_at: datetime | None
    server_reachable: bool
    seats_used: int | None
    seats_total: int | None
    instances: int | None
    #: the share group whose uses hold the seat (e.g. ``user=alice``), as of the last answer
    share_group: str | None
    #: the seat was granted beyond the license's count
    overdraft: bool
    #: the pools granted to this instance (``base``, feature names), as the lease token says; [] without a seat
    features: list[str]
    #: checkouts waiting for a seat of this license, as of the last answer
    others_waiting: int | None
    heartbeat_interval_seconds: int | None
    violations: list[str]
    license: dict[str, Any] | None
    token: str | None


@dataclass
class CheckoutGranted:
    status: LicenseStatus
    #: "server" | "offline-token" | "cached-token" | "current"
    source: str
    created: bool
    ok: Literal[True] = True


@dataclass
class CheckoutDenied:
    message: str
    seats_total: int | None
    seats_used: int | None
    earliest_expiry_at: datetime | None
    timed_out: bool
    #: "NO_SEATS_AVAILABLE", or "NO_FEATURE_SEATS_AVAILABLE" when a feature pool asked for is full (``feature``)
    code: str = "NO_SEATS_AVAILABLE"
    feature: str | None = None
    #: with ``wait``: this checkout's place in the pool's queue (``pool``, ``position``, ``length``, ``pollWithinSeconds``)
    queue: dict[str, Any] | None = None
    ok: Literal[False] = False


CheckoutResult = CheckoutGranted | CheckoutDenied


@dataclass
class CheckinResult:
    released: bool
    instances: int | None
    reached_server: bool


@dataclass
class _Held:
    token: str
    claims: dict[str, Any]
    own: bool
    #: local effective time the lease ends (renewals without a new token extend it); None: no expiry
    expires_at: float | None
    oed_at: float | None
    #: local effective time the held token itself expires; None: no expiry
    token_expires_at: float | None = None


@dataclass
class RetryPolicy:
    initial_delay: float = 1.0
    max_delay: float = 60.0
    max_attempts: int = 4


def backoff(attempt: int, p: RetryPolicy, rnd: Callable[[], float]) -> float:
    step = min(p.max_delay, p.initial_delay * 2 ** max(0, min(attempt - 1, 30)))
    return step / 2 + rnd() * step / 2


_live: "weakref.WeakSet[FloatingLicense]" = weakref.WeakSet()


def _at_exit() -> None:
    for lic in list(_live):
        lic._exit()


atexit.register(_at_exit)


class FloatingLicense:
    """A floating license held by this process.

    >>> lic = FloatingLicense(server_url="https://licenses.example.com", license_key=key)
    >>> lic.on("violation", lambda v: print(v.code, v.message))
    >>> with lic:                      # checks out; checks in when the block ends
    ...     run_application()
    """

    def __init__(
        self,
        *,
        server_url: str,
        license_key: str,
        state_dir: str | None = None,
        fingerprint: str | None = None,
        server_public_keys: Any = None,
        app_version: str | None = None,
        clock: Clock | None = None,
        instance_id: str | None = None,
        hostname: str | None | Literal[False] = None,
        user: str | None | Literal[False] = None,
        display: str | None | Literal[False] = None,
        share_key: str | None = None,
        features: list[str] | None = None,
        report_environment: bool = True,
        handle_exit: bool = True,
        retry: RetryPolicy | None = None,
        clock_tolerance_seconds: float = 600,
        heartbeat_jitter: float = 0.1,
        guard_interval_seconds: float = 60,
        wait_interval_seconds: float = 15,
        request_timeout_seconds: float = 10,
        cleanup_orphans: bool = True,
        random: Callable[[], float] | None = None,
    ) -> None:
        global _SYSTEM_CLOCK
        if clock is None:
            _SYSTEM_CLOCK = _SYSTEM_CLOCK or SystemClock()
            clock = _SYSTEM_CLOCK
        self.clock: Clock = clock
        self.server_url = normalize_server_url(server_url)
        key = normalize_key(license_key)
        if not key:
            raise FloatingLicenseError("INVALID_LICENSE_KEY", "the license key is not well formed (25 symbols in five groups)")
        self.license_key = key
        self.instance_id = instance_id or "i-" + os.urandom(12).hex()
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", self.instance_id):
            raise FloatingLicenseError("VALIDATION_FAILED", "instance_id must be 1-128 of A-Z a-z 0-9 _ . : -")
        self.state_root = state_dir or os.path.join(os.path.expanduser("~"), ".floatd")
        self._fp_opt = fingerprint
        self._hostname = hostname
        self._display = display
        self._share_key = share_key
        #: the pools checkouts ask for (``base`` and feature names; None: the base pool)
        self._features = list(features) if features is not None else None
        self._report_environment = report_environment
        self._user = user
        self._app_version = app_version
        self._handle_exit = handle_exit
        self._retry = retry or RetryPolicy()
        self._tol = clock_tolerance_seconds
        self._guard_s = guard_interval_seconds
        self._jitter = min(0.5, max(0.0, heartbeat_jitter))
        self._wait_s = wait_interval_seconds
        self._cleanup = cleanup_orphans
        self._random = random or _random.random
        self._fixed = None
        if server_public_keys is not None:
            self._fixed = parse_keys(server_public_keys)
            if not self._fixed:
                raise FloatingLicenseError("INVALID_SIGNATURE", "server_public_keys holds no Ed25519 public key")
        self.api = Api(self.server_url, key, request_timeout_seconds, f"floatd-python/{VERSION}", self.clock.now)
        self._listeners: dict[str, list[Callable[..., None]]] = {}
        self._lock = threading.RLock()
        self._inited = False
        self.fp: str | None = None
        self.state: StateDir | None = None
        self.trust: KeyTrust | None = None
        self._mode: str = "idle"
        self._held: _Held | None = None
        self._license: dict[str, Any] | None = None
        self._instances: int | None = None
        self._share_group: str | None = None
        self._hbi: int | None = None
        self._last_contact: float | None = None
        self._reachable = True
        self._failures = 0
        self._violations: dict[str, Violation] = {}
        self._trust_base = -self.clock.monotonic()
        self._last_grant = 0.0
        self._registered: str | None = None
        self._timers: dict[str, TimerHandle] = {}
        self._stop_wait = threading.Event()
        #: the server agreed a session key at the last checkout (a server that predates them did not)
        self._session_capable = False
        #: a renewal came Ed25519-signed although a key was agreed (the server lost it): the next heartbeat offers one
        self._rekey = False

    # ------------------------------------------------------------------ events
    def on(self, event: str, fn: Callable[..., None]) -> Callable[[], None]:
        """Listens to ``renewed`` (status), ``reacquired`` (status), ``violation`` (Violation), ``retry`` (dict),
        ``waiting`` (dict). Returns a function that removes the listener."""
        self._listeners.setdefault(event, []).append(fn)
        return lambda: self._listeners.get(event, []).remove(fn)

    def _emit(self, event: str, arg: Any) -> None:
        for fn in list(self._listeners.get(event, [])):
            try:
                fn(arg)
            except Exception:  # noqa: BLE001 - the application's bug must not break the SDK's state
                import traceback

                traceback.print_exc()

    # ------------------------------------------------------------------ context manager / exit
    def __enter__(self) -> "FloatingLicense":
        r = self.checkout()
        if not r.ok:
            raise FloatingLicenseError("NO_SEATS_AVAILABLE", r.message)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exit(self) -> None:
        """At interpreter exit: check in (best effort, short timeout) and persist the trusted time."""
        try:
            if self._handle_exit and self._mode not in ("closed", "idle"):
                self.checkin(timeout=3)
            self._persist_clock()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ public API
    def checkout(self, *, wait: bool = False, timeout: float | None = None, features: list[str] | None = None) -> CheckoutResult:
        """Gets a seat: one already held; an offline lease stored by an earlier run; the server (retrying network
        errors and 5xx, honouring Retry-After); the token an earlier run stored when the server is unreachable.
        Returns CheckoutDenied when every seat is taken (with ``wait``, asks again until one frees or ``timeout``).
        Raises FloatingLicenseError for a refusal, a forged answer, or an unreachable server with nothing stored."""
        self._init()
        self._assert_open()
        if features is not None:
            self._features = list(features)
        if self._held and self._mode != "lost" and self._is_valid():
            # Held already: other pools asked for are a feature change of the held seat.
            if features is not None and sorted(features) != sorted(self.status().features):
                try:
                    self.set_features(features)
                except FloatingLicenseError as e:
                    if e.code == "NO_FEATURE_SEATS_AVAILABLE":
                        return _denial(e, False)
                    raise
            return CheckoutGranted(self.status(), "current", False)
        clock_ok = self._check_clock()
        stored_error: FloatingLicenseError | None = None
        try:
            off = self._load_stored(OFFLINE_FILE)
            if off:
                if not clock_ok:
                    raise FloatingLicenseError("CLOCK_TAMPERED", "the system clock was set back: the stored offline lease cannot be trusted until it is corrected")
                with self._lock:
                    self._adopt_stored(off, "offline")
                    return CheckoutGranted(self.status(), "offline-token", False)
        except FloatingLicenseError as e:
            if e.code == "CLOCK_TAMPERED":
                raise
            stored_error = e
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        self._stop_wait.clear()
        attempt = 0
        last_denial: CheckoutDenied | None = None
        while True:
            attempt += 1
            try:
                with self._lock:
                    self._assert_open()
                    grant, claims, created = self._request_checkout(
                        {"timeoutSeconds": max(60, min(86_400, int(timeout + 0.999)))} if wait and timeout is not None
                        else {"timeoutSeconds": 86_400} if wait else None)
                    self._adopt(grant, claims)
                    self._cleanup_orphans()
                    self._clear_violations()
                    return CheckoutGranted(self.status(), "server", created)
            except FloatingLicenseError as e:
                timed_out = deadline is not None and self.clock.monotonic() >= deadline
                if e.code in ("NO_SEATS_AVAILABLE", "NO_FEATURE_SEATS_AVAILABLE"):
                    last_denial = _denial(e, False)
                    if not wait or timed_out:
                        last_denial.timed_out = timed_out
                        return last_denial
                    attempt = 0
                    delay = self._wait_delay(last_denial)
                    if deadline is not None:
                        delay = min(delay, max(0.0, deadline - self.clock.monotonic()))
                    self._emit("waiting", {"message": last_denial.message, "retry_in": delay, "queue": last_denial.queue})
                    if not self.clock.sleep(delay, self._stop_wait):
                        raise FloatingLicenseError("NOT_CHECKED_OUT", "checked in while waiting for a seat") from None
                    continue
                if not e.transient:
                    raise
                if e.code != "RATE_LIMITED":
                    self._reachable = False
                if attempt == 1 and not self._held:
                    try:
                        cached = self._load_stored(LEASE_FILE)
                        if cached:
                            if not clock_ok:
                                raise FloatingLicenseError("CLOCK_TAMPERED", "the system clock was set back: the stored lease cannot be trusted until it is corrected") from None
                            with self._lock:
                                self._adopt_stored(cached, "cached")
                                return CheckoutGranted(self.status(), "cached-token", False)
                    except FloatingLicenseError as e2:
                        if e2.code == "CLOCK_TAMPERED":
                            raise
                        stored_error = stored_error or e2
                if timed_out or (not wait and attempt >= self._retry.max_attempts):
                    if last_denial:
                        last_denial.timed_out = timed_out
                        return last_denial
                    raise (stored_error or e) from None
                delay = max(backoff(attempt, self._retry, self._random), e.retry_after or 0.0)
                self._emit("retry", {"operation": "checkout", "attempt": attempt, "delay": delay, "error": e})
                if not self.clock.sleep(delay, self._stop_wait):
                    raise FloatingLicenseError("NOT_CHECKED_OUT", "checked in while waiting for a seat") from None

    def set_features(self, features: list[str]) -> LicenseStatus:
        """Changes the pools this instance holds without giving its seat back: added features are granted all or
        none (NO_FEATURE_SEATS_AVAILABLE raises and changes nothing), dropped ones go back to their pools. The base
        pool of a held seat stays as it is (BASE_POOL_FIXED)."""
        self._init()
        self._assert_open()
        with self._lock:
            h = self._held
            if not h or h.claims["offline"]:
                raise FloatingLicenseError("NOT_CHECKED_OUT", "no online seat is held")
            grant = self.api.call(routes.change_features, params={"leaseId": h.claims["lse"]},
                                  body={"instanceId": self.instance_id, "features": list(features)})
            claims = self._verify_grant(grant, lease_id=h.claims["lse"])
            self._features = list(features)
            self._adopt(grant, claims)
            return self.status()

    def has_feature(self, pool: str) -> bool:
        """Whether this instance holds a valid seat of ``pool`` (``base`` or a feature name)."""
        s = self.status()
        return s.valid and pool in s.features

    def checkout_offline(self, *, duration_seconds: int) -> LicenseStatus:
        """Borrows this device's seat until an Offline Expiry Date ``duration_seconds`` from now; the signed
        offline token is stored so a later start with no network runs until that date. No heartbeats meanwhile."""
        self._init()
        self._assert_open()
        self._check_clock()
        with self._lock:
            grant = self.api.call(routes.offline_checkout, body={**self._meta(), "durationSeconds": duration_seconds})
            claims = self._verify_grant(grant, offline=True)
            self._adopt(grant, claims)
            self._cleanup_orphans()
            self._clear_violations()
            return self.status()

    def return_offline(self) -> bool:
        """Gives a borrowed seat back before its Offline Expiry Date; returns ``released``."""
        self._init()
        with self._lock:
            h = self._held
            if not h or not h.claims["offline"]:
                raise FloatingLicenseError("NOT_CHECKED_OUT", "no offline lease is held")
            released = True
            try:
                released = bool(self.api.call(routes.return_offline, params={"leaseId": h.claims["lse"]})["released"])
            except FloatingLicenseError as e:
                if e.code != "LEASE_NOT_FOUND":
                    raise
            assert self.state
            self.state.remove(OFFLINE_FILE)
            self.state.remove(LEASE_FILE)
            self.state.unregister_instance(self.instance_id)
            self._registered = None
            self._stop_timers()
            self._held = None
            self._mode = "idle"
            return released

    def checkin(self, *, timeout: float | None = None) -> CheckinResult:
        """This instance leaves (the seat returns to the pool when no other instance of the device runs). Best
        effort: unreachable, the seat stays with this device (``reached_server`` False). A borrowed seat stays borrowed."""
        self._init()
        self._stop_wait.set()
        self._stop_timers()
        with self._lock:
            h = self._held
            was_offline = self._mode == "offline"
            if self._mode != "closed":
                self._mode = "idle"
            self._held = None
            self._violations.clear()
            self._persist_clock()
            if not h:
                return CheckinResult(False, None, False)
            assert self.state
            iid = self.instance_id if h.own else h.claims["ins"]
            if not h.own and any(e["instanceId"] == iid and e["alive"] for e in self.state.instances()):
                return CheckinResult(False, None, False)
            try:
                r = self.api.call(routes.checkin, params={"leaseId": h.claims["lse"]}, body={"instanceId": iid}, timeout=timeout)
                self._instances = r["instances"]
                self._last_contact = self.clock.now()
                self.state.unregister_instance(iid)
                self.state.unregister_instance(self.instance_id)
                self._registered = None
                if r["released"]:
                    self.state.remove(LEASE_FILE)
                return CheckinResult(bool(r["released"]), r["instances"], True)
            except FloatingLicenseError as e:
                if e.code == "LEASE_NOT_FOUND":
                    self.state.unregister_instance(iid)
                    self.state.unregister_instance(self.instance_id)
                    self._registered = None
                    if not was_offline:
                        self.state.remove(LEASE_FILE)
                    return CheckinResult(True, 0, True)
                self._reachable = False
                if h.own:
                    now_ms = int(self.clock.now() * 1000)
                    self.state.register_instance({"instanceId": iid, "pid": os.getpid(), "leaseId": h.claims["lse"], "startedAt": now_ms, "closedAt": now_ms})
                self._registered = None
                return CheckinResult(False, None, False)

    def sync_instances(self) -> dict[str, Any]:
        """Tells the server which instances of this device are alive (those in the state directory whose
        process runs); the others are dropped. Returns ``{dropped, released, instances}``."""
        self._init()
        assert self.state
        with self._lock:
            entries = self.state.instances()
            alive = [e["instanceId"] for e in entries if e["alive"]]
            if self._held and self._held.own and self._mode not in ("idle", "closed") and self.instance_id not in alive:
                alive.append(self.instance_id)
            r = self.api.call(routes.sync_device, body={"fingerprint": self.fp, "instanceIds": alive[:1024]})
            self._last_contact = self.clock.now()
            self._instances = r["instances"]
            for e in entries:
                if not e["alive"] or e["instanceId"] in r["dropped"]:
                    self.state.unregister_instance(e["instanceId"])
            return dict(r)

    def info(self) -> dict[str, Any]:
        """The license as the server sees it, and this device's lease."""
        self._init()
        r = self.api.call(routes.license_info, query={"fingerprint": self.fp or ""})
        self._license = r["license"]
        self._last_contact = self.clock.now()
        return dict(r)

    def status(self) -> LicenseStatus:
        h = self._held
        lic = self._license
        return LicenseStatus(
            state=self._mode,
            valid=self._is_valid(),
            lease_id=h.claims["lse"] if h else None,
            device_id=h.claims["dev"] if h else None,
            instance_id=self.instance_id,
            fingerprint=self.fp,
            lease_expires_at=_dt(h.expires_at) if h else None,
            offline=bool(h.claims["offline"]) if h else False,
            offline_expires_at=_dt(h.oed_at) if h else None,
            last_contact_at=_dt(self._last_contact),
            server_reachable=self._reachable,
            seats_used=lic["seatsUsed"] if lic else None,
            seats_total=lic["seatsTotal"] if lic else None,
            instances=self._instances,
            share_group=self._share_group,
            overdraft=bool(h.claims.get("ovd")) if h else False,
            features=list(h.claims.get("fts") or ["base"]) if h else [],
            others_waiting=lic.get("waiting") if lic else None,
            heartbeat_interval_seconds=self._hbi,
            violations=list(self._violations),
            license=lic,
            token=h.token if h else None,
        )

    def close(self, *, checkin: bool = True) -> None:
        """Stops the timers; checks in first unless ``checkin=False`` (the seat stays held, as after a crash)."""
        if checkin and self._inited:
            try:
                self.checkin()
            except FloatingLicenseError:
                pass
        self._stop_wait.set()
        self._stop_timers()
        with self._lock:
            self._stop_timers()
            self._mode = "closed"
            self._persist_clock()
        _live.discard(self)

    # ------------------------------------------------------------------ setup
    def _init(self) -> None:
        with self._lock:
            if self._inited:
                return
            fp = self._fp_opt or device_fingerprint(state_dir=self.state_root)
            if not FINGERPRINT_RE.fullmatch(fp):
                raise FloatingLicenseError("VALIDATION_FAILED", "fingerprint must be 8-128 of A-Z a-z 0-9 _ . : + / = -")
            self.fp = fp
            self.state = StateDir(self.state_root, self.server_url, self.license_key, fp)
            self.state.ensure()
            self.trust = KeyTrust(self.state, self._fixed, lambda: self.api.call(routes.jwks))
            self.api.verifiers = [SessionKeyVerifier(), MessageSignatureVerifier(self.trust.verify_signature), Ed25519AnswerVerifier(self.trust.verify_signature)]
            trusted = 0.0
            rec = self.state.read_sealed(CLOCK_FILE)
            if rec.kind == "ok" and isinstance(rec.data, dict) and isinstance(rec.data.get("t"), (int, float)):
                trusted = rec.data["t"] / 1000
            off = self.state.read_sealed(OFFLINE_FILE)
            if off.kind == "ok" and isinstance(off.data, dict) and isinstance(off.data.get("trustedAt"), (int, float)):
                trusted = max(trusted, off.data["trustedAt"] / 1000)
            self._raise_trusted(trusted)
            if rec.kind == "tampered":
                self._violate("CLOCK_TAMPERED", f"the trusted-time record in {self.state.dir} was edited ({rec.reason})")
                self._raise_trusted(self.clock.now())
            else:
                self._check_clock()
            self._persist_clock()
            self._inited = True
            _live.add(self)

    def _assert_open(self) -> None:
        if self._mode == "closed":
            raise FloatingLicenseError("CLOSED", "the license object was closed")

    def _meta(self) -> dict[str, Any]:
        host = socket.gethostname() if self._hostname is None else self._hostname
        user = self._user
        if user is None:
            try:
                user = getpass.getuser()
            except Exception:  # noqa: BLE001
                user = None
        m: dict[str, Any] = {"fingerprint": self.fp, "instanceId": self.instance_id}
        if host:
            m["hostname"] = _visible(host)[:255]
        if user:
            m["user"] = _visible(user)[:255]
        if self._app_version:
            m["appVersion"] = _visible(self._app_version)[:64]
        display = os.environ.get("DISPLAY") if self._display is None else self._display
        if display:
            m["display"] = _visible(display)[:255]
        if self._share_key:
            m["shareKey"] = _visible(self._share_key)[:255]
        if self._features is not None:
            m["features"] = list(self._features)
        if self._report_environment:
            m.update(machine_environment())
        return m

    def _wait_delay(self, d: CheckoutDenied) -> float:
        delay = self._wait_s
        if d.queue and isinstance(d.queue.get("pollWithinSeconds"), (int, float)):
            # In a queue: ask again well within the window that keeps the place.
            delay = min(delay, d.queue["pollWithinSeconds"] / 3)
        if d.earliest_expiry_at:
            delay = min(delay, max(1.0, d.earliest_expiry_at.timestamp() - self._eff_now() + 0.5))
        return delay * (0.8 + 0.2 * self._random())

    # ------------------------------------------------------------------ grants and tokens
    def _request_checkout(self, wait: dict[str, int] | None = None) -> tuple[dict[str, Any], dict[str, Any], bool]:
        body = self._meta()
        if wait:
            body["wait"] = wait
        offer = new_offer()
        body["session"] = {"x25519": offer.x25519}
        status, grant = self.api.request(routes.checkout, body=body)
        claims = self._verify_grant(grant)
        self._take_session(offer, grant)
        return grant, claims, status == 201

    # ------------------------------------------------------------------ session keys (issue #17)
    # The checkout agrees one with the server; the answers on the use are then HMAC-SHA256-signed under it, and
    # heartbeats carry no new token until the held one runs low (the JS SDK's session.ts, rule for rule).
    def _take_session(self, offer: X25519Offer, answer: dict[str, Any]) -> None:
        """Takes the session key a (signature-checked) answer agreed, or notes that the server agrees none."""
        half = answer.get("session")
        if half is None:
            self._session_capable = False
            self.api.session_key = None
            return
        lease_id = answer["lease"].get("id")
        key = agreed_key(offer, half.get("x25519") if isinstance(half, dict) else None, lease_id) if isinstance(lease_id, str) else None
        if key is None:
            raise FloatingLicenseError("BAD_RESPONSE", "the server's session key is not a usable X25519 public key")
        self.api.session_key = key
        self._session_capable = True
        self._rekey = False

    def _renewal_ask(self) -> tuple[dict[str, Any], X25519Offer | None]:
        """What a heartbeat asks beside the renewal, and the offer it makes: a new token when the held one has a
        third of the lease TTL (or two heartbeat intervals) or less left; a new session key when the server lost ours.
        Nothing from a server that agreed no key (it answers every renewal with a token)."""
        if not self._session_capable:
            return {}, None
        ask: dict[str, Any] = {}
        offer = None
        if self.api.session_key is None or self._rekey:
            offer = new_offer()
            ask["session"] = {"x25519": offer.x25519}
        until = self._held.token_expires_at if self._held else None
        ttl = (self._license or {}).get("leaseTtlSeconds") or 0
        if until is not None and until - self._eff_now() <= max(ttl / 3, 2 * (self._hbi or 0)):
            ask["renewToken"] = True
        return ask, offer

    def _renewal_answered(self, offer: X25519Offer | None, answer: Any) -> None:
        """After a renewal's answer (its signature checked): a new key it agreed, or a lost one noticed."""
        if offer is not None and isinstance(answer, dict) and answer.get("session") is not None and isinstance(answer.get("lease"), dict):
            self._take_session(offer, answer)
        elif self._session_capable and self.api.last_verified_by == MessageSignatureVerifier.__name__:
            self._rekey = True

    def _adopt_renewal(self, r: dict[str, Any]) -> None:
        """A renewal that came without a token: believed on its answer's signature (HMAC-SHA256 under the session key,
        for this lease), it extends the held lease; the token stays the one held (and stored)."""
        h = self._held
        lease, lic = r.get("lease"), r.get("license")
        if not isinstance(lease, dict) or not isinstance(lic, dict) or not isinstance(r.get("serverTime"), str) \
                or not isinstance(r.get("heartbeatIntervalSeconds"), int):
            raise FloatingLicenseError("BAD_RESPONSE", "the renewal is not a floatd renewal")
        if not h or lease.get("id") != h.claims["lse"] or lease.get("instanceId") != self.instance_id:
            raise FloatingLicenseError("TOKEN_MISMATCH", "the renewal is for another lease or use")
        try:
            server_time = _parse_time(r["serverTime"])
            ends = [_parse_time(t) for t in (lease.get("expiresAt"), lic.get("expiresAt")) if t is not None]
        except (TypeError, ValueError):
            raise FloatingLicenseError("BAD_RESPONSE", "the renewal's times are not timestamps") from None
        self._observe_server_time(server_time)
        received = self._eff_now()
        self._held = replace(h, expires_at=received + (min(ends) - server_time) if ends else None)
        self._mode = "offline" if lease.get("offline") else "online"
        self._took(r, received, r["heartbeatIntervalSeconds"])
        self._schedule()
        self._persist_clock()

    def _verify_grant(self, g: Any, *, lease_id: str | None = None, offline: bool | None = None) -> dict[str, Any]:
        if not isinstance(g, dict) or not isinstance(g.get("token"), str) or not isinstance(g.get("lease"), dict) or not isinstance(g["lease"].get("id"), str):
            raise FloatingLicenseError("BAD_RESPONSE", "the grant is not a floatd grant")
        assert self.trust and self.fp
        claims = self.trust.verify(g["token"], fingerprint=self.fp, instance_id=self.instance_id, lease_id=lease_id or g["lease"]["id"], offline=offline)
        if claims["lse"] != g["lease"]["id"]:
            raise FloatingLicenseError("TOKEN_MISMATCH", "the grant and its token name different leases")
        return claims

    def _make_held(self, token: str, c: dict[str, Any], received: float) -> _Held:
        expires = received + (c["exp"] - c["iat"]) if c.get("exp") is not None else None
        return _Held(
            token, c, c["ins"] == self.instance_id,
            expires,
            received + (c["oed"] - c["iat"]) if c.get("oed") is not None else None,
            expires,
        )

    def _adopt(self, grant: dict[str, Any], claims: dict[str, Any]) -> None:
        assert self.state
        self._observe_server_time(claims["iat"])
        received = self._eff_now()
        self._held = self._make_held(grant["token"], claims, received)
        self._mode = "offline" if claims["offline"] else "online"
        self._took(grant, received, claims["hbi"])
        stored = {"token": grant["token"], "receivedAt": int(received * 1000), "trustedAt": int(self._trusted_now() * 1000)}
        if claims["offline"]:
            self.state.write_sealed(OFFLINE_FILE, stored)
            self.state.remove(LEASE_FILE)
        else:
            self.state.write_sealed(LEASE_FILE, stored)
            self.state.remove(OFFLINE_FILE)
        if self._registered != claims["lse"]:
            self.state.register_instance({"instanceId": self.instance_id, "pid": os.getpid(), "leaseId": claims["lse"], "startedAt": int(self.clock.now() * 1000)})
            self._registered = claims["lse"]
        self._schedule()
        self._persist_clock()

    def _took(self, grant: dict[str, Any], received: float, heartbeat_interval: int) -> None:
        """What a grant or a renewal tells beside its token: the license, the lease's uses, the heartbeat interval."""
        self._last_grant = received
        before = (self._license or {}).get("waiting") or 0
        self._license = grant["license"]
        waiting = grant["license"].get("waiting") or 0
        if waiting != before:
            self._emit("others_waiting", {"waiting": waiting})
        self._instances = grant["lease"]["instances"]
        self._share_group = grant["lease"].get("shareGroup")
        self._hbi = heartbeat_interval
        self._last_contact = self.clock.now()
        self._reachable = True
        self._failures = 0

    def _adopt_stored(self, held: _Held, mode: str) -> None:
        self._held = held
        self._mode = mode
        self._hbi = held.claims["hbi"]
        self._schedule()
        if mode == "cached":
            self._schedule_contact(backoff(1, self._retry, self._random))

    def _load_stored(self, name: str) -> _Held | None:
        assert self.state and self.trust and self.fp
        r = self.state.read_sealed(name)
        if r.kind == "missing":
            return None
        if r.kind == "tampered":
            self.state.remove(name)
            raise FloatingLicenseError("INVALID_SIGNATURE", f"the stored lease token {name} was tampered with ({r.reason})")
        try:
            claims = self.trust.verify(r.data["token"], fingerprint=self.fp, offline=name == OFFLINE_FILE, may_fetch=False)
        except FloatingLicenseError:
            self.state.remove(name)
            raise
        self._observe_server_time(claims["iat"])
        held = self._make_held(r.data["token"], claims, min(r.data["receivedAt"] / 1000, self._eff_now()))
        if self._expired(held):
            self.state.remove(name)
            return None
        return held

    def _cleanup_orphans(self) -> None:
        if not self._cleanup:
            return
        assert self.state
        for e in self.state.instances():
            if e["alive"] or e["instanceId"] == self.instance_id:
                continue
            if not e.get("leaseId"):
                self.state.unregister_instance(e["instanceId"])
                continue
            try:
                r = self.api.call(routes.checkin, params={"leaseId": e["leaseId"]}, body={"instanceId": e["instanceId"]})
                if self._held and e["leaseId"] == self._held.claims["lse"]:
                    self._instances = r["instances"]
                self.state.unregister_instance(e["instanceId"])
            except FloatingLicenseError as err:
                if err.code == "LEASE_NOT_FOUND":
                    self.state.unregister_instance(e["instanceId"])

    # ------------------------------------------------------------------ time
    def _trusted_now(self) -> float:
        return self._trust_base + self.clock.monotonic()

    def _raise_trusted(self, t: float) -> None:
        base = t - self.clock.monotonic()
        if base > self._trust_base:
            self._trust_base = base

    def _eff_now(self) -> float:
        """Wall time never earlier than the trusted time: setting the clock back buys nothing."""
        return max(self.clock.now(), self._trusted_now())

    def _observe_server_time(self, t: float) -> None:
        self._raise_trusted(t)
        self._check_clock()

    def _check_clock(self) -> bool:
        now, trusted = self.clock.now(), self._trusted_now()
        if now < trusted - self._tol:
            self._violate("CLOCK_TAMPERED", f"the system clock ({_iso(now)}) is earlier than the last trusted time ({_iso(trusted)}) by more than {self._tol:g} s")
            return False
        self._violations.pop("CLOCK_TAMPERED", None)
        self._raise_trusted(now)
        return True

    def _persist_clock(self) -> None:
        """The trusted time to clock.json and beside a stored offline token; never lowered."""
        if not self.state:
            return
        try:
            self._raise_trusted(self.clock.now())
            rec = self.state.read_sealed(CLOCK_FILE)
            if rec.kind == "ok" and isinstance(rec.data, dict) and isinstance(rec.data.get("t"), (int, float)):
                self._raise_trusted(rec.data["t"] / 1000)
            t = int(self._trusted_now() * 1000)
            self.state.write_sealed(CLOCK_FILE, {"t": t})
            off = self.state.read_sealed(OFFLINE_FILE)
            if off.kind == "ok" and not (off.data.get("trustedAt") or 0) >= t:
                self.state.write_sealed(OFFLINE_FILE, {**off.data, "trustedAt": t})
        except OSError:
            pass

    def _expired(self, h: _Held) -> bool:
        return h.expires_at is not None and self._eff_now() >= h.expires_at

    def _is_valid(self) -> bool:
        h = self._held
        return bool(h) and self._mode in ("online", "offline", "cached") and not self._expired(h)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ violations
    def _violate(self, code: str, message: str, cause: str | None = None) -> None:
        if code in self._violations:
            return
        v = Violation(code, message, datetime.fromtimestamp(self.clock.now(), tz=timezone.utc), cause)
        self._violations[code] = v
        self._emit("violation", v)

    def _clear_violations(self) -> None:
        for c in list(self._violations):
            if c != "CLOCK_TAMPERED":
                del self._violations[c]

    # ------------------------------------------------------------------ scheduler (background renewal)
    def _arm(self, name: str, fn: Callable[[], None], delay: float) -> None:
        self._cancel(name)
        delay = max(0.0, delay)
        base = self._trusted_now()

        def fire() -> None:
            with self._lock:
                if self._timers.get(name) is not handle_box[0]:
                    return
                del self._timers[name]
                # a timer never fires early: at least `delay` passed, whatever the wall clock says
                self._raise_trusted(base + delay)
            fn()

        handle_box: list[Any] = [None]
        handle_box[0] = self.clock.call_later(delay, fire)
        self._timers[name] = handle_box[0]

    def _cancel(self, name: str) -> None:
        h = self._timers.pop(name, None)
        if h is not None:
            self.clock.cancel(h)

    def _stop_timers(self) -> None:
        for n in list(self._timers):
            self._cancel(n)

    def _schedule(self) -> None:
        if self._mode == "online":
            self._schedule_contact(self._heartbeat_delay())
        elif self._mode == "offline":
            self._cancel("contact")
        self._schedule_expiry()
        if "guard" not in self._timers:
            self._arm("guard", self._guard, self._guard_s)

    def _heartbeat_delay(self) -> float:
        return max(1.0, (self._hbi or 60) * (1 - self._jitter * self._random()))

    def _schedule_contact(self, delay: float) -> None:
        self._arm("contact", self._contact, delay)

    def _schedule_expiry(self) -> None:
        self._cancel("expiry")
        h = self._held
        if h and h.expires_at is not None:
            self._arm("expiry", self._on_expiry, h.expires_at - self._eff_now())

    def _active(self) -> bool:
        return self._mode in ("online", "offline", "cached", "lost")

    def _guard(self) -> None:
        if not self._active():
            return
        with self._lock:
            self._check_clock()
            self._arm("guard", self._guard, self._guard_s)
            self._persist_clock()
            h = self._held
            if h and self._expired(h) and "SERVER_UNREACHABLE" not in self._violations and "OFFLINE_EXPIRED" not in self._violations:
                self._contact()

    def _on_expiry(self) -> None:
        with self._lock:
            if not self._active() or not self._held:
                return
            if not self._expired(self._held):
                return self._schedule_expiry()
            if self._eff_now() - self._last_grant < 1:
                return self._schedule_contact(1)
            self._contact()

    def _contact(self) -> None:
        """Heartbeat (own token) or checkout (stored token, lost lease); on failure, retry or report."""
        with self._lock:
            if not self._active():
                return
            self._cancel("contact")
            self._check_clock()
            before = self._held
            had_violation = any(c != "CLOCK_TAMPERED" for c in self._violations) or self._mode == "lost"
            heartbeat = bool(before and before.own and self._mode != "cached")
            operation = "heartbeat" if heartbeat else "reconnect"
            try:
                grant = claims = None
                if heartbeat and before:
                    try:
                        ask, offer = self._renewal_ask()
                        grant = self.api.call(routes.heartbeat, params={"leaseId": before.claims["lse"]}, body={"instanceId": self.instance_id, **ask})
                        self._renewal_answered(offer, grant)
                        if isinstance(grant, dict) and grant.get("token") is None:
                            # Renewed without a new token (an HMAC-signed answer under the session key): the held token stays.
                            self._adopt_renewal(grant)
                            self._clear_violations()
                            self._emit("reacquired" if had_violation else "renewed", self.status())
                            return
                        claims = self._verify_grant(grant, lease_id=before.claims["lse"])
                    except FloatingLicenseError as e:
                        if e.code != "LEASE_NOT_FOUND":
                            raise
                        grant = None
                joined = False
                if grant is None or claims is None:
                    grant, claims, _ = self._request_checkout()
                    joined = True
                same = before is not None and before.claims["lse"] == claims["lse"]
                self._adopt(grant, claims)
                if joined:
                    self._cleanup_orphans()
                self._clear_violations()
                self._emit("reacquired" if had_violation or not same else "renewed", self.status())
            except FloatingLicenseError as e:
                self._on_contact_failure(e, operation)

    def _on_contact_failure(self, e: FloatingLicenseError, operation: str) -> None:
        if not self._active():
            return
        assert self.state
        self._persist_clock()
        h = self._held
        untrusted = e.code in ("INVALID_SIGNATURE", "TOKEN_MISMATCH")
        if e.transient or untrusted:
            if not untrusted and e.code != "RATE_LIMITED":
                self._reachable = False
            self._failures += 1
            delay = backoff(self._failures, self._retry, self._random)
            if h and not self._expired(h) and self._hbi is not None:
                delay = min(delay, float(self._hbi))
            if e.retry_after is not None:
                delay = max(delay, e.retry_after)
            self._schedule_contact(delay)
            if h and self._expired(h):
                if h.claims["offline"]:
                    self._mode = "lost"
                    self._violate("OFFLINE_EXPIRED", f"the Offline Expiry Date passed and the server could not confirm the license: {e.message}", e.code)
                    self.state.remove(OFFLINE_FILE)
                else:
                    self._violate("SERVER_UNREACHABLE", f"the lease token expired while the server was unreachable: {e.message}", e.code)
            self._emit("retry", {"operation": operation, "attempt": self._failures, "delay": delay, "error": e})
            return
        self._reachable = True
        self._last_contact = self.clock.now()
        self._failures = 0
        code = "LICENSE_SUSPENDED" if e.code == "LICENSE_SUSPENDED" else "LICENSE_EXPIRED" if e.code in ("LICENSE_EXPIRED", "TRIAL_EXPIRED") else "SEAT_LOST"
        if code == "SEAT_LOST":
            self._held = None
            self.state.remove(LEASE_FILE)
        if h and h.claims["offline"]:
            self.state.remove(OFFLINE_FILE)
        self._mode = "lost"
        self._cancel("expiry")
        self._violate(code, e.message, e.code)
        self._schedule_contact(self._heartbeat_delay())


def _parse_time(t: str) -> float:
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def _visible(s: str) -> str:
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in s)


def _denial(e: FloatingLicenseError, timed_out: bool) -> CheckoutDenied:
    d = e.details
    num = lambda v: v if isinstance(v, int) else None  # noqa: E731
    earliest = None
    if isinstance(d.get("earliestExpiryAt"), str):
        earliest = datetime.fromisoformat(d["earliestExpiryAt"].replace("Z", "+00:00"))
    total, used = num(d.get("seatsTotal")), num(d.get("seatsUsed"))
    feature = d.get("feature") if isinstance(d.get("feature"), str) else None
    of = f" of feature {feature}" if feature else ""
    msg = (f"all {total} seats{of} are in use" if total is not None else "all seats are in use") + (
        f"; the earliest lease expires at {earliest.isoformat().replace('+00:00', 'Z')} unless its holder renews it" if earliest
        else "; no lease expires on its own, a seat frees when someone checks in")
    queue = d.get("queue") if isinstance(d.get("queue"), dict) else None
    return CheckoutDenied(msg, total, used, earliest, timed_out,
                          code="NO_FEATURE_SEATS_AVAILABLE" if feature else "NO_SEATS_AVAILABLE", feature=feature, queue=queue)
