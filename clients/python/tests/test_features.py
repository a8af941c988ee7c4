"""Feature pools through the Python SDK against a real floatd server: pools by name, set_features on a held seat,
has_feature, and a full feature pool answered as a denial."""
from __future__ import annotations

import pytest

from floatd import FloatingLicenseError
from harness import sdk_client as make




def test_pools_by_name_feature_changes_and_a_full_feature_pool(server, tmp_path):
    lic = server.make_license({"seats": 2, "features": [{"name": "render", "seats": 1}]})
    cad = make(server, lic, tmp_path / "a", fingerprint="py-feat-device-1")
    r = cad.checkout()
    assert r.ok and r.status.features == ["base"]
    assert not cad.has_feature("render")
    assert cad.set_features(["base", "render"]).features == ["base", "render"]
    assert cad.has_feature("render")

    farm = make(server, lic, tmp_path / "b", fingerprint="py-feat-farm-1", features=["render"])
    denied = farm.checkout()
    assert not denied.ok
    assert denied.code == "NO_FEATURE_SEATS_AVAILABLE" and denied.feature == "render"
    assert "of feature render" in denied.message

    cad.set_features(["base"])
    got = farm.checkout()
    assert got.ok and got.status.features == ["render"]
    with pytest.raises(FloatingLicenseError) as e:
        cad.set_features(["base", "render"])
    assert e.value.code == "NO_FEATURE_SEATS_AVAILABLE"
    assert cad.status().features == ["base"]
    with pytest.raises(FloatingLicenseError) as e:
        cad.set_features(["render"])
    assert e.value.code == "BASE_POOL_FIXED"
    with pytest.raises(FloatingLicenseError) as e:
        make(server, lic, tmp_path / "c", fingerprint="py-feat-device-3", features=["simulate"]).checkout()
    assert e.value.code == "UNKNOWN_FEATURE"
    for x in (cad, farm):
        x.close(checkin=False)


def test_wait_uses_the_server_queue_and_holders_hear_that_others_wait(server, tmp_path):
    lic = server.make_license({"seats": 1})
    holder = make(server, lic, tmp_path / "h", fingerprint="py-queue-holder")
    heard = []
    holder.on("others_waiting", lambda i: heard.append(i["waiting"]))
    assert holder.checkout().ok
    first = make(server, lic, tmp_path / "a", fingerprint="py-queue-first")
    second = make(server, lic, tmp_path / "b", fingerprint="py-queue-second")
    # One ask each (a zero timeout: the answer, not a wait): the places in the queue, in arrival order.
    d1 = first.checkout(wait=True, timeout=0)
    d2 = second.checkout(wait=True, timeout=0)
    assert not d1.ok and d1.queue["position"] == 1
    assert not d2.ok and d2.queue["position"] == 2 and d2.queue["pollWithinSeconds"] == 15
    holder.checkout(features=["base"])  # held: no change
    holder.checkin()
    # The seat is held for the head: the second asks and is refused, the first gets it.
    assert not second.checkout(wait=True, timeout=0).ok
    got = first.checkout(wait=True, timeout=0)
    assert got.ok and got.status.others_waiting == 1
    for x in (holder, first, second):
        x.close(checkin=False)
