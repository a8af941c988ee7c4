"""HTTP calls to floatd's client API (urllib), and the check of every answer's authenticity.

Every ``/v1/client/*`` answer is signed (protocol/src/responseSignature.ts): headers ``Floatd-Date``,
``Content-Digest: sha-256=:<b64>:`` and ``Floatd-Signature: kid=<kid>;sig=<b64url>`` over
``floatd-response-v1\\n<status>\\n<method>\\n<path?query>\\n<nonce>\\n<date>\\n<digest>``.
The SDK asks for HTTP Message Signatures (RFC 9421, docs/api.md) by sending ``Accept-Signature`` without a
key id: the server then signs every answer with Ed25519 in ``Signature-Input`` / ``Signature`` (label ``floatd``,
``@status``, ``content-digest``, ``floatd-date`` and the request's method, path and query, with ``created``,
``keyid``, ``alg`` and this request's ``nonce``), and every renewal carries a lease token. An older server that
does not know the header answers with ``Floatd-Signature``, which is still accepted. What checks a signature is an
``AnswerVerifier``; a session-key (HMAC-SHA256) verifier can be added beside them without touching the transport.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from .errors import FloatingLicenseError, error_from_response, parse_retry_after
from .routes import Route

SIGNATURE_VERSION = "floatd-response-v1"
SIGNATURE_HEADER = "floatd-signature"
DATE_HEADER = "floatd-date"
DIGEST_HEADER = "content-digest"
NONCE_HEADER = "floatd-nonce"
_SIG_RE = re.compile(r"^kid=([A-Za-z0-9_-]{1,128});sig=([A-Za-z0-9_-]{86})$")

# RFC 9421 (protocol/src/messageSignature.ts, byte for byte)
ACCEPT_SIGNATURE_HEADER = "accept-signature"
SIGNATURE_INPUT_HEADER = "signature-input"
MESSAGE_SIGNATURE_HEADER = "signature"
SIGNATURE_LABEL = "floatd"
COVERED_COMPONENTS = '("@status" "content-digest" "floatd-date" "@method";req "@path";req "@query";req)'
ACCEPT_SIGNATURE = f"{SIGNATURE_LABEL}={COVERED_COMPONENTS}"
_INPUT_RE = re.compile(
    "^" + SIGNATURE_LABEL + "=(" + re.escape(COVERED_COMPONENTS)
    + r';created=([0-9]{1,12});keyid="([A-Za-z0-9_.:-]{1,128})";alg="(ed25519|hmac-sha256)"(?:;nonce="([A-Za-z0-9._~+/=-]{1,64})")?)$'
)
_MESSAGE_SIG_RE = re.compile("^" + SIGNATURE_LABEL + r"=:([A-Za-z0-9+/]{1,200}={0,2}):$")


def signing_input(status: int, method: str, path: str, nonce: str, date: str, digest: str) -> str:
    return f"{SIGNATURE_VERSION}\n{status}\n{method}\n{path}\n{nonce}\n{date}\n{digest}"


def signature_base(status: int, method: str, target: str, digest: str, date: str, params: str) -> str:
    """RFC 9421's signature base of a floatd answer; ``target`` is the request's path and query."""
    path, _, query = target.partition("?")
    return (
        f'"@status": {status}\n"content-digest": {digest}\n"floatd-date": {date}\n'
        f'"@method";req: {method.upper()}\n"@path";req: {path}\n"@query";req: ?{query}\n"@signature-params": {params}'
    )


def digest_header(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


@dataclass(frozen=True)
class SignedAnswer:
    """What an answer's authenticity is checked on."""

    status: int
    method: str
    path: str
    nonce: str
    headers: Mapping[str, str]
    body: bytes


class AnswerVerifier(Protocol):
    """Decides whether an answer comes from the trusted server; raises FloatingLicenseError(INVALID_SIGNATURE).
    Returns False when the answer carries nothing this verifier understands (e.g. no MAC header)."""

    def verify(self, answer: SignedAnswer) -> bool: ...


class Ed25519AnswerVerifier:
    """``Floatd-Signature`` checked with a server key; ``check(kid, data, sig)`` is the key trust's."""

    def __init__(self, check: Callable[[str, bytes, str], None]) -> None:
        self._check = check

    def verify(self, a: SignedAnswer) -> bool:
        m = _SIG_RE.match(a.headers.get(SIGNATURE_HEADER, "").strip())
        date = a.headers.get(DATE_HEADER)
        digest = a.headers.get(DIGEST_HEADER)
        if not m or not date or not digest:
            return False
        if digest != digest_header(a.body):
            raise FloatingLicenseError("INVALID_SIGNATURE", f"{a.method} {a.path}: the answer's body does not match its signed digest (altered on the way)")
        self._check(m.group(1), signing_input(a.status, a.method, a.path, a.nonce, date, digest).encode(), m.group(2))
        return True


class MessageSignatureVerifier:
    """An RFC 9421 answer: floatd's covered components and parameters exactly, this request's nonce, ``created`` the
    answer's date, and an Ed25519 signature by a trusted server key (``check(kid, data, sig_b64url)``). An HMAC answer
    names a session key, which this client never offered: refused."""

    def __init__(self, check: Callable[[str, bytes, str], None]) -> None:
        self._check = check

    def verify(self, a: SignedAnswer) -> bool:
        given = a.headers.get(SIGNATURE_INPUT_HEADER)
        date = a.headers.get(DATE_HEADER)
        digest = a.headers.get(DIGEST_HEADER)
        if given is None or not date or not digest:
            return False

        def refuse(why: str) -> FloatingLicenseError:
            return FloatingLicenseError("INVALID_SIGNATURE", f"{a.method} {a.path}: the answer's signature {why} (forged, altered or replayed)")

        if digest != digest_header(a.body):
            raise FloatingLicenseError("INVALID_SIGNATURE", f"{a.method} {a.path}: the answer's body does not match its signed digest (altered on the way)")
        m = _INPUT_RE.match(given.strip())
        s = _MESSAGE_SIG_RE.match(a.headers.get(MESSAGE_SIGNATURE_HEADER, "").strip())
        if not m or not s:
            raise refuse("is not one floatd writes")
        params, created, keyid, alg, nonce = m.groups()
        if (nonce or "") != a.nonce:
            raise refuse("is for another request (its nonce differs)")
        try:
            at = datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            raise refuse("has a date that is not one") from None
        if int(created) != math.floor(at.timestamp()):
            raise refuse("and its date disagree")
        if alg != "ed25519":
            raise refuse(f'names session key "{keyid}", which this client does not hold')
        sig = base64.urlsafe_b64encode(base64.b64decode(s.group(1))).decode().rstrip("=")
        self._check(keyid, signature_base(a.status, a.method, a.path, digest, date, params).encode(), sig)
        return True


def normalize_server_url(url: str) -> str:
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise FloatingLicenseError("VALIDATION_FAILED", f'serverUrl "{url}" must be an http(s) URL')
    return f"{u.scheme}://{u.netloc}{u.path}".rstrip("/")


class Api:
    def __init__(self, server_url: str, license_key: str, timeout: float, user_agent: str, now: Callable[[], float]) -> None:
        self.server_url = server_url
        self.license_key = license_key
        self.timeout = timeout
        self.user_agent = user_agent
        self.now = now
        #: tried in order; the first that recognises the answer decides
        self.verifiers: list[AnswerVerifier] = []
        #: which verifier recognised the last answer (its class name), for tests and diagnostics
        self.last_verified_by: str | None = None

    def call(self, route: Route, *, params: dict[str, str] | None = None, query: dict[str, str] | None = None,
             body: Any = None, timeout: float | None = None) -> Any:
        return self.request(route, params=params, query=query, body=body, timeout=timeout)[1]

    def request(self, route: Route, *, params: dict[str, str] | None = None, query: dict[str, str] | None = None,
                body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        path = route.url(params, query)
        if body is None and route.optional_body:
            body = {}
        headers = {"accept": "application/json", "user-agent": self.user_agent}
        signed = route.auth == "license"
        nonce = ""
        if signed:
            headers["authorization"] = f"License {self.license_key}"
            nonce = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            headers[NONCE_HEADER] = nonce
            headers[ACCEPT_SIGNATURE_HEADER] = ACCEPT_SIGNATURE
        data = None
        if body is not None:
            headers["content-type"] = "application/json"
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.server_url + path, data=data, method=route.method, headers=headers)
        try:
            try:
                with urllib.request.urlopen(req, timeout=timeout or self.timeout) as res:
                    status, hdrs, raw = res.status, res.headers, res.read()
            except urllib.error.HTTPError as he:
                status, hdrs, raw = he.code, he.headers, he.read()
        except (urllib.error.URLError, OSError, socket.timeout, ConnectionError) as err:
            why = getattr(err, "reason", err)
            raise FloatingLicenseError("NETWORK_ERROR", f"cannot reach the license server at {self.server_url}: {why}") from err
        lower = {k.lower(): v for k, v in hdrs.items()}
        retry_after = parse_retry_after(lower.get("retry-after"), self.now())
        if signed:
            self._authenticate(SignedAnswer(status, route.method, path, nonce, lower, raw), retry_after)
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                if 200 <= status < 300:
                    raise FloatingLicenseError("BAD_RESPONSE", f"{route.method} {path}: the answer is not JSON (a proxy or captive portal?)") from None
        if not 200 <= status < 300:
            raise error_from_response(status, parsed, retry_after)
        return status, parsed

    def _authenticate(self, a: SignedAnswer, retry_after: float | None) -> None:
        if not self.verifiers:
            raise FloatingLicenseError("INVALID_SIGNATURE", "no trusted server key to verify the answer with")
        for v in self.verifiers:
            if v.verify(a):
                self.last_verified_by = type(v).__name__
                return
        # unsigned: not floatd's answer; a 5xx/429 from a proxy is retried as such, anything else is BAD_RESPONSE
        if a.status >= 500:
            raise FloatingLicenseError("SERVICE_UNAVAILABLE", f"the server answered HTTP {a.status} (unsigned)", status=a.status)
        if a.status == 429:
            raise FloatingLicenseError("RATE_LIMITED", "asked to slow down (HTTP 429, unsigned)", status=429, retry_after=retry_after)
        raise FloatingLicenseError("BAD_RESPONSE", f"{a.method} {a.path}: the answer (HTTP {a.status}) is not signed by the license server (a proxy, a captive portal, or tampering)")
