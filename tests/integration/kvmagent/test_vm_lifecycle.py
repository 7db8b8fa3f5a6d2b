"""VM lifecycle through a real kvmagent on a simulated host: real qemu guests, observed
in libvirt and in the guest's serial console."""

import socket
import time
import uuid

import pytest

from devcluster.kvmhost import storage_dir

pytestmark = pytest.mark.integration


def booted(kvm, vm):
    return kvm.wait_console(vm, lambda r: r.ready and r, "guest boot")


def test_start_is_observed_in_libvirt_and_the_guest_and_is_idempotent(kvm_host):
    cmd = kvm_host.start_cmd()
    vm = cmd["vmInstanceUuid"]
    reply = kvm_host.call_async("/vm/start", cmd)
    assert reply == {"success": True, "error": "", "vmState": "Running",
                     "alreadyRunning": False}
    report = booted(kvm_host, vm)
    assert report.ip("eth0", ).startswith("10.250.0.")
    assert report.nics["eth0"] == "52:54:00:10:00:01"
    assert report.disks["vda"] == 64 << 20  # the root volume
    assert vm in kvm_host.virsh("list", "--name")
    # the domain carries the VM's identity for operators
    xml = kvm_host.virsh("dumpxml", vm)
    assert "zfleet.zstack.io" in xml and f"test vm {vm[:6]}" in xml

    states = kvm_host.call("/vm/vmsync").json()["states"]
    assert states == {vm: "Running"}
    other = uuid.uuid4().hex
    assert kvm_host.call("/vm/checkstate", {"vmUuids": [vm, other]}).json()["states"] == {
        vm: "Running", other: "Stopped"}

    # starting it again with the same definition is a success that changes nothing
    again = kvm_host.call_async("/vm/start", cmd)
    assert again["success"] and again["alreadyRunning"] is True
    # with a different one it is refused, naming the difference
    bigger = kvm_host.call_async("/vm/start", {**cmd, "memory": 2 * cmd["memory"]})
    assert bigger["success"] is False and "different definition" in bigger["error"]
    assert "memory_bytes" in bigger["error"]

    vnc = kvm_host.call("/vm/getvncport", {"vmUuid": vm}).json()
    assert vnc["protocol"] == "vnc" and vnc["port"] >= 5900
    with socket.create_connection((kvm_host.host.mgmt_address, vnc["port"]), timeout=5) as s:
        assert s.recv(12).startswith(b"RFB ")


def test_stop_pause_resume_reboot_destroy(kvm_host):
    cmd = kvm_host.start_cmd()
    vm = cmd["vmInstanceUuid"]
    assert kvm_host.call_async("/vm/start", cmd)["success"]
    booted(kvm_host, vm)

    assert kvm_host.call_async("/vm/pause", {"uuid": vm})["vmState"] == "Paused"
    assert "paused" in kvm_host.virsh("domstate", vm)
    assert kvm_host.call_async("/vm/resume", {"uuid": vm})["vmState"] == "Running"
    assert "running" in kvm_host.virsh("domstate", vm)

    reply = kvm_host.call_async("/vm/reboot", {"uuid": vm, "timeout": 20})
    assert reply["success"], reply
    # the guest powered off on ACPI and booted a second time
    kvm_host.wait_console(vm, lambda r: kvm_host.console_text(vm).count("ZFLEET-READY") == 2,
                          "second boot")
    assert "ZFLEET-POWEROFF" in kvm_host.console_text(vm)

    started = time.monotonic()
    reply = kvm_host.call_async("/vm/stop", {"uuid": vm, "timeout": 20})
    assert reply == {"success": True, "error": "", "vmState": "Stopped"}
    assert time.monotonic() - started < 15  # graceful ACPI, not the forced fallback
    assert kvm_host.console_text(vm).count("ZFLEET-POWEROFF") == 2
    assert vm not in kvm_host.virsh("list", "--all", "--name")

    # stop and destroy are idempotent
    assert kvm_host.call_async("/vm/stop", {"uuid": vm})["success"]
    assert kvm_host.call_async("/vm/start", cmd)["success"]
    assert kvm_host.call_async("/vm/destroy", {"uuid": vm})["success"]
    assert vm not in kvm_host.virsh("list", "--all", "--name")
    assert kvm_host.call_async("/vm/destroy", {"uuid": vm})["success"]
    # none of that was the guest's own doing: nothing reported as out-of-band
    time.sleep(0.5)
    assert [r for r in kvm_host.receiver.received if r.headers.get("commandpath")] == []


def test_operations_on_a_vm_that_is_not_here_fail_clearly(kvm_host):
    vm = uuid.uuid4().hex
    for path in ("/vm/pause", "/vm/resume", "/vm/reboot"):
        reply = kvm_host.call_async(path, {"uuid": vm})
        assert reply["success"] is False
        assert f"vm {vm} is not running on this host" in reply["error"]
    r = kvm_host.call("/vm/getvncport", {"vmUuid": vm})
    assert r.json()["success"] is False


@pytest.mark.parametrize("change, field", [
    ({"memory": -1}, "memory"),
    ({"vmName": "bad\nname"}, "vmName"),
    ({"vmInstanceUuid": "../../etc"}, "vmInstanceUuid"),
    ({"cpuNum": 0}, "cpuNum"),
    ({"nics": [{"uuid": uuid.uuid4().hex, "mac": "52:54:00:10:00:09",
                "bridgeName": "br0;reboot", "deviceId": 0}]}, "nics.0.bridgeName"),
    ({"rootVolume": {"volumeUuid": uuid.uuid4().hex, "deviceId": 0,
                     "installPath": "/var/../etc/passwd"}}, "rootVolume.installPath"),
])
def test_hostile_start_commands_are_400s_naming_the_field(kvm_host, change, field):
    cmd = {**kvm_host.start_cmd(), **change}
    r = kvm_host.post_async("/vm/start", cmd)
    assert r.status_code == 400 and r.json()["error"].startswith(field), r.text
    assert kvm_host.virsh("list", "--all", "--name").strip() == ""


def test_missing_bridge_or_volume_fails_naming_the_field_and_starts_nothing(kvm_host):
    cmd = kvm_host.start_cmd()
    cmd["nics"][0]["bridgeName"] = "nosuchbr"
    reply = kvm_host.call_async("/vm/start", cmd)
    assert reply["success"] is False
    assert reply["error"] == "nics.0.bridgeName: no bridge 'nosuchbr' on this host"
    cmd = kvm_host.start_cmd()
    cmd["rootVolume"]["installPath"] = f"{storage_dir(kvm_host.host)}/nonexistent/root.qcow2"
    reply = kvm_host.call_async("/vm/start", cmd)
    assert reply["error"].startswith("rootVolume.installPath: no such file")
    assert kvm_host.virsh("list", "--all", "--name").strip() == ""
