"""Which server keys the SDK trusts (fixed, or pinned on first use) and verification with them:
lease tokens (EdDSA compact JWS) and answer signatures. Same rules as packages/client/src/trust.ts."""
from __future__ import annotations

import base64
import json
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import FloatingLicenseError
from .state import StateDir, b64url, sha256

TOKEN_ISSUER = "floatd"
TOKEN_ALG = "EdDSA"
JWKS_FILE = "jwks.json"


def _invalid(msg: str) -> FloatingLicenseError:
    return FloatingLicenseError("INVALID_SIGNATURE", msg)


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parse_keys(doc: Any) -> list[dict[str, str]]:
    """Keeps only well-formed Ed25519 public keys of a JWKS document or key list."""
    lst = doc if isinstance(doc, list) else doc.get("keys") if isinstance(doc, dict) else None
    out = []
    for k in lst if isinstance(lst, list) else []:
        if not isinstance(k, dict) or k.get("kty") != "OKP" or k.get("crv") != "Ed25519":
            continue
        if not isinstance(k.get("x"), str) or not isinstance(k.get("kid"), str):
            continue
        if k.get("alg") not in (None, TOKEN_ALG, "Ed25519"):
            continue
        out.append({"kty": "OKP", "crv": "Ed25519", "x": k["x"], "kid": k["kid"]})
    return out


class KeyTrust:
    def __init__(self, state: StateDir, fixed: list[dict[str, str]] | None, fetch_jwks: Callable[[], Any]) -> None:
        self.state = state
        self.fixed = fixed
        self.fetch_jwks = fetch_jwks
        self.pinned: list[dict[str, str]] | None = fixed

    def load(self) -> list[dict[str, str]]:
        if self.pinned is not None:
            return self.pinned
        r = self.state.read_sealed(JWKS_FILE)
        if r.kind == "ok":
            self.pinned = parse_keys(r.data)
        return self.pinned or []

    def ensure(self) -> list[dict[str, str]]:
        keys = self.load()
        if keys or self.fixed:
            return keys
        fetched = parse_keys(self.fetch_jwks())
        if not fetched:
            raise FloatingLicenseError("BAD_RESPONSE", "the server published no Ed25519 key at /.well-known/jwks.json")
        self._pin(fetched)
        return fetched

    def _pin(self, keys: list[dict[str, str]]) -> None:
        self.pinned = keys
        self.state.write_sealed(JWKS_FILE, keys)

    def key_for(self, kid: str, may_fetch: bool, what: str = "token") -> dict[str, str]:
        keys = self.ensure() if may_fetch else self.load()
        for k in keys:
            if k["kid"] == kid:
                return k
        if self.fixed or not may_fetch or not keys:
            raise _invalid(f'the {what} is signed by key "{kid}", which this client does not trust')
        # a rotation: accepted only if the server still publishes a key we pinned
        fresh = parse_keys(self.fetch_jwks())
        continuous = any(any(k["kid"] == f["kid"] and k["x"] == f["x"] for k in keys) for f in fresh)
        nxt = next((f for f in fresh if f["kid"] == kid), None)
        if not continuous or nxt is None:
            raise _invalid(f'the {what} is signed by key "{kid}", which is not a rotation of the pinned server keys')
        self._pin(keys + [f for f in fresh if not any(k["kid"] == f["kid"] for k in keys)])
        return nxt

    @staticmethod
    def _public(jwk: dict[str, str]) -> Ed25519PublicKey:
        try:
            return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
        except ValueError as err:
            raise _invalid(f'the trusted key "{jwk["kid"]}" is not a usable Ed25519 key') from err

    def verify_signature(self, kid: str, data: bytes, sig: str) -> None:
        """Checks a detached answer signature; raises INVALID_SIGNATURE."""
        key = self._public(self.key_for(kid, True, "answer"))
        try:
            key.verify(b64url_decode(sig), data)
        except (InvalidSignature, ValueError):
            raise _invalid("the answer's signature does not verify (forged, altered or replayed)") from None

    def verify(self, token: str, *, fingerprint: str, instance_id: str | None = None, lease_id: str | None = None,
               offline: bool | None = None, may_fetch: bool = True) -> dict[str, Any]:
        """Verifies a lease token (EdDSA, trusted kid) and its claims; returns the claims."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3:
            raise _invalid("the lease token is not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
        except (ValueError, json.JSONDecodeError):
            raise _invalid("the lease token header is unreadable") from None
        if not isinstance(header, dict) or header.get("alg") != TOKEN_ALG:
            raise _invalid(f"the lease token uses algorithm {header.get('alg') if isinstance(header, dict) else None}, not {TOKEN_ALG}")
        if not isinstance(header.get("kid"), str):
            raise _invalid("the lease token names no key (kid)")
        if "crit" in header:
            raise _invalid("the lease token has critical header parameters this client does not understand")
        key = self._public(self.key_for(header["kid"], may_fetch))
        try:
            key.verify(b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode())
            claims = json.loads(b64url_decode(parts[1]))
        except (InvalidSignature, ValueError, json.JSONDecodeError):
            raise _invalid("the lease token signature does not verify") from None
        check_claims(claims, fingerprint=fingerprint, instance_id=instance_id, lease_id=lease_id, offline=offline)
        return claims


def check_claims(c: Any, *, fingerprint: str, instance_id: str | None, lease_id: str | None, offline: bool | None) -> None:
    def s(v: Any) -> bool:
        return isinstance(v, str) and len(v) > 0

    def n(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(c, dict) or c.get("iss") != TOKEN_ISSUER:
        raise _invalid("the lease token is not a floatd token")
    if not all(s(c.get(k)) for k in ("sub", "lse", "lic", "dev", "fph", "ins")) or c["sub"] != c["lse"]:
        raise _invalid("the lease token lacks required claims")
    if not n(c.get("iat")) or not n(c.get("hbi")) or not isinstance(c.get("offline"), bool):
        raise _invalid("the lease token lacks required claims")
    if c.get("exp") is not None and (not n(c["exp"]) or c["exp"] < c["iat"]):
        raise _invalid("the lease token has an invalid expiry")
    if c["offline"] and (not n(c.get("oed")) or c["oed"] < c["iat"]):
        raise _invalid("the offline lease token has no valid Offline Expiry Date")

    def mismatch(what: str) -> FloatingLicenseError:
        return FloatingLicenseError("TOKEN_MISMATCH", f"the lease token was issued to another {what}")

    if c["fph"] != b64url(sha256(fingerprint)):
        raise mismatch("device")
    if instance_id is not None and c["ins"] != instance_id:
        raise mismatch("instance")
    if lease_id is not None and c["lse"] != lease_id:
        raise mismatch("lease")
    if offline is not None and c["offline"] != offline:
        raise mismatch("offline lease (expected online)" if not offline else "online lease (expected offline)")
