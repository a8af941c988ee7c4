"""HTTP calls to floatd's client API (urllib), and the check of every answer's authenticity.

Every ``/v1/client/*`` answer is signed (protocol/src/responseSignature.ts): headers ``Floatd-Date``,
``Content-Digest: sha-256=:<b64>:`` and ``Floatd-Signature: kid=<kid>;sig=<b64url>`` over
``floatd-response-v1\\n<status>\\n<method>\\n<path?query>\\n<nonce>\\n<date>\\n<digest>``.
What checks the signature is an ``AnswerVerifier``: today Ed25519 with the trusted server keys; a
session-key MAC verifier can be added beside it without touching the transport.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
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


def signing_input(status: int, method: str, path: str, nonce: str, date: str, digest: str) -> str:
    return f"{SIGNATURE_VERSION}\n{status}\n{method}\n{path}\n{nonce}\n{date}\n{digest}"


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
                return
        # unsigned: not floatd's answer; a 5xx/429 from a proxy is retried as such, anything else is BAD_RESPONSE
        if a.status >= 500:
            raise FloatingLicenseError("SERVICE_UNAVAILABLE", f"the server answered HTTP {a.status} (unsigned)", status=a.status)
        if a.status == 429:
            raise FloatingLicenseError("RATE_LIMITED", "asked to slow down (HTTP 429, unsigned)", status=429, retry_after=retry_after)
        raise FloatingLicenseError("BAD_RESPONSE", f"{a.method} {a.path}: the answer (HTTP {a.status}) is not signed by the license server (a proxy, a captive portal, or tampering)")
