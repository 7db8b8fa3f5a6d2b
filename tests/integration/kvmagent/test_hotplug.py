"""Hot-plug on running VMs through a real kvmagent: data volumes, NICs and ISO media,
observed in libvirt's live XML and in the guest's serial console (ZFLEET-HOTPLUG/UNPLUG).
Latencies (command sent -> guest reports it) are printed; run with -s to see them."""

import subprocess
import time
import uuid

import pytest

from devcluster.guestconsole import HOTPLUG, UNPLUG
from devcluster.kvmhost import storage_dir
from kvmagent.drivers.domain import parse_domain
from tests.fixtures.ceph import admin_key

pytestmark = pytest.mark.integration

MIB = 1 << 20


def running_vm(kvm, **overrides) -> str:
    cmd = kvm.start_cmd(**overrides)
    reply = kvm.call_async("/vm/start", cmd)
    assert reply["success"], reply
    vm = cmd["vmInstanceUuid"]
    kvm.wait_console(vm, lambda r: r.ready, "guest boot")
    return vm


def live(kvm, vm):
    return parse_domain(kvm.virsh("dumpxml", vm))


def volume(kvm, name: str, device_id: int = 1, size: str = "32M") -> dict:
    path = storage_dir(kvm.host) / "volumes" / f"{name}.qcow2"
    path.parent.mkdir(exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return {"volumeUuid": uuid.uuid4().hex, "deviceId": device_id, "installPath": str(path)}


def seen(kvm, vm, tag, fields, sent, what) -> float:
    """Wait until the guest printed ``tag`` with ``fields``; seconds since ``sent``."""
    kvm.wait_console(vm, lambda r: any(t == tag and fields.items() <= f.items()
                                       for t, f in r.events), what, timeout=20)
    return time.monotonic() - sent


def no_reports(kvm):
    time.sleep(0.5)  # a report would be sent at once
    return [r for r in kvm.receiver.received if r.headers.get("commandpath")] == []


def test_data_volume_attach_is_seen_idempotent_and_detaches(kvm_host):
    vm = running_vm(kvm_host)
    data = volume(kvm_host, "data1")
    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/attachdatavolume", {"vmInstanceUuid": vm, "volume": data})
    acked = time.monotonic() - sent
    assert reply == {"success": True, "error": "", "device": "vdb", "unchanged": False}
    latency = seen(kvm_host, vm, HOTPLUG, {"disk": "vdb", "size": str(32 * MIB)}, sent,
                   "hot-plugged disk in the guest")
    print(f"\nattach disk: reply {acked:.3f}s, guest sees vdb {latency:.2f}s")

    again = kvm_host.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": data})
    assert again["success"] and again["unchanged"] is True
    disks = live(kvm_host, vm).disks
    assert [d.target for d in disks if d.path == data["installPath"]] == ["vdb"]
    assert [d.serial for d in disks if d.target == "vdb"] == [data["volumeUuid"]]

    other = volume(kvm_host, "data2")
    clash = kvm_host.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": other})
    assert clash["success"] is False
    assert "target vdb already holds " + data["installPath"] in clash["error"]
    elsewhere = kvm_host.call_async("/vm/attachdatavolume",
                                    {"vmUuid": vm, "volume": {**data, "deviceId": 2}})
    assert f"{data['installPath']} is already attached as vdb" in elsewhere["error"]

    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/detachdatavolume", {"vmUuid": vm, "volume": data})
    acked = time.monotonic() - sent
    assert reply == {"success": True, "error": "", "device": "vdb", "unchanged": False}
    # the reply came once libvirt no longer listed the disk
    assert data["installPath"] not in kvm_host.virsh("dumpxml", vm)
    latency = seen(kvm_host, vm, UNPLUG, {"disk": "vdb"}, sent, "unplugged disk in the guest")
    print(f"detach disk: reply {acked:.3f}s, guest sees it gone {latency:.2f}s")
    assert kvm_host.console(vm).disks == {"vda": 64 * MIB}

    again = kvm_host.call_async("/vm/detachdatavolume", {"vmUuid": vm, "volume": data})
    assert again == {"success": True, "error": "", "device": "", "unchanged": True}

    # this VM was started without a cdrom: an ISO cannot be inserted, ejecting is a no-op
    iso = storage_dir(kvm_host.host) / "some.iso"
    iso.write_bytes(b"\0" * 2048)
    reply = kvm_host.call_async("/vm/iso/attach", {"vmUuid": vm, "iso": {"path": str(iso)}})
    assert reply["success"] is False
    assert f"vm {vm} has no cdrom drive hdc" in reply["error"]
    assert "bootDev containing 'cdrom', or an isoPath" in reply["error"]
    assert kvm_host.call_async("/vm/iso/detach", {"vmUuid": vm})["unchanged"] is True
    assert no_reports(kvm_host)


def test_ceph_volume_attach_and_detach(rbd_clone, kvm_host):
    secret = str(uuid.uuid4())
    reply = kvm_host.call("/vm/createcephsecret",
                          {"uuid": secret, "userKey": admin_key(rbd_clone.cluster)}).json()
    assert reply["success"], reply
    vm = running_vm(kvm_host)
    data = rbd_clone.volume_to(secret, device_id=1)
    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": data})
    assert reply == {"success": True, "error": "", "device": "vdb", "unchanged": False}
    latency = seen(kvm_host, vm, HOTPLUG, {"disk": "vdb", "size": str(rbd_clone.size)},
                   sent, "hot-plugged RBD disk in the guest")
    print(f"\nattach rbd disk: guest sees vdb {latency:.2f}s")
    [disk] = [d for d in live(kvm_host, vm).disks if d.target == "vdb"]
    assert (disk.rbd_name, disk.rbd_secret_uuid) == (f"{rbd_clone.pool}/vm-root", secret)
    again = kvm_host.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": data})
    assert again["unchanged"] is True

    reply = kvm_host.call_async("/vm/detachdatavolume", {"vmUuid": vm, "volume": data})
    assert reply == {"success": True, "error": "", "device": "vdb", "unchanged": False}
    seen(kvm_host, vm, UNPLUG, {"disk": "vdb"}, sent, "unplugged RBD disk in the guest")
    assert [d.target for d in live(kvm_host, vm).disks] == ["vda"]
    assert no_reports(kvm_host)


def test_nic_attach_gets_a_lease_and_detaches(kvm_host):
    vm = running_vm(kvm_host)
    mac = "52:54:00:10:00:02"
    nic = {"uuid": uuid.uuid4().hex, "mac": mac, "bridgeName": "br0", "deviceId": 1}
    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/attachnic", {"vmUuid": vm, "nic": nic})
    acked = time.monotonic() - sent
    assert reply == {"success": True, "error": "", "device": mac, "unchanged": False}
    shown = seen(kvm_host, vm, HOTPLUG, {"nic": "eth1", "mac": mac}, sent, "NIC in the guest")
    leased = seen(kvm_host, vm, "ZFLEET-LEASE", {"iface": "eth1", "mac": mac}, sent,
                  "lease on the hot-plugged NIC")
    print(f"\nattach nic: reply {acked:.3f}s, guest sees eth1 {shown:.2f}s, "
          f"lease {leased:.2f}s")
    assert kvm_host.console(vm).ip("eth1").startswith("10.250.0.")

    again = kvm_host.call_async("/vm/attachnic", {"vmUuid": vm, "nic": nic})
    assert again["success"] and again["unchanged"] is True
    assert [n.mac for n in live(kvm_host, vm).nics] == ["52:54:00:10:00:01", mac]

    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/detachnic", {"vmUuid": vm, "nic": nic})
    acked = time.monotonic() - sent
    assert reply == {"success": True, "error": "", "device": mac, "unchanged": False}
    assert mac not in kvm_host.virsh("dumpxml", vm)
    latency = seen(kvm_host, vm, UNPLUG, {"nic": "eth1"}, sent, "unplugged NIC in the guest")
    print(f"detach nic: reply {acked:.3f}s, guest sees it gone {latency:.2f}s")
    assert kvm_host.call_async("/vm/detachnic", {"vmUuid": vm, "nic": nic})["unchanged"]
    assert no_reports(kvm_host)


def test_iso_attach_changes_the_cdrom_media_and_detach_empties_it(kvm_host):
    vm = running_vm(kvm_host, bootDev=["hd", "cdrom"])

    def cdrom():
        [drive] = [d for d in live(kvm_host, vm).disks if d.device == "cdrom"]
        return drive

    assert (cdrom().target, cdrom().path, cdrom().boot_order) == ("hdc", None, 2)
    # no ISO tool is installed here; any file is media to libvirt and qemu
    iso = storage_dir(kvm_host.host) / "tools.iso"
    iso.write_bytes(b"\0" * (2048 * 16))
    body = {"vmUuid": vm, "iso": {"isoUuid": uuid.uuid4().hex, "path": str(iso)}}
    sent = time.monotonic()
    reply = kvm_host.call_async("/vm/iso/attach", body)
    print(f"\niso attach: reply {time.monotonic() - sent:.3f}s")
    assert reply == {"success": True, "error": "", "device": "hdc", "unchanged": False}
    assert (cdrom().path, cdrom().boot_order, cdrom().readonly) == (str(iso), 2, True)
    assert kvm_host.call_async("/vm/iso/attach", body)["unchanged"] is True

    missing = {"vmUuid": vm, "iso": {"path": str(iso.parent / "x.iso")}}
    reply = kvm_host.call_async("/vm/iso/attach", missing)
    assert reply["error"] == f"iso.path: no such file on this host: {iso.parent}/x.iso"
    assert cdrom().path == str(iso)

    reply = kvm_host.call_async("/vm/iso/detach", {"vmUuid": vm, "isoUuid": uuid.uuid4().hex})
    assert reply == {"success": True, "error": "", "device": "hdc", "unchanged": False}
    assert (cdrom().path, cdrom().boot_order) == (None, 2)
    assert kvm_host.call_async("/vm/iso/detach", {"vmUuid": vm})["unchanged"] is True
    assert "running" in kvm_host.virsh("domstate", vm)
    assert no_reports(kvm_host)


def test_boot_order_comes_from_bootdev_at_start(kvm_host):
    cmd = kvm_host.start_cmd(bootDev=["cdrom", "hd"])
    assert kvm_host.call_async("/vm/start", cmd)["success"]
    disks = live(kvm_host, cmd["vmInstanceUuid"]).disks
    assert {(d.target, d.device): d.boot_order for d in disks} == {
        ("vda", "disk"): 2, ("hdc", "cdrom"): 1}


def test_bad_hotplug_commands_fail_naming_the_vm_or_the_field(kvm_host):
    vm = uuid.uuid4().hex
    data = volume(kvm_host, "lonely")
    for path, body in [
        ("/vm/attachdatavolume", {"vmUuid": vm, "volume": data}),
        ("/vm/detachdatavolume", {"vmUuid": vm, "volume": data}),
        ("/vm/attachnic", {"vmUuid": vm, "nic": {"uuid": vm, "mac": "52:54:00:10:00:03",
                                                 "bridgeName": "br0", "deviceId": 1}}),
        ("/vm/iso/detach", {"vmUuid": vm}),
    ]:
        reply = kvm_host.call_async(path, body)
        assert reply == {"success": False, "error": f"vm {vm} is not running on this host"}

    hostile = {**data, "installPath": "/var/lib/../../etc/passwd"}
    r = kvm_host.post_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": hostile})
    assert r.status_code == 400 and r.json()["error"].startswith("volume.installPath"), r.text
    r = kvm_host.post_async("/vm/attachnic", {"nic": {}})
    assert r.status_code == 400 and r.json()["error"].startswith("vmUuid: Field required")

    storage = storage_dir(kvm_host.host)
    missing = {**data, "installPath": f"{storage}/nonexistent/data.qcow2"}
    reply = kvm_host.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": missing})
    assert reply["error"] == "volume.installPath: no such file on this host: " \
                             f"{storage}/nonexistent/data.qcow2"
    nic = {"uuid": vm, "mac": "52:54:00:10:00:03", "bridgeName": "nosuchbr", "deviceId": 1}
    reply = kvm_host.call_async("/vm/attachnic", {"vmUuid": vm, "nic": nic})
    assert reply["error"] == "nic.bridgeName: no bridge 'nosuchbr' on this host"
    reply = kvm_host.call_async("/vm/iso/attach", {"vmUuid": vm,
                                                   "iso": {"path": f"{storage}/no.iso"}})
    assert reply["error"] == f"iso.path: no such file on this host: {storage}/no.iso"
