"""A small cloud built through the coordinator's API, as an operator would build it.

A zone with a cluster of KVM hosts, Ceph primary and backup storage behind a cephagent,
a flat L3 (DHCP and user data) on the hosts' data L2, the guest disk image and an
offering. The coordinator integration tests (tests/fixtures/coordinator.py) and
bench/create_vms.py build the same cloud with these functions; they differ only in how
they reach the API (flask's test client or HTTP), hence :class:`Api`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import requests

from devcluster import agents, procs
from devcluster.ceph import CephCluster
from devcluster.guestimage import MIN_MEMORY_MIB
from devcluster.kvmhost import start_kvmagent
from devcluster.simhost import SimHost

GUEST_NET = "10.77.0"  # the flat L3, on the data L2; its router holds .1
FIRST_IP, LAST_IP = 10, 200


class Api(Protocol):
    def __call__(self, api: str, /, **body) -> dict:
        """The reply of a successful ``api``; raises otherwise."""

    def query(self, api: str, /, **conditions) -> list[dict]:
        """The inventories matching ``name = value`` conditions."""


@dataclass(frozen=True)
class CloudIds:
    zone: str
    cluster: str
    l2: str
    l3: str
    image: str
    offering: str
    primary_storage: str


def prepare_kvm_host(host: SimHost, *agent_flags: str) -> SimHost:
    """Start kvmagent in ``host`` (its libvirtd must run unless a flag names another
    ``--libvirt-uri``); nobody connects it yet: AddKVMHost will."""
    host.dir.parent.chmod(0o711)  # dnsmasq, as nobody, reads the agent's files
    start_kvmagent(host, *agent_flags)
    return host


def add_router(host: SimHost) -> None:
    """``host`` becomes the L3's gateway on the data L2, as a router on a real L2."""
    host.run(["ip", "addr", "add", f"{GUEST_NET}.1/24", "dev", host.nics["data"]])


def start_cephagent(cluster: CephCluster, root: Path, timeout: int = 3) -> tuple[str, procs.Proc]:
    """A cephagent on loopback for ``cluster`` that may read images from ``root/files``
    (file:// URLs); (url, process)."""
    port = procs.free_port()
    (root / "files").mkdir(parents=True, exist_ok=True)
    argv = agents.argv("cephagent", "127.0.0.1", port, root, "--ceph-conf",
                       str(cluster.conf_path), "--ceph-timeout", str(timeout),
                       "--file-url-roots", str(root / "files"), "--task-workers", "4")
    proc = procs.spawn("cephagent", argv, root / "log" / "cephagent.out")
    url = f"http://127.0.0.1:{port}"
    try:
        agents.wait_ready("cephagent", url, proc)
    except BaseException:
        procs.stop(proc)
        raise
    return url, proc


def build(api: Api, hosts: list[SimHost], cephagent_url: str, image: Path) -> CloudIds:
    """The whole cloud; ``image`` is a qcow2 file the cephagent may read."""
    zone = api("CreateZone", name="zone1")["inventory"]["uuid"]
    l2 = api("CreateL2NoVlanNetwork", name="flat", zoneUuid=zone,
             physicalInterface=hosts[0].nics["data"])["inventory"]["uuid"]
    l3 = api("CreateL3Network", name="flat-l3", l2NetworkUuid=l2)["inventory"]["uuid"]
    api("AddIpRange", l3NetworkUuid=l3, name="r1", startIp=f"{GUEST_NET}.{FIRST_IP}",
        endIp=f"{GUEST_NET}.{LAST_IP}", netmask="255.255.255.0", gateway=f"{GUEST_NET}.1")
    api("AddDnsToL3Network", l3NetworkUuid=l3, dns=f"{GUEST_NET}.1")
    api("AttachNetworkServiceToL3Network", l3NetworkUuid=l3,
        networkServices={"Flat": ["DHCP", "Userdata"]})
    agent = urlsplit(cephagent_url)
    port, mon = agent.port, f"root:password@{agent.hostname}"  # its "mon node"
    ps = api("AddCephPrimaryStorage", name="ceph-ps", zoneUuid=zone, monUrls=[mon],
             agentPort=port)["inventory"]["uuid"]
    bs = api("AddCephBackupStorage", name="ceph-bs", monUrls=[mon],
             agentPort=port)["inventory"]["uuid"]
    api("AttachBackupStorageToZone", backupStorageUuid=bs, zoneUuid=zone)
    image_uuid = api("AddImage", name="guest", url=f"file://{image}", format="qcow2",
                     backupStorageUuids=[bs])["inventory"]["uuid"]
    offering = api("CreateInstanceOffering", name="tiny", cpuNum=1,
                   memorySize=MIN_MEMORY_MIB << 20)["inventory"]["uuid"]
    ids = CloudIds(zone, "", l2, l3, image_uuid, offering, ps)
    return CloudIds(**{**ids.__dict__, "cluster": add_cluster(api, ids, "cluster1", hosts)})


def add_cluster(api: Api, ids: CloudIds, name: str, hosts: list[SimHost]) -> str:
    """Another cluster of ``hosts`` in the cloud's zone, on its L2 and primary storage."""
    cluster = api("CreateCluster", name=name, zoneUuid=ids.zone)["inventory"]["uuid"]
    for host in hosts:
        api("AddKVMHost", name=host.name, managementIp=host.mgmt_address, clusterUuid=cluster)
    api("AttachL2NetworkToCluster", l2NetworkUuid=ids.l2, clusterUuid=cluster)
    api("AttachPrimaryStorageToCluster", primaryStorageUuid=ids.primary_storage,
        clusterUuid=cluster)
    return cluster


def create_vm_body(ids: CloudIds, name: str, **extra) -> dict:
    """CreateVmInstance's body for the guest image on the flat L3."""
    return {"name": name, "imageUuid": ids.image, "instanceOfferingUuid": ids.offering,
            "l3NetworkUuids": [ids.l3], **extra}


class HttpApi:
    """The API of a coordinator served over HTTP. Long APIs are submitted with
    ``?wait=false`` and their job polled, so a caller never holds one of the
    coordinator's HTTP threads (which agents' callbacks need) while a job runs."""

    def __init__(self, url: str, timeout: float = 600.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def post(self, api: str, /, **body) -> dict:
        """The reply of ``api``, success or not."""
        reply = self.session.post(f"{self.url}/api/{api}", params={"wait": "false"},
                                  json=body, timeout=60).json()
        if reply.get("jobUuid") and reply.get("success") and "state" not in reply:
            return self.result(reply["jobUuid"])
        return reply

    def result(self, job: str, interval: float = 0.05) -> dict:
        """The job's reply once it ended."""
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self.session.get(f"{self.url}/api/result/{job}", timeout=60).json()
            if reply.get("state") != "Running":
                return reply
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still running after {self.timeout:.0f}s")
            time.sleep(interval)

    def __call__(self, api: str, /, **body) -> dict:
        reply = self.post(api, **body)
        if not reply.get("success"):
            raise RuntimeError(f"{api}: {reply.get('error')}")
        return reply

    def query(self, api: str, /, **conditions) -> list[dict]:
        conds = [{"name": k, "op": "=", "value": v} for k, v in conditions.items()]
        return self(api, conditions=conds)["inventories"]
