"""Garbage collection with a real host whose agent is cut off: the VM is deleted in the
database at once, the host's part waits as GC jobs and runs when the host reconnects."""

import pytest

from coordinator.services import hosts as hostsmod
from devcluster.kvmhost import start_kvmagent
from tests.fixtures.kvm import AGENT_FLAGS

pytestmark = pytest.mark.integration


def test_a_vm_deleted_while_its_host_is_unreachable_is_cleaned_up_on_reconnect(cloud):
    api = cloud.api
    vm = cloud.create_vm("orphan")
    mac = vm["vmNics"][0]["mac"]
    cloud.wait_console(vm["uuid"], lambda r: r.ip(), "lease")
    host = cloud.host_of(vm["uuid"])

    def domains() -> str:
        return host.run(["virsh", "-c", "qemu:///system", "list", "--name"]).stdout

    def dhcp_serves() -> bool:
        return any(mac in f.read_text() for f in
                   host.dir.glob("data/kvmagent/dhcp/*/hosts"))

    api("UpdateGlobalConfig", category="host", name="ping.maxFailure", value="1")
    api("UpdateGlobalConfig", category="vm", name="deletionPolicy", value="Direct")
    host.stop_daemon("kvmagent")  # the VM goes on running; nobody can reach its host
    hostsmod.ping_all(api.ctx)
    [h] = api.query("QueryHost", uuid=vm["hostUuid"])
    assert h["status"] == "Disconnected"

    api("DestroyVmInstance", uuid=vm["uuid"])  # succeeds: the database changes at once
    assert api.query("QueryVmInstance", uuid=vm["uuid"]) == []
    assert not api.ctx.db.find("used_ip", "owner_uuid = ?", (vm["uuid"],))
    jobs = api.ctx.db.find("gc_job", "host_uuid = ? ORDER BY created, rowid", (h["uuid"],))
    assert {j["status"] for j in jobs} == {"Pending"}
    assert [j["path"] for j in jobs] == [  # in order: the volume after the VM lets go
        "/vm/destroy", "/flatnetworkprovider/userdata/release",
        "/flatnetworkprovider/dhcp/release", "/ceph/primarystorage/delete"]
    assert vm["uuid"] in domains() and dhcp_serves()  # nothing happened there yet
    root = vm["allVolumes"][0]["installPath"]
    assert cloud.cephagent.post("/ceph/primarystorage/getvolumesize",
                                {"installPath": root}).json()["success"]

    start_kvmagent(host, *AGENT_FLAGS)
    hostsmod.ping_all(api.ctx)  # answers again -> reconnect -> its GC jobs run
    assert api.query("QueryHost", uuid=h["uuid"])[0]["status"] == "Connected"
    assert {j["status"] for j in api.query("QueryGCJob", hostUuid=h["uuid"])} == {"Done"}
    assert vm["uuid"] not in domains() and not dhcp_serves()
    assert not cloud.cephagent.post("/ceph/primarystorage/getvolumesize",
                                    {"installPath": root}).json()["success"]


def test_jobs_of_a_deleted_host_are_cancelled_not_run(coordinator):
    from coordinator.db import new_uuid
    from coordinator.services import gc

    coordinator.ctx.db.insert("gc_job", {"uuid": new_uuid(), "name": "destroy",
                                         "host_uuid": "f" * 32, "path": "/vm/destroy",
                                         "body": {"uuid": "a" * 32}, "is_async": 1})
    gc.run_all(coordinator.ctx)
    [job] = coordinator.query("QueryGCJob")
    assert job["status"] == "Cancelled" and "deleted" in job["lastError"]
