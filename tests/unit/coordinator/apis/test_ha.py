"""VM HA levels through the API: set, read, removed; a wrong level is refused naming the
field, and changes nothing."""

from coordinator.db import new_uuid


def _vm(coordinator) -> str:
    uuid = new_uuid()
    coordinator.ctx.db.insert("vm", {"uuid": uuid, "name": "v", "state": "Stopped"})
    return uuid


def test_set_get_delete_level(coordinator):
    vm = _vm(coordinator)
    assert coordinator("GetVmInstanceHaLevel", uuid=vm)["level"] is None
    inv = coordinator("SetVmInstanceHaLevel", uuid=vm, level="NeverStop")["inventory"]
    assert inv["haLevel"] == "NeverStop"
    assert coordinator.query("QueryVmInstance", haLevel="NeverStop")[0]["uuid"] == vm
    coordinator("DeleteVmInstanceHaLevel", uuid=vm)
    assert coordinator("GetVmInstanceHaLevel", uuid=vm)["level"] is None


def test_a_wrong_level_or_vm_is_refused_naming_the_field(coordinator):
    vm = _vm(coordinator)
    coordinator("SetVmInstanceHaLevel", uuid=vm, level="OnHostFailure")
    reply = coordinator.post("SetVmInstanceHaLevel", uuid=vm, level="Always")
    assert not reply["success"] and "level" in reply["error"]
    reply = coordinator.post("SetVmInstanceHaLevel", uuid=new_uuid(), level="NeverStop")
    assert not reply["success"] and "uuid" in reply["error"]
    assert coordinator("GetVmInstanceHaLevel", uuid=vm)["level"] == "OnHostFailure"


def test_create_refuses_an_unknown_ha_tag_before_anything_else(coordinator):
    reply = coordinator.post("CreateVmInstance", name="v", imageUuid=new_uuid(),
                             instanceOfferingUuid=new_uuid(), l3NetworkUuids=[new_uuid()],
                             systemTags=["ha::Sometimes"])
    assert not reply["success"] and "systemTags" in reply["error"], reply
    assert coordinator.query("QueryVmInstance") == []
