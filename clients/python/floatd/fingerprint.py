"""Device fingerprint, the same as the Node SDK's: ``fp1:`` + base64url(SHA-256("floatd-device-v1\\0" + id))."""
from __future__ import annotations

import os
import re
import socket

from .state import b64url, sha256, write_atomic

FINGERPRINT_RE = re.compile(r"[A-Za-z0-9_.:+/=-]{8,128}")


def hash_machine_id(raw: str) -> str:
    return "fp1:" + b64url(sha256("floatd-device-v1\0" + raw.strip().lower()))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            v = f.read().strip()
        return v if len(v) >= 8 else None
    except OSError:
        return None


def device_fingerprint(*, machine_id: str | None = None, state_dir: str | None = None) -> str:
    """From ``machine_id``, else /etc/machine-id, else an id generated once in ``state_dir/device-id``."""
    raw = machine_id or _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    if raw is None and state_dir:
        p = os.path.join(state_dir, "device-id")
        raw = _read(p)
        if raw is None:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            raw = os.urandom(16).hex()
            write_atomic(p, raw + "\n")
    return hash_machine_id(raw or socket.gethostname())
