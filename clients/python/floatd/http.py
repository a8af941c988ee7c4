"""HTTP calls to floatd's client API (urllib), and the check of every answer's authenticity.

Every ``/v1/client/*`` answer is signed. The SDK asks for HTTP Message Signatures (RFC 9421, docs/api.md "RFC 9421
answers and session keys") by sending ``Accept-Signature`` on every client request; the server then signs in
``Signature-Input`` / ``Signature`` (label ``floatd``, ``@status``, ``content-digest``, ``floatd-date`` and the
request's method, path and query, with ``created``, ``keyid``, ``alg`` and this request's ``nonce``):

- with its Ed25519 lease-token key (``alg="ed25519"``, ``keyid`` a JWKS ``kid``): checkouts, errors, and any
  request that names no session key (``MessageSignatureVerifier``);
- with HMAC-SHA256 under the use's session key (``alg="hmac-sha256"``, ``keyid`` ``ses_…``): the 2xx answers to a
  heartbeat, check-in or feature change whose ``Accept-Signature`` names the key the client holds
  (``…;keyid="ses_…"``, session_keys.py; ``SessionKeyVerifier``). An HMAC answer under any other key id, or an
  HMAC-signed error, is refused as forged.

An older server that does not know ``Accept-Signature`` answers with ``Floatd-Signature``
(protocol/src/responseSignature.ts: ``Floatd-Date``, ``Content-Digest: sha-256=:<b64>:`` and
``Floatd-Signature: kid=<kid>;sig=<b64url>`` over
``floatd-response-v1\\n<status>\\n<method>\\n<path?query>\\n<nonce>\\n<date>\\n<digest>``), which is still accepted
(``Ed25519AnswerVerifier``). What checks a signature is an ``AnswerVerifier``; ``Api.verifiers`` tries them in order.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
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
from .session_keys import SessionKey

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


def accept_signature(keyid: str | None = None) -> str:
    """``Accept-Signature`` naming the session key the client holds (without one: ``ACCEPT_SIGNATURE``)."""
    return ACCEPT_SIGNATURE if keyid is None else f'{ACCEPT_SIGNATURE};keyid="{keyid}"'


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
    #: the session key this request named in ``Accept-Signature``: an HMAC answer is checked with it, and only it
    session_key: SessionKey | None = None


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


@dataclass(frozen=True)
class _MessageSignature:
    """A ``Signature-Input`` floatd writes, checked against this request (nonce) and the answer (digest, date)."""

    params: str
    keyid: str
    alg: str
    signature: bytes
    base: bytes


def _read_message_signature(a: SignedAnswer) -> _MessageSignature | None:
    """The RFC 9421 signature of an answer, before the signature itself is checked: None without ``Signature-Input``
    (not an RFC 9421 answer); INVALID_SIGNATURE when the body does not match its digest, the parameters are not
    exactly floatd's, the nonce is not this request's, or ``created`` is not the answer's date."""
    given = a.headers.get(SIGNATURE_INPUT_HEADER)
    date = a.headers.get(DATE_HEADER)
    digest = a.headers.get(DIGEST_HEADER)
    if given is None or not date or not digest:
        return None
    if digest != digest_header(a.body):
        raise FloatingLicenseError("INVALID_SIGNATURE", f"{a.method} {a.path}: the answer's body does not match its signed digest (altered on the way)")
    m = _INPUT_RE.match(given.strip())
    s = _MESSAGE_SIG_RE.match(a.headers.get(MESSAGE_SIGNATURE_HEADER, "").strip())
    if not m or not s:
        raise _refuse(a, "is not one floatd writes")
    params, created, keyid, alg, nonce = m.groups()
    if (nonce or "") != a.nonce:
        raise _refuse(a, "is for another request (its nonce differs)")
    try:
        at = datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse(a, "has a date that is not one") from None
    if int(created) != math.floor(at.timestamp()):
        raise _refuse(a, "and its date disagree")
    try:
        signature = base64.b64decode(s.group(1), validate=True)
    except ValueError:
        raise _refuse(a, "is not one floatd writes") from None
    base = signature_base(a.status, a.method, a.path, digest, date, params).encode()
    return _MessageSignature(params, keyid, alg, signature, base)


def _refuse(a: SignedAnswer, why: str) -> FloatingLicenseError:
    return FloatingLicenseError("INVALID_SIGNATURE", f"{a.method} {a.path}: the answer's signature {why} (forged, altered or replayed)")


class SessionKeyVerifier:
    """An RFC 9421 answer signed with HMAC-SHA256 under the use's session key (``alg="hmac-sha256"``): floatd's
    covered components and parameters exactly, this request's nonce, ``created`` the answer's date, ``keyid`` the
    session key this request named (``SignedAnswer.session_key``), and the HMAC over the signature base, compared in
    constant time. The server signs only 2xx answers so: an HMAC-signed error is refused, as is an HMAC answer under
    any other key id or when this request named none. Answers signed otherwise are not this verifier's (False)."""

    def verify(self, a: SignedAnswer) -> bool:
        sig = _read_message_signature(a)
        if sig is None or sig.alg != "hmac-sha256":
            return False
        key = a.session_key
        if key is None or not hmac.compare_digest(sig.keyid, key.keyid):
            raise _refuse(a, f'names session key "{sig.keyid}", which this client does not hold')
        if not 200 <= a.status < 300:
            raise _refuse(a, f"is an HMAC on an HTTP {a.status} answer, which the server signs with its own key")
        expected = hmac.new(key.key, sig.base, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, sig.signature):
            raise _refuse(a, "does not verify")
        return True


class MessageSignatureVerifier:
    """An RFC 9421 answer: floatd's covered components and parameters exactly, this request's nonce, ``created`` the
    answer's date, and an Ed25519 signature by a trusted server key (``check(kid, data, sig_b64url)``). An HMAC answer
    is ``SessionKeyVerifier``'s, tried first; one that reaches this verifier is refused (no session key checked it)."""

    def __init__(self, check: Callable[[str, bytes, str], None]) -> None:
        self._check = check

    def verify(self, a: SignedAnswer) -> bool:
        sig = _read_message_signature(a)
        if sig is None:
            return False
        if sig.alg != "ed25519":
            raise _refuse(a, f'names session key "{sig.keyid}", which this client does not hold')
        self._check(sig.keyid, sig.base, base64.urlsafe_b64encode(sig.signature).decode().rstrip("="))
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
        #: the held use's session key (agreed at checkout): requests name it in ``Accept-Signature``, and the answers
        #: on that use come HMAC-SHA256-signed under it (``SessionKeyVerifier``); None: Ed25519 answers only
        self.session_key: SessionKey | None = None

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
        session_key = self.session_key if signed else None
        if signed:
            headers["authorization"] = f"License {self.license_key}"
            nonce = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            headers[NONCE_HEADER] = nonce
            # RFC 9421 answers; naming the session key held, the answers on its use come HMAC-signed (others Ed25519)
            headers[ACCEPT_SIGNATURE_HEADER] = accept_signature(session_key.keyid if session_key else None)
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
            self._authenticate(SignedAnswer(status, route.method, path, nonce, lower, raw, session_key), retry_after)
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
