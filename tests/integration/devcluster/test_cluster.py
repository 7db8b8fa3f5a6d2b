"""`make up` / `make down` as a test: the whole devcluster comes up, serves, and goes away."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from devcluster import democloud, hostnet
from devcluster.cluster import DevCluster

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
                          capture_output=True, text=True, timeout=120)


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
    finally:
        # `make down` runs in another process that knows only the directory
        down = cli(cluster_dir, "down")
    assert down.returncode == 0, down.stderr
    assert cli(cluster_dir, "status").returncode == 3
    assert not [ln["ifname"] for ln in hostnet.links()
                if ln["ifname"].startswith(cluster.prefix)]
    assert not cluster.ceph.running()
