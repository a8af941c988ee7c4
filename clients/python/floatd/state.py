"""The state directory, in the same layout and format as the Node SDK's (packages/client/src/state.ts):

    <state_dir>/<ns>/   ns = sha256(origin \\n key \\n fingerprint)[:24 hex]; mode 0700
      jwks.json  clock.json  lease.json  offline.json   sealed (HMAC over name and body)
      instances/<id>.json                               instances started and not checked in

Files are replaced atomically (temporary file, fsync, rename).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
from dataclasses import dataclass
from typing import Any


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.{os.urandom(3).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        finally:
            raise


@dataclass
class SealedRead:
    kind: str  # "missing" | "tampered" | "ok"
    data: Any = None
    reason: str = ""


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True
    except OSError:
        return False


class StateDir:
    def __init__(self, root: str, origin: str, license_key: str, fingerprint: str) -> None:
        ns = hashlib.sha256(f"{origin}\n{license_key}\n{fingerprint}".encode()).hexdigest()[:24]
        self.dir = os.path.join(root, ns)
        self._key = hmac.new(b"floatd-client-state-v1", f"{fingerprint}\0{license_key}".encode(), hashlib.sha256).digest()

    def ensure(self) -> None:
        os.makedirs(os.path.join(self.dir, "instances"), mode=0o700, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _mac(self, name: str, body: str) -> str:
        return b64url(hmac.new(self._key, name.encode() + b"\0" + body.encode(), hashlib.sha256).digest())

    def write_sealed(self, name: str, data: Any) -> None:
        body = json.dumps(data, separators=(",", ":"))
        write_atomic(self.path(name), json.dumps({"v": 1, "body": body, "mac": self._mac(name, body)}, separators=(",", ":")) + "\n")

    def read_sealed(self, name: str) -> SealedRead:
        try:
            with open(self.path(name), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return SealedRead("missing")
        try:
            outer = json.loads(text)
            if not isinstance(outer, dict) or outer.get("v") != 1 or not isinstance(outer.get("body"), str) or not isinstance(outer.get("mac"), str):
                return SealedRead("tampered", reason="not a sealed state file")
            if not hmac.compare_digest(self._mac(name, outer["body"]), outer["mac"]):
                return SealedRead("tampered", reason="its HMAC does not match (edited by hand?)")
            return SealedRead("ok", json.loads(outer["body"]))
        except (json.JSONDecodeError, ValueError):
            return SealedRead("tampered", reason="not valid JSON")

    def remove(self, name: str) -> None:
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

    # instance registry
    def register_instance(self, entry: dict[str, Any]) -> None:
        write_atomic(os.path.join(self.dir, "instances", f"{entry['instanceId']}.json"), json.dumps({"host": socket.gethostname(), **entry}) + "\n")

    def unregister_instance(self, instance_id: str) -> None:
        try:
            os.unlink(os.path.join(self.dir, "instances", f"{instance_id}.json"))
        except OSError:
            pass

    def instances(self) -> list[dict[str, Any]]:
        d = os.path.join(self.dir, "instances")
        try:
            names = os.listdir(d)
        except OSError:
            return []
        out = []
        for n in names:
            if not n.endswith(".json"):
                continue
            try:
                with open(os.path.join(d, n), encoding="utf-8") as f:
                    e = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(e, dict) or not isinstance(e.get("instanceId"), str) or not isinstance(e.get("pid"), int):
                continue
            host = e.get("host")
            e["alive"] = not e.get("closedAt") and (True if host is not None and host != socket.gethostname() else process_alive(e["pid"]))
            out.append(e)
        return out
