"""Per-use session keys (issue #17; docs/api.md "RFC 9421 answers and session keys"), the client's half.

A checkout offers a fresh X25519 public key (``session.x25519``); the server's Ed25519-signed grant carries its
own half. Both sides derive the use's 32-byte session key with HKDF-SHA256 over the X25519 shared secret, salted
with the lease id, and name it ``ses_`` + 22 base64url characters of SHA-256(``floatd-session-keyid-v1`` ‖ key).
The answers on the use (heartbeat, check-in, feature changes) are then HMAC-SHA256-signed under it (http.py,
``SessionKeyVerifier``). Byte for byte as packages/protocol/src/sessionKeys.ts and messageSignature.ts.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: HKDF-SHA256 with the lease id (UTF-8) as salt and this info, 32 bytes out (SESSION_KDF)
SESSION_KDF_INFO = b"floatd-session-v1"
SESSION_KEY_LENGTH = 32
SESSION_KEYID_PREFIX = b"floatd-session-keyid-v1"
_X25519_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


@dataclass(frozen=True)
class SessionKey:
    """A use's session key and its ``keyid`` (``ses_…``), the id requests name in ``Accept-Signature``."""

    keyid: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class X25519Offer:
    """A fresh X25519 key pair: the private half, and the public half as the wire's 43 base64url characters."""

    private_key: X25519PrivateKey = field(repr=False)
    x25519: str


def new_offer() -> X25519Offer:
    """A new key pair for one checkout (or one re-exchange)."""
    private_key = X25519PrivateKey.generate()
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return X25519Offer(private_key, _b64url(raw))


def shared_secret(private_key: X25519PrivateKey, peer_x25519: object) -> bytes | None:
    """The X25519 shared secret with the peer's public key (base64url); None when that is not an X25519 public key
    or is a low-order point (the secret all zeros: a key anyone could compute, RFC 7748 §6.1)."""
    if not isinstance(peer_x25519, str) or not _X25519_RE.match(peer_x25519):
        return None
    try:
        peer = X25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(peer_x25519 + "="))
        shared = private_key.exchange(peer)
    except ValueError:  # cryptography refuses an all-zero secret itself; checked below all the same
        return None
    return None if not any(shared) else shared


def session_key_of(shared: bytes, lease_id: str) -> bytes:
    """The use's session key: HKDF-SHA256 over the shared secret, salted with the lease id."""
    return HKDF(algorithm=hashes.SHA256(), length=SESSION_KEY_LENGTH, salt=lease_id.encode("utf-8"), info=SESSION_KDF_INFO).derive(shared)


def session_key_id(key: bytes) -> str:
    """``ses_`` + the first 22 base64url characters of SHA-256(``SESSION_KEYID_PREFIX`` ‖ key)."""
    return "ses_" + _b64url(hashlib.sha256(SESSION_KEYID_PREFIX + key).digest())[:22]


def agreed_key(offer: X25519Offer, server_x25519: object, lease_id: str) -> SessionKey | None:
    """The session key from the server's half of the exchange ``offer`` started; None when that half is unusable."""
    shared = shared_secret(offer.private_key, server_x25519)
    if shared is None:
        return None
    key = session_key_of(shared, lease_id)
    return SessionKey(session_key_id(key), key)
