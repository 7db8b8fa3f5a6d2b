"""CreateVmInstance end to end through the API: real kvmagents on simulated hosts, a real
Ceph cluster behind a real cephagent, real guests booting the image from an RBD clone
and reading their user data over the flat network."""

import threading

import pytest

from tests.fixtures.ceph import rbd_images
from tests.fixtures.coordinator import GUEST_NET

pytestmark = pytest.mark.integration

USERDATA = "#cloud-config\\nhostname: from-userdata"  # one line, as ZStack's CLI sends it


def test_a_vm_is_created_boots_with_its_ip_and_user_data_and_goes_through_its_life(cloud):
    vm = cloud.create_vm("web-1", systemTags=[f"userdata::{USERDATA}",
                                              "sshkey::ssh-ed25519 AAAAC3Nz test@zfleet"])
    assert vm["state"] == "Running" and vm["hostUuid"]
    [nic] = vm["vmNics"]
    assert nic["ip"].startswith(GUEST_NET + ".") and nic["gateway"] == f"{GUEST_NET}.1"
    [root] = vm["allVolumes"]
    assert root["installPath"].startswith("ceph://") and root["status"] == "Ready"

    cloud.wait_console(vm["uuid"], lambda r: r.ip() and "user-data" in r.metadata,
                       "lease and user data")
    report = cloud.console(vm["uuid"])
    assert report.ip() == nic["ip"]  # the address the coordinator allocated, from DHCP
    assert report.metadata["instance-id"] == vm["uuid"]
    assert report.metadata["user-data"] == "#cloud-config\nhostname: from-userdata"

    cloud.api("StopVmInstance", uuid=vm["uuid"])
    stopped = cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0]
    assert stopped["state"] == "Stopped" and stopped["hostUuid"] is None
    host = cloud.api.query("QueryHost", uuid=vm["hostUuid"])[0]
    assert host["allocatedMemory"] == 0 and host["allocatedCpu"] == 0  # capacity back

    cloud.api("StartVmInstance", uuid=vm["uuid"])
    assert cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0]["state"] == "Running"
    cloud.api("RebootVmInstance", uuid=vm["uuid"])
    console = cloud.api("GetVmConsoleAddress", uuid=vm["uuid"])
    assert console["port"] > 0 and console["protocol"] == "vnc"

    def rbd_exists() -> bool:
        return cloud.cephagent.post("/ceph/primarystorage/getvolumesize",
                                    {"installPath": root["installPath"]}).json()["success"]

    # Delay (the default policy): off its host, recoverable with its disk and address
    destroyed = cloud.api("DestroyVmInstance", uuid=vm["uuid"])["inventory"]
    assert destroyed["state"] == "Destroyed" and destroyed["hostUuid"] is None
    assert vm["uuid"] not in cloud.host_of(vm["uuid"]).run(
        ["virsh", "-c", "qemu:///system", "list", "--name"]).stdout
    assert rbd_exists() and destroyed["vmNics"][0]["ip"] == nic["ip"]
    assert cloud.api("RecoverVmInstance", uuid=vm["uuid"])["inventory"]["state"] == "Stopped"
    cloud.api("StartVmInstance", uuid=vm["uuid"])
    cloud.api("DestroyVmInstance", uuid=vm["uuid"])
    cloud.api("ExpungeVmInstance", uuid=vm["uuid"])  # now, not after expungePeriod
    assert cloud.api.query("QueryVmInstance", uuid=vm["uuid"]) == []
    assert cloud.api.query("QueryVolume", vmUuid=vm["uuid"]) == []
    assert not rbd_exists()  # the clone is gone from Ceph
    assert not cloud.api.ctx.db.find("used_ip", "owner_uuid = ?", (vm["uuid"],))


def test_parallel_creates_share_one_image_cache_and_get_distinct_ips(cloud):
    vms, errors = [], []

    def create(i: int) -> None:
        try:
            vms.append(cloud.create_vm(f"par-{i}"))
        except AssertionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(vms) == 5
    ips = [vm["vmNics"][0]["ip"] for vm in vms]
    assert len(set(ips)) == 5
    caches = cloud.api.ctx.db.find("image_cache", "image_uuid = ?", (cloud.image,))
    assert len(caches) == 1  # one copy of the image for the five clones
    assert {h["uuid"] for h in cloud.api.query("QueryHost")} == {
        vm["hostUuid"] for vm in vms}  # LeastVmPreferred spreads them over both hosts
    for vm in vms:
        cloud.wait_console(vm["uuid"], lambda r, vm=vm: r.ip() == vm["vmNics"][0]["ip"],
                           f"{vm['name']}'s lease", timeout=180)


def test_a_create_that_fails_midway_leaves_nothing_behind(cloud):
    host = cloud.hosts[0]
    cloud.api("ChangeHostState", uuid=_host_uuid(cloud, cloud.hosts[1]), stateEvent="disable")
    host.stop_daemon("kvmagent")  # the chosen host's agent dies before the VM is made
    reply = cloud.api.post("CreateVmInstance", name="doomed", imageUuid=cloud.image,
                           instanceOfferingUuid=cloud.offering, l3NetworkUuids=[cloud.l3])
    assert not reply["success"]
    assert "failed at step" in reply["error"] and host.mgmt_address in reply["error"]
    assert cloud.api.query("QueryVmInstance") == []
    assert cloud.api.query("QueryVolume") == []
    assert not cloud.api.ctx.db.find("used_ip", "purpose = 'VmNic'")
    h = cloud.api.query("QueryHost", uuid=_host_uuid(cloud, host))[0]
    assert h["allocatedCpu"] == 0 and h["allocatedMemory"] == 0
    pool = cloud.api.ctx.db.get("primary_storage", cloud.primary_storage)["config"][
        "rootVolumePoolName"]
    assert rbd_images(cloud.cephagent.cluster, pool) == []  # the root clone was deleted


def _host_uuid(cloud, host) -> str:
    return next(h["uuid"] for h in cloud.api.query("QueryHost")
                if h["managementIp"] == host.mgmt_address)


def test_a_running_vm_migrates_live_and_its_dhcp_entry_follows(cloud):
    vm = cloud.create_vm("mover")
    mac = vm["vmNics"][0]["mac"]
    cloud.wait_console(vm["uuid"], lambda r: r.ip(), "lease")
    source = cloud.host_of(vm["uuid"])
    moved = cloud.api("MigrateVm", vmInstanceUuid=vm["uuid"])["inventory"]
    assert moved["hostUuid"] != vm["hostUuid"] and moved["state"] == "Running"
    dest = cloud.host_of(vm["uuid"])
    assert dest is not source

    def virsh(host, *args):
        return host.run(["virsh", "-c", "qemu:///system", *args], check=False).stdout

    assert virsh(dest, "domstate", vm["uuid"]).strip() == "running"
    assert vm["uuid"] not in virsh(source, "list", "--name")

    def served_by(host) -> bool:
        hosts_files = host.dir.glob("data/kvmagent/dhcp/*/hosts")
        return any(mac in f.read_text() for f in hosts_files)

    assert served_by(dest) and not served_by(source)
    [src_row] = [h for h in cloud.api.query("QueryHost") if h["uuid"] == vm["hostUuid"]]
    assert src_row["allocatedMemory"] == 0  # the source let go of the capacity
    same = cloud.api.post("MigrateVm", vmInstanceUuid=vm["uuid"], hostUuid=moved["hostUuid"])
    assert not same["success"] and "already runs" in same["error"]


def test_a_data_volume_is_hot_plugged_into_a_running_vm_and_out_again(cloud):
    vm = cloud.create_vm("with-disk")
    cloud.wait_console(vm["uuid"], lambda r: r.ip(), "lease")
    offering = cloud.api("CreateDiskOffering", name="d", diskSize=96 << 20)["inventory"]
    vol = cloud.api("CreateDataVolume", name="data-1",
                    diskOfferingUuid=offering["uuid"])["inventory"]
    assert vol["status"] == "NotInstantiated" and vol["installPath"] is None
    attached = cloud.api("AttachDataVolumeToVm", vmInstanceUuid=vm["uuid"],
                         volumeUuid=vol["uuid"])["inventory"]
    assert attached["installPath"].startswith("ceph://") and attached["deviceId"] == 1
    cloud.wait_console(vm["uuid"], lambda r: r.disks.get("vdb") == 96 << 20,
                       "the guest sees vdb of 96 MiB")
    # the tap is named after the NIC, for operators and EIP rules
    nic = vm["vmNics"][0]
    assert f"zv{nic['uuid'][:12]}" in cloud.host_of(vm["uuid"]).run(
        ["ip", "-o", "link", "show"]).stdout
    busy = cloud.api.post("DeleteDataVolume", uuid=vol["uuid"])
    assert not busy["success"] and "detach" in busy["error"]
    cloud.api("DetachDataVolumeFromVm", uuid=vol["uuid"])
    cloud.wait_console(vm["uuid"], lambda r: "vdb" not in r.disks, "vdb unplugged")
    cloud.api("UpdateGlobalConfig", category="volume", name="deletionPolicy", value="Direct")
    cloud.api("DeleteDataVolume", uuid=vol["uuid"])  # Direct: its bits go at once
    gone = cloud.cephagent.post("/ceph/primarystorage/getvolumesize",
                                {"installPath": attached["installPath"]}).json()
    assert not gone["success"]


def test_a_vm_stopped_behind_the_coordinators_back_is_stopped_at_once(cloud):
    vm = cloud.create_vm("oob")
    host = cloud.host_of(vm["uuid"])
    host.run(["virsh", "-c", "qemu:///system", "destroy", vm["uuid"]])
    from devcluster import procs
    procs.wait_for(lambda: cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0][
        "state"] == "Stopped", 10, "the report of the out-of-band stop", interval=0.1)
    h = cloud.api.query("QueryHost", uuid=vm["hostUuid"])[0]
    assert h["allocatedMemory"] == 0  # the host's capacity came back with the report
    cloud.api("StartVmInstance", uuid=vm["uuid"])
    assert cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0]["state"] == "Running"

    # NeverStop: stopped on its own, it is started again on its host
    cloud.api("SetVmInstanceHaLevel", uuid=vm["uuid"], level="NeverStop")
    host.run(["virsh", "-c", "qemu:///system", "destroy", vm["uuid"]])
    procs.wait_for(lambda: "running" in host.run(["virsh", "-c", "qemu:///system", "domstate",
                                                  vm["uuid"]]).stdout and
                   cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0]["state"] ==
                   "Running", 30, "the NeverStop VM running again", interval=0.2)
    cloud.api("StopVmInstance", uuid=vm["uuid"], type="cold")  # an API stop is no restart
    assert cloud.api.query("QueryVmInstance", uuid=vm["uuid"])[0]["state"] == "Stopped"


def test_deletion_policies_direct_never_and_the_expunger(cloud):
    from coordinator.services import vmdeletion

    api = cloud.api
    api("UpdateGlobalConfig", category="vm", name="deletionPolicy", value="Direct")
    direct = cloud.create_vm("direct")
    assert "inventory" not in api("DestroyVmInstance", uuid=direct["uuid"])
    assert api.query("QueryVmInstance", uuid=direct["uuid"]) == []

    api("UpdateGlobalConfig", category="vm", name="deletionPolicy", value="Never")
    api("UpdateGlobalConfig", category="vm", name="expungePeriod", value="0")
    kept = cloud.create_vm("kept")
    api("DestroyVmInstance", uuid=kept["uuid"])
    assert vmdeletion.expunge_due(api.ctx) == 0  # Never: the expunger leaves it
    assert api.query("QueryVmInstance", uuid=kept["uuid"])[0]["state"] == "Destroyed"

    api("UpdateGlobalConfig", category="vm", name="deletionPolicy", value="Delay")
    assert vmdeletion.expunge_due(api.ctx) == 1  # Delay, period 0: expunged
    assert api.query("QueryVmInstance") == []
    assert not api.ctx.db.find("used_ip", "purpose = 'VmNic'")
    not_destroyed = cloud.create_vm("alive")
    refused = api.post("ExpungeVmInstance", uuid=not_destroyed["uuid"])
    assert not refused["success"] and "destroy it first" in refused["error"]
