"""`make up` / `make down` as a test: the whole devcluster comes up, serves, goes away,
and comes back as the same cloud after `make down` and after a reboot."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import rbd
import requests

from devcluster import democloud, hostnet, procs
from devcluster.cluster import DevCluster
from devcluster.guestconsole import parse_console
from devcluster.kvmhost import console_log
from tests.fixtures.powercut import power_cut

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_dir():
    path = Path(tempfile.mkdtemp(prefix="ztc", dir="/tmp"))
    try:
        yield path
    finally:
        DevCluster(path).down(progress=lambda _m: None)  # whatever the test left running
        shutil.rmtree(path, ignore_errors=True)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devcluster.cli", "--dir", str(root), *args],
                          capture_output=True, text=True, timeout=240)


def test_up_serves_everything_and_down_removes_it(cluster_dir):
    cluster = DevCluster(cluster_dir, hosts=2, prefix=hostnet.free_prefix("zt"),
                         mgmt_subnet=hostnet.free_subnet())
    try:
        cluster.up(progress=lambda _m: None)
        status = cluster.status()
        assert status["running"] is True
        assert status["ceph"]["health"] == "HEALTH_OK"
        for name, svc in status["services"].items():
            assert svc["alive"], name
        assert requests.get(status["services"]["coordinator"]["url"] + "/health",
                            timeout=5).ok
        for name in ("cephagent", "sftpbsagent", "vragent", "consoleproxy"):
            assert requests.get(status["services"][name]["url"] + "/openapi.json",
                                timeout=5).json()["info"]["title"] == f"zfleet {name}"
        api = democloud.HttpApi(status["services"]["coordinator"]["url"])
        for host in cluster.hosts():
            url = status["hosts"][host.name]["kvmagent"]
            ping = requests.post(url + "/host/ping", timeout=5).json()
            [known] = api.query("QueryHost", managementIp=host.mgmt_address)
            assert ping["hostUuid"] == known["uuid"] and known["status"] == "Connected"
            # the coordinator is reachable from inside the host, as a real one would be
            out = host.run(["curl", "-sf", status["services"]["coordinator"]["url"] + "/health"])
            assert json.loads(out.stdout)["success"] is True
            assert status["hosts"][host.name]["libvirt"]["answers"] is True
        # the demo VM was created through the coordinator, got its address from its
        # host's DHCP and read its user data; this machine routes to it
        demo = status["demo_vm"]
        [vm] = api.query("QueryVmInstance", uuid=demo["uuid"])
        assert vm["state"] == "Running" and demo["lease"] == vm["vmNics"][0]["ip"]
        assert demo["lease"].startswith(democloud.GUEST_NET + ".")
        assert demo["userdata"] == "#cloud-config\nhostname: demo"
        subprocess.run(["ping", "-c", "1", "-W", "5", demo["lease"]], check=True,
                       capture_output=True, timeout=30)
        host = next(h for h in cluster.hosts() if h.name == demo["host"])
        states = requests.post(status["hosts"][host.name]["kvmagent"] + "/vm/vmsync",
                               timeout=5).json()["states"]
        assert states == {demo["uuid"]: "Running"}
        # a second `up` leaves the running cluster alone
        pids = {n: s["pid"] for n, s in status["services"].items()}
        cluster.up(progress=lambda _m: None)
        assert {n: s["pid"] for n, s in cluster.status()["services"].items()} == pids
        assert cli(cluster_dir, "status").returncode == 0
        # `zfleet dump-db` finds this cloud's database through ZFLEET_URL
        dump = subprocess.run([str(Path(sys.executable).parent / "zfleet"), "dump-db"],
                              capture_output=True, text=True, timeout=60,
                              env={"ZFLEET_URL": api.url, "PATH": "/usr/bin:/bin"})
        assert dump.returncode == 0, dump.stderr
        assert f"database {cluster.db_path}" in dump.stderr
        assert list((cluster.db_path.parent / "backups").glob("zfleet-*.db"))
    finally:
        # `make down` runs in another process that knows only the directory
        down = cli(cluster_dir, "down")
    assert down.returncode == 0, down.stderr
    assert cli(cluster_dir, "status").returncode == 3
    assert not [ln["ifname"] for ln in hostnet.links()
                if ln["ifname"].startswith(cluster.prefix)]
    assert not cluster.ceph.running()


def vm_view(api: democloud.HttpApi) -> dict[str, tuple[str, str]]:
    """Every VM as (state, IP), by name."""
    return {vm["name"]: (vm["state"], vm["vmNics"][0]["ip"])
            for vm in api.query("QueryVmInstance")}


def lease(cluster: DevCluster, api: democloud.HttpApi, vm_uuid: str) -> str | None:
    """The address the guest printed last on its console (it boots again on resume)."""
    [vm] = api.query("QueryVmInstance", uuid=vm_uuid)
    [host] = api.query("QueryHost", uuid=vm["hostUuid"])
    node = next(h for h in cluster.hosts() if h.mgmt_address == host["managementIp"])
    console = console_log(node, vm_uuid)
    return parse_console(console.read_text(errors="replace")).ip("eth0")


MARK_OFFSET = 512 << 10  # between the MBR and the boot partition at 1 MiB: nothing reads it


def rbd_rw(cluster: DevCluster, install_path: str, data: bytes | None = None,
           length: int = 0) -> bytes:
    """Write ``data`` at MARK_OFFSET of an RBD volume, or read ``length`` bytes there."""
    pool, image = install_path.removeprefix("ceph://").split("/")
    handle = cluster.ceph.rados()
    try:
        with handle.open_ioctx(pool) as ioctx, rbd.Image(ioctx, image) as img:
            if data is not None:
                img.write(data, MARK_OFFSET)
                img.flush()
                return data
            return img.read(MARK_OFFSET, length)
    finally:
        handle.shutdown()


def test_down_then_up_and_a_reboot_bring_the_same_cloud_back(cluster_dir):
    """The second day: `make down`, `make up` at once -> the same VMs Running with the
    same addresses and disks; the same after every process was killed (a reboot); then
    `reset` removes the cloud."""
    cluster = DevCluster(cluster_dir, hosts=2, prefix=hostnet.free_prefix("zt"),
                         mgmt_subnet=hostnet.free_subnet())
    cluster.up(progress=lambda _m: None)
    api = democloud.HttpApi(cluster.url("coordinator"))
    ids = democloud.CloudIds(**json.loads(cluster.state_path.read_text())["cloud"])
    demo = cluster.status()["demo_vm"]["uuid"]
    [demo_vm] = api.query("QueryVmInstance", uuid=demo)
    [other_host] = [h for h in api.query("QueryHost") if h["uuid"] != demo_vm["hostUuid"]]
    second = api("CreateVmInstance", **democloud.create_vm_body(
        ids, "second", hostUuid=other_host["uuid"]))["inventory"]
    stopped = api("CreateVmInstance", **democloud.create_vm_body(ids, "stopped"))["inventory"]
    api("StopVmInstance", uuid=stopped["uuid"])
    procs.wait_for(lambda: lease(cluster, api, second["uuid"]), 180, "second's lease")
    before = vm_view(api)
    assert before["demo"][0] == before["second"][0] == "Running"
    assert before["stopped"][0] == "Stopped"
    root = {v["uuid"]: v["installPath"] for v in api.query("QueryVolume", type="Root")}
    marks = {uuid: rbd_rw(cluster, path, os.urandom(4096)) for uuid, path in root.items()}
    hosts_before = {h["name"]: h["uuid"] for h in api.query("QueryHost")}

    def same_cloud() -> None:
        assert cluster.running()
        assert {h["name"]: h["uuid"] for h in api.query("QueryHost")} == hosts_before
        assert all(h["status"] == "Connected" for h in api.query("QueryHost"))
        assert vm_view(api) == before  # the stopped VM was not started
        for vm_uuid in (demo, second["uuid"]):
            assert lease(cluster, api, vm_uuid) == before_ip[vm_uuid]  # a new boot's lease
            subprocess.run(["ping", "-c", "1", "-W", "5", before_ip[vm_uuid]], check=True,
                           capture_output=True, timeout=30)
        for vm_uuid, path in root.items():
            assert rbd_rw(cluster, path, length=4096) == marks[vm_uuid]

    before_ip = {demo: before["demo"][1], second["uuid"]: before["second"][1]}
    try:
        assert cli(cluster_dir, "down").returncode == 0
        consoles = {u: len(lease_log(cluster, api, u)) for u in before_ip}
        up = cli(cluster_dir, "up")  # at once: TIME-WAIT sockets of the last run are there
        assert up.returncode == 0, up.stdout + up.stderr
        assert "resuming the cloud" in up.stdout and "2 VM(s) were running" in up.stdout
        for vm_uuid, size in consoles.items():  # they booted again
            assert len(lease_log(cluster, api, vm_uuid)) > size
        same_cloud()

        power_cut(cluster)
        assert not cluster.running() and cluster.built()
        up = cli(cluster_dir, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "resuming the cloud" in up.stdout
        same_cloud()
    finally:
        reset = cli(cluster_dir, "reset")
    assert reset.returncode == 0, reset.stderr
    assert "nothing is kept" in reset.stdout
    assert not cluster.built() and not cluster.db_path.exists()
    assert not (cluster_dir / "ceph").exists() and not (cluster_dir / "hosts").exists()
    assert not [ln["ifname"] for ln in hostnet.links()
                if ln["ifname"].startswith(cluster.prefix)]


def lease_log(cluster: DevCluster, api: democloud.HttpApi, vm_uuid: str) -> str:
    return "".join(console_log(h, vm_uuid).read_text(errors="replace")
                   for h in cluster.hosts() if console_log(h, vm_uuid).exists())
