"""What the Python SDK says about its machine, and sharing rules through it, against a real floatd server."""
from __future__ import annotations

import os
import re

import pytest

from floatd import FloatingLicenseError, detect_environment, machine_environment
from harness import sdk_client as make

BOOT = "0f8e6b52-5f7e-4a5b-9d4e-2c3b1a0f9e8d"
CPU_VM = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm\n"
CPU_METAL = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr lahf_lm\n"


def machine(tmp_path, files):
    for path, text in files.items():
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc/sys/kernel/random/boot_id").write_text(BOOT + "\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    "files,env,want",
    [
        ({"proc/cpuinfo": CPU_METAL, "proc/1/cgroup": "0::/init.scope\n"}, {}, {"vm": False, "container": False}),
        ({"proc/cpuinfo": CPU_VM}, {}, {"vm": True, "container": False}),
        ({"proc/cpuinfo": CPU_METAL, "sys/class/dmi/id/sys_vendor": "QEMU\n"}, {}, {"vm": True}),
        ({"proc/cpuinfo": CPU_METAL, "sys/class/dmi/id/product_name": "Virtual Machine\n"}, {}, {"vm": True}),
        ({"proc/cpuinfo": CPU_METAL, ".dockerenv": ""}, {}, {"vm": False, "container": True}),
        ({"proc/cpuinfo": CPU_METAL, "run/.containerenv": "engine=podman\n"}, {}, {"container": True}),
        ({"proc/cpuinfo": CPU_METAL, "proc/1/cgroup": "11:pids:/kubepods/burstable/pod1/abc\n"}, {}, {"container": True}),
        ({"proc/cpuinfo": CPU_METAL}, {"container": "lxc"}, {"container": True}),
    ],
)
def test_detection_from_the_files_a_machine_shows(tmp_path, files, env, want):
    got = detect_environment(machine(tmp_path, files), env, "linux")
    for k, v in want.items():
        assert got[k] is v, (k, got)
    assert got["bootId"] == BOOT


def test_detection_elsewhere(tmp_path):
    assert detect_environment(str(tmp_path), {}, "linux") == {"container": False}
    mac = {"kern.hv_vmm_present": "1\n", "kern.bootsessionuuid": "A1B2C3D4-0000-1111-2222-333344445555\n"}
    assert detect_environment("/nonexistent", {}, "darwin", mac.get) == {
        "vm": True,
        "container": False,
        "bootId": "A1B2C3D4-0000-1111-2222-333344445555",
    }
    assert detect_environment("/nonexistent", {}, "win32") == {}


def test_this_machine_is_a_vm_in_a_container_and_the_sdk_says_so():
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("not Linux")
    env = machine_environment()
    cpu = open("/proc/cpuinfo").read()
    assert env["vm"] is bool(re.search(r"^flags\s*:.*\bhypervisor\b", cpu, re.MULTILINE))
    if os.path.exists("/.dockerenv"):
        assert env["container"] is True
    assert env["bootId"] == open("/proc/sys/kernel/random/boot_id").read().strip()




def test_a_rule_by_user_shares_one_seat_across_two_devices(server, tmp_path):
    lic = server.make_license({"seats": 1, "sharing": {"by": ["user"], "cap": None}})
    a = make(server, lic, tmp_path / "a", fingerprint="py-share-device-a", user="lee", hostname="ws-a")
    b = make(server, lic, tmp_path / "b", fingerprint="py-share-device-b", user="lee", hostname="ws-b")
    ra, rb = a.checkout(), b.checkout()
    assert ra.ok and rb.ok
    assert rb.status.lease_id == ra.status.lease_id
    assert rb.status.share_group == "user=lee" and rb.status.instances == 2 and not rb.created
    c = make(server, lic, tmp_path / "c", fingerprint="py-share-device-c", user="max")
    rc = c.checkout()
    assert not rc.ok and rc.code == "NO_SEATS_AVAILABLE"
    for x in (a, b, c):
        x.close(checkin=False)


def test_vm_policy_deny_refuses_this_machine_unless_reporting_is_off(server, tmp_path):
    env = machine_environment()
    lic = server.make_license({"seats": 2, "vmPolicy": "deny"})
    lic_a = make(server, lic, tmp_path / "a", fingerprint="py-vm-device-1")
    if env.get("vm") or env.get("container"):
        with pytest.raises(FloatingLicenseError) as e:
            lic_a.checkout()
        assert e.value.code == "VM_NOT_ALLOWED"
    else:
        assert lic_a.checkout().ok
    quiet = make(server, lic, tmp_path / "b", fingerprint="py-vm-device-2", report_environment=False)
    assert quiet.checkout().ok
    for x in (lic_a, quiet):
        x.close(checkin=False)
