"""What the SDK can tell about the machine it runs on without privileges, for the server's sharing rule,
clone policy and VM policy: whether it runs in a virtual machine or a container, and the boot id.
Each is a claim (docs/security.md): a patched client can say anything. Mirrors the Node SDK's
packages/client/src/environment.ts. Never raises; what cannot be read is left out."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Callable, Mapping, Optional

_HYPERVISOR = re.compile(
    r"\b(QEMU|KVM|VMware|VirtualBox|innotek|Xen|HVM domU|Microsoft Corporation Virtual Machine|Virtual Machine|Amazon EC2|"
    r"Google Compute Engine|Parallels|Bochs|BHYVE|OpenStack|DigitalOcean|Hetzner vServer)\b",
    re.IGNORECASE,
)
_CONTAINER_CGROUP = re.compile(r"(docker|kubepods|containerd|lxc|libpod|podman)")
_BOOT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def detect_environment(
    root: str = "/",
    env: Optional[Mapping[str, str]] = None,
    platform: Optional[str] = None,
    sysctl: Optional[Callable[[str], Optional[str]]] = None,
) -> dict:
    """``{"vm": bool, "container": bool, "bootId": str}``, each key present only when known."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform

    def read(path: str) -> Optional[str]:
        try:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    out: dict = {}
    if platform.startswith("linux"):
        cpuinfo = read("proc/cpuinfo")
        dmi = " ".join(
            x for x in (read("sys/class/dmi/id/sys_vendor"), read("sys/class/dmi/id/product_name"), read("sys/class/dmi/id/board_vendor")) if x
        )
        if cpuinfo is not None or dmi:
            flag = cpuinfo is not None and re.search(r"^flags\s*:.*\bhypervisor\b", cpuinfo, re.MULTILINE) is not None
            out["vm"] = bool(flag or _HYPERVISOR.search(dmi))
        cgroup = read("proc/1/cgroup") or ""
        out["container"] = (
            read(".dockerenv") is not None
            or read("run/.containerenv") is not None
            or bool(env.get("container"))
            or _CONTAINER_CGROUP.search(cgroup) is not None
        )
        boot = (read("proc/sys/kernel/random/boot_id") or "").strip()
        if boot and _BOOT_ID.fullmatch(boot):
            out["bootId"] = boot
    elif platform == "darwin" and sysctl is not None:
        hv = sysctl("kern.hv_vmm_present")
        if hv is not None:
            out["vm"] = hv.strip() == "1"
        out["container"] = False
        boot = (sysctl("kern.bootsessionuuid") or "").strip()
        if boot and _BOOT_ID.fullmatch(boot):
            out["bootId"] = boot
    elif env.get("container"):
        out["container"] = True
    return out


def _sysctl(name: str) -> Optional[str]:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=True).stdout
    except Exception:  # noqa: BLE001 - detection never fails the caller
        return None


_cached: Optional[dict] = None


def machine_environment() -> dict:
    """This machine's environment, read once per process."""
    global _cached
    if _cached is None:
        _cached = detect_environment("/", os.environ, sys.platform, _sysctl)
    return dict(_cached)
