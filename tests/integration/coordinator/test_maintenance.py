"""Maintenance mode with real guests: the host's VMs live-migrate away, it takes no new
VMs until it is enabled again."""

import pytest

pytestmark = pytest.mark.integration


def test_maintenance_empties_a_host_by_live_migration(cloud):
    api = cloud.api
    a, b = api.query("QueryHost")
    vms = [cloud.create_vm(f"m{i}", hostUuid=a["uuid"]) for i in range(2)]
    for vm in vms:
        cloud.wait_console(vm["uuid"], lambda r: r.ip(), f"{vm['name']}'s lease")
    reply = api("ChangeHostState", uuid=a["uuid"], stateEvent="maintain")
    assert reply["inventory"]["state"] == "Maintenance"
    assert sorted(reply["migrated"]) == ["m0", "m1"] and reply["stopped"] == []
    for vm in vms:
        [now] = api.query("QueryVmInstance", uuid=vm["uuid"])
        assert now["state"] == "Running" and now["hostUuid"] == b["uuid"]
    assert api.query("QueryHost", uuid=a["uuid"])[0]["allocatedMemory"] == 0
    refused = api.post("CreateVmInstance", name="nope", imageUuid=cloud.image,
                       instanceOfferingUuid=cloud.offering, l3NetworkUuids=[cloud.l3],
                       hostUuid=a["uuid"])
    assert not refused["success"] and "no Connected and Enabled host" in refused["error"]
    api("ChangeHostState", uuid=a["uuid"], stateEvent="enable")
    assert api.query("QueryHost", uuid=a["uuid"])[0]["state"] == "Enabled"
