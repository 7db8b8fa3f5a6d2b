"""The wire contract between the coordinator and its agents, checked with the agents
built in-process (no libvirt host, Ceph cluster or network needed):

- every endpoint a client of ``coordinator/clients`` declares is in that agent's OpenAPI
  document, as sync or async as the client calls it, with the same command and reply
  models;
- what each call site sends today (its body transcribed below, with where it is built)
  goes through its client method: no key the agent would ignore (the client refuses
  one, naming it), the same command for the agent, valid by the documented schema;
- every reply field a call site reads is one of the reply model's;
- leaving ``None`` out of a body changes nothing (every optional field defaults to it);
- the clients load the agents' models, never a driver or handler.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field

import jsonschema
import pytest
from pydantic import BaseModel

from cephagent.app import build as build_cephagent
from cephagent.config import CephAgentConfig
from coordinator.clients import cephagent, kvmagent, sftpbsagent
from coordinator.clients.cephagent import CephAgent
from coordinator.clients.endpoint import Call, Endpoint
from coordinator.clients.kvmagent import KvmAgent
from coordinator.clients.sftpbsagent import SftpBsAgent
from kvmagent.app import build as build_kvmagent
from kvmagent.config import KvmAgentConfig
from sftpbsagent.app import build as build_sftpbsagent
from sftpbsagent.config import SftpBsAgentConfig

HOST, VM, PS, BS, IMG = "1" * 32, "2" * 32, "3" * 32, "4" * 32, "5" * 32
VOL, DATA, NIC, L3, EIP, SNAP, ISO = ("6" * 32, "7" * 32, "8" * 32, "9" * 32, "a" * 32,
                                     "b" * 32, "c" * 32)
FSID = "0b5c5f0e-9c1d-4c55-a1e6-3f1c2a7d9e01"
KEY = "QVFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE9PQ=="  # base64
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4wnoUQWIr0lJtqlXQ6 kvmagent@host1"
REPORT = "http://10.99.0.1:8080/report"
NS = f"br_eth0_{L3}"
CEPH_ROOT = {"volumeUuid": VOL, "deviceId": 0, "installPath": f"ceph://pri-v-r-{PS}/{VOL}",
             "deviceType": "ceph", "format": "raw", "secretUuid": PS,
             "monInfo": [{"hostname": "10.99.0.1", "port": 6789}]}
CEPH_DATA = {**CEPH_ROOT, "volumeUuid": DATA, "deviceId": 1,
             "installPath": f"ceph://pri-v-d-{PS}/{DATA}"}
LOCAL_ROOT = {"volumeUuid": VOL, "deviceId": 0, "installPath":
              f"/zstack_ps/rootvolumes/{VOL}.qcow2", "deviceType": "file", "format": "qcow2"}
NIC_TO = {"uuid": NIC, "mac": "fa:16:3e:00:00:01", "deviceId": 0, "bridgeName": "br_eth0",
          "nicInternalName": f"zv{NIC[:12]}"}
START = {"vmInstanceUuid": VM, "vmName": "vm-1", "memory": 1 << 30, "cpuNum": 1,
         "cpuSpeed": 0, "bootDev": ["hd", "cdrom"], "rootVolume": CEPH_ROOT,
         "dataVolumes": [CEPH_DATA], "nics": [NIC_TO], "timeout": 290.0,
         "consoleMode": "vnc", "cpuMode": "none", "cacheMode": "none"}
CEPH_ACCESS = {"pool": f"pri-v-r-{PS}", "userKey": KEY, "monHosts": ["10.99.0.1:6789"]}


@dataclass
class Site:
    """A call site: the client method, the body sent today, and where it is built."""

    client: type
    method: str
    body: dict
    where: str
    reply: dict = field(default_factory=dict)
    wait: float | None = None
    reads: tuple[str, ...] = ()
    """The reply fields the call site reads."""


SITES = [
    # kvmagent: hosts
    Site(KvmAgent, "connect", {"hostUuid": HOST, "sendCommandUrl": REPORT}, "hosts.connect"),
    Site(KvmAgent, "capacity", {}, "hosts.connect", {
        "cpuNum": 4, "cpuSockets": 1, "cpuSpeed": 2400, "usedCpu": 0, "totalMemory": 8 << 30,
        "usedMemory": 512 << 20, "reservedMemory": 512 << 20},
         reads=("cpuNum", "cpuSpeed", "totalMemory", "reservedMemory")),
    Site(KvmAgent, "fact", {}, "hosts.connect", {
        "osDistribution": "debian", "osVersion": "12", "kernelVersion": "6.1",
        "qemuImgVersion": "7.2", "libvirtVersion": "9.0", "hypervisorType": "kvm",
        "cpuModelName": "x", "hvmCpuFlag": "vmx"}),
    Site(KvmAgent, "ping", {}, "hosts.ping_one", {"hostUuid": HOST}, wait=5,
         reads=("hostUuid",)),
    Site(KvmAgent, "vm_sync", {}, "vmreports.sync_host", {"states": {VM: "Running"}},
         reads=("states",)),
    # kvmagent: VMs
    Site(KvmAgent, "start_vm", START, "vms.start_vm (Ceph)"),
    Site(KvmAgent, "start_vm", {**START, "rootVolume": LOCAL_ROOT, "dataVolumes": [],
                                "isoPath": f"/zstack_ps/imagecache/{ISO}.iso"},
         "vms.start_vm (local storage, an ISO)"),
    Site(KvmAgent, "stop_vm", {"uuid": VM}, "vms.stop", {"vmState": "Stopped"}),
    Site(KvmAgent, "destroy_vm", {"uuid": VM}, "vms.create undo, vms.stop cold, "
         "vmdeletion.leave_host", {"vmState": "Stopped"}),
    Site(KvmAgent, "reboot_vm", {"uuid": VM}, "vms.reboot", {"vmState": "Running"}),
    Site(KvmAgent, "migrate_vm", {"vmUuid": VM, "destHostIp": "10.99.0.12",
                                  "storageMigrationPolicy": "shared", "timeout": 55.0},
         "vms.migrate"),
    Site(KvmAgent, "get_vnc_port", {"vmUuid": VM}, "vms.console_address",
         {"port": 5900, "protocol": "vnc", "hostIp": "10.99.0.11"},
         reads=("port", "protocol")),
    Site(KvmAgent, "attach_data_volume", {"vmUuid": VM, "volume": CEPH_DATA},
         "volumes._hotplug"),
    Site(KvmAgent, "detach_data_volume", {"vmUuid": VM, "volume": CEPH_DATA},
         "volumes._hotplug"),
    Site(KvmAgent, "attach_iso", {"vmUuid": VM, "iso": {
        "isoUuid": ISO, "path": f"/zstack_ps/imagecache/{ISO}.iso"}}, "isos attach_iso"),
    Site(KvmAgent, "detach_iso", {"vmUuid": VM, "isoUuid": ISO}, "isos detach_iso"),
    Site(KvmAgent, "create_ceph_secret", {"uuid": PS, "userKey": KEY, "userName": "admin"},
         "rootvolumes.prepare_host"),
    # kvmagent: local storage
    Site(KvmAgent, "init_local_storage", {"path": "/zstack_ps"},
         "rootvolumes.prepare_host, localmigrate"),
    Site(KvmAgent, "ssh_key", {}, "rootvolumes._local_cache, localmigrate",
         {"publicKey": SSH_KEY}, reads=("publicKey",)),
    Site(KvmAgent, "authorize_key", {"publicKey": SSH_KEY}, "localmigrate"),
    Site(KvmAgent, "sftp_download", {
        "hostname": "10.99.0.5", "username": "root", "sshPort": 22,
        "backupStorageInstallPath": f"/bs/images/{IMG}.template",
        "primaryStorageInstallPath": f"/zstack_ps/imagecache/{IMG}.qcow2", "imageUuid": IMG,
        "md5Sum": None, "actualSize": None}, "rootvolumes._local_cache (no md5 known)"),
    Site(KvmAgent, "sftp_download", {
        "hostname": "10.99.0.5", "username": "root", "sshPort": 2222,
        "backupStorageInstallPath": f"/bs/images/{IMG}.template",
        "primaryStorageInstallPath": f"/zstack_ps/imagecache/{IMG}.qcow2", "imageUuid": IMG,
        "md5Sum": "d41d8cd98f00b204e9800998ecf8427e", "actualSize": 1 << 20},
         "rootvolumes._local_cache"),
    Site(KvmAgent, "create_volume_from_cache", {
        "templatePathInCache": f"/zstack_ps/imagecache/{IMG}.qcow2",
        "installUrl": f"/zstack_ps/rootvolumes/{VOL}.qcow2"}, "rootvolumes.create_root_volume"),
    Site(KvmAgent, "delete_bits", {"path": f"/zstack_ps/rootvolumes/{VOL}.qcow2"},
         "rootvolumes.delete_volume, localmigrate, volumedeletion.delete_bits"),
    Site(KvmAgent, "migrate_volume", {
        "srcInstallPath": f"/zstack_ps/rootvolumes/{VOL}.qcow2", "dstHostIp": "10.99.0.12",
        "volumeType": "root", "vmUuid": VM}, "localmigrate.migrate_volume (root)"),
    Site(KvmAgent, "migrate_volume", {
        "srcInstallPath": f"/zstack_ps/datavolumes/{DATA}.qcow2", "dstHostIp": "10.99.0.12",
        "volumeType": "data"}, "localmigrate.migrate_volume (detached data)"),
    # kvmagent: L2
    Site(KvmAgent, "create_bridge", {"physicalInterfaceName": "eth0", "bridgeName": "br_eth0"},
         "networks.ensure_bridge"),
    Site(KvmAgent, "create_vlan_bridge", {"physicalInterfaceName": "eth0",
                                          "bridgeName": "br_eth0_10", "vlan": 10},
         "networks.ensure_bridge"),
    # kvmagent: flat network provider
    Site(KvmAgent, "prepare_dhcp", {
        "bridgeName": "br_eth0", "namespaceName": NS, "dhcpServerIp": "10.77.0.2",
        "dhcpNetmask": "255.255.255.0", "physicalInterface": "eth0"}, "networks.apply_nic"),
    Site(KvmAgent, "apply_dhcp", {"dhcp": [{
        "namespaceName": NS, "bridgeName": "br_eth0", "mac": "fa:16:3e:00:00:01",
        "ip": "10.77.0.10", "netmask": "255.255.255.0", "gateway": "10.77.0.1",
        "dns": ["10.77.0.1"], "dnsDomain": "", "hostname": "vm-1",
        "isDefaultL3Network": True}]}, "networks.apply_nic"),
    Site(KvmAgent, "release_dhcp", {"dhcp": [{"namespaceName": NS,
                                              "mac": "fa:16:3e:00:00:01"}]},
         "networks.release_commands"),
    Site(KvmAgent, "apply_userdata", {"userdata": {
        "bridgeName": "br_eth0", "namespaceName": NS, "vmIp": "10.77.0.10",
        "vmMac": "fa:16:3e:00:00:01", "dhcpServerIp": "10.77.0.2",
        "userdata": "#cloud-config\n", "sshKey": SSH_KEY,
        "metadata": {"vmUuid": VM, "vmHostname": "vm-1"}}}, "networks.apply_nic"),
    Site(KvmAgent, "apply_userdata", {"userdata": {
        "bridgeName": "br_eth0", "namespaceName": NS, "vmIp": "10.77.0.10",
        "vmMac": "fa:16:3e:00:00:01", "dhcpServerIp": "10.77.0.2", "userdata": None,
        "sshKey": None, "metadata": {"vmUuid": VM, "vmHostname": ""}}},
         "networks.apply_nic (no user data, no key)"),
    Site(KvmAgent, "release_userdata", {"namespaceName": NS, "vmIp": "10.77.0.10"},
         "networks.release_commands"),
    Site(KvmAgent, "apply_eip", {"eip": {
        "eipUuid": EIP, "vip": "172.20.0.10", "vipNetmask": "255.255.255.0",
        "vipGateway": "172.20.0.1", "nicName": f"zv{NIC[:12]}", "nicMac": "fa:16:3e:00:00:01",
        "nicIp": "10.77.0.10", "nicNetmask": "255.255.255.0", "nicGateway": "10.77.0.1",
        "publicBridgeName": "br_eth1", "vmBridgeName": "br_eth0"}}, "eips.eip_to"),
    Site(KvmAgent, "delete_eip", {"eip": {"eipUuid": EIP}}, "eips.detach"),
    Site(KvmAgent, "batch_delete_eips", {"eips": [{"eipUuid": EIP}]}, "eips.delete_commands"),
    # kvmagent: VM HA
    Site(KvmAgent, "setup_self_fencer", {"psUuid": PS, "hostUuid": HOST, **CEPH_ACCESS,
                                         "interval": 5.0, "maxAttempts": 6},
         "ha.sync_fencers"),
    Site(KvmAgent, "cancel_self_fencer", {"psUuid": PS}, "ha.sync_fencers"),
    Site(KvmAgent, "scan_host", {"targetHostUuid": HOST, "targetIp": "10.99.0.11",
                                 "targetPort": 7070, "window": 60.0, "interval": 5.0,
                                 **CEPH_ACCESS}, "failover.host_is_down",
         {"reachable": False, "heartbeat": "Stale"},
         reads=("reachable", "heartbeat", "heartbeatError")),
    # cephagent: primary storage
    Site(CephAgent, "init_primary", {"uuid": PS}, "storage add_ceph_ps", {
        "fsid": FSID, "userKey": KEY, "rootVolumePoolName": f"pri-v-r-{PS}",
        "mons": [{"name": "a", "addr": "10.99.0.1:6789", "addrs": []}]},
         reads=("fsid", "userKey", "mons", "rootVolumePoolName", "dataVolumePoolName",
                "imageCachePoolName", "totalCapacity", "availableCapacity")),
    Site(CephAgent, "init_primary", {"uuid": PS, "rootVolumePoolName": "root",
                                     "dataVolumePoolName": "data",
                                     "imageCachePoolName": "cache"},
         "storage add_ceph_ps (pools named)"),
    Site(CephAgent, "ping_primary", {"fsid": FSID}, "storage add_mons (primary)",
         reads=("mons",)),
    Site(CephAgent, "create_empty_volume", {"installPath": f"ceph://pri-v-d-{PS}/{DATA}",
                                            "size": 1 << 30}, "volumes.instantiate"),
    Site(CephAgent, "copy_volume", {"srcPath": f"ceph://bak-t-{BS}/{IMG}",
                                    "dstPath": f"ceph://pri-c-{PS}/{IMG}"},
         "rootvolumes._ceph_cache"),
    Site(CephAgent, "commit_snapshot", {"snapshotPath": f"ceph://pri-c-{PS}/{IMG}@cache"},
         "rootvolumes._ceph_cache"),
    Site(CephAgent, "clone_volume", {"srcPath": f"ceph://pri-c-{PS}/{IMG}@cache",
                                     "dstPath": f"ceph://pri-v-r-{PS}/{VOL}"},
         "rootvolumes.create_root_volume"),
    Site(CephAgent, "resize_volume", {"installPath": f"ceph://pri-v-r-{PS}/{VOL}",
                                      "size": 10 << 30}, "rootvolumes.create_root_volume"),
    Site(CephAgent, "delete_volume", {"installPath": f"ceph://pri-v-r-{PS}/{VOL}"},
         "rootvolumes.delete_volume, volumedeletion.delete_bits, gc"),
    Site(CephAgent, "create_snapshot", {"snapshotPath": f"ceph://pri-v-r-{PS}/{VOL}@{SNAP}"},
         "snapshots create_snapshot", {"size": 1 << 30}, reads=("size",)),
    Site(CephAgent, "delete_snapshot", {"snapshotPath": f"ceph://pri-v-r-{PS}/{VOL}@{SNAP}"},
         "snapshots._delete_bits, gc"),
    Site(CephAgent, "rollback_snapshot", {"snapshotPath":
                                          f"ceph://pri-v-r-{PS}/{VOL}@{SNAP}"},
         "snapshots revert"),
    # cephagent: backup storage
    Site(CephAgent, "init_backup", {"uuid": BS}, "storage add_ceph_bs",
         {"fsid": FSID, "poolName": f"bak-t-{BS}"},
         reads=("fsid", "poolName", "totalCapacity", "availableCapacity")),
    Site(CephAgent, "init_backup", {"uuid": BS, "poolName": "images"},
         "storage add_ceph_bs (pool named)"),
    Site(CephAgent, "ping_backup", {"fsid": FSID}, "storage add_mons (backup)",
         reads=("mons",)),
    Site(CephAgent, "download_image", {"url": "http://10.99.0.1:8000/guest.qcow2",
                                       "imageUuid": IMG,
                                       "installPath": f"ceph://bak-t-{BS}/{IMG}"},
         "images.download_to", {"size": 1 << 30, "actualSize": 1 << 20, "md5Sum": "x"},
         reads=("size", "actualSize", "md5Sum", "format")),
    Site(CephAgent, "delete_image", {"installPath": f"ceph://bak-t-{BS}/{IMG}"},
         "imagedeletion._expunge, gc"),
    # sftpbsagent
    Site(SftpBsAgent, "connect", {"storagePath": "/bs", "uuid": BS, "sendCommandUrl": REPORT},
         "storage add_sftp_bs", {"totalCapacity": 1 << 40, "availableCapacity": 1 << 39},
         reads=("totalCapacity", "availableCapacity")),
    Site(SftpBsAgent, "download", {"url": "http://10.99.0.1:8000/guest.qcow2",
                                   "imageUuid": IMG,
                                   "installPath": f"/bs/images/{IMG}.template"},
         "images.download_to", reads=("size", "actualSize", "md5Sum", "format")),
    Site(SftpBsAgent, "authorize_key", {"publicKey": SSH_KEY}, "rootvolumes._local_cache"),
    Site(SftpBsAgent, "delete", {"installPath": f"/bs/images/{IMG}.template"},
         "imagedeletion._expunge, gc"),
]
MODULES = {KvmAgent: kvmagent, CephAgent: cephagent, SftpBsAgent: sftpbsagent}
AGENT_OF = {KvmAgent: "kvmagent", CephAgent: "cephagent", SftpBsAgent: "sftpbsagent"}


class Recorder:
    """A transport that keeps what it is given and answers ``reply``."""

    def __init__(self, reply: dict):
        self.reply = {"success": True, "error": "", **reply}
        self.calls: list[tuple[Call, float | None]] = []

    def post(self, call: Call, wait: float | None) -> dict:
        self.calls.append((call, wait))
        return self.reply


def declared(module: types.ModuleType) -> dict[str, Endpoint]:
    return {e.path: e for e in vars(module).values() if isinstance(e, Endpoint)}


def methods(client: type) -> set[str]:
    return {name for name, fn in vars(client).items()
            if callable(fn) and not name.startswith("_")} - {"at"}


def sent(site: Site) -> tuple[Endpoint, Call, BaseModel, float | None]:
    """What the site's client method posts, its endpoint, and the reply it returns."""
    recorder = Recorder(site.reply)
    method = getattr(site.client(recorder), site.method)
    needs_wait = inspect.signature(method).parameters["wait"].default is inspect.Parameter.empty
    wait = site.wait if site.wait is not None else (60.0 if needs_wait else None)
    reply = method(wait=wait, **site.body)
    (call, waited), = recorder.calls
    return declared(MODULES[site.client])[call.path], call, reply, waited


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """Each agent built in-process (kvmagent on libvirt's test driver, cephagent with no
    cluster) and its OpenAPI document."""
    root = tmp_path_factory.mktemp("agents")
    built = {
        "kvmagent": build_kvmagent(KvmAgentConfig(
            libvirt_uri="test:///default", data_dir=root / "kvm",
            storage_roots=[root / "ps"], authorized_keys=root / "authorized_keys")),
        "cephagent": build_cephagent(CephAgentConfig(ceph_conf=root / "absent.conf",
                                                     data_dir=root / "ceph")),
        "sftpbsagent": build_sftpbsagent(SftpBsAgentConfig(data_dir=root / "sftpbs")),
    }
    try:
        yield {name: (agent, agent.app.test_client().get("/openapi.json").get_json())
               for name, agent in built.items()}
    finally:
        for agent in built.values():
            agent.close()


@pytest.mark.parametrize("client", list(MODULES), ids=lambda c: c.__name__)
def test_every_declared_endpoint_is_in_the_agents_openapi_document(agents, client):
    agent, doc = agents[AGENT_OF[client]]
    endpoints = declared(MODULES[client])
    assert endpoints
    for path, endpoint in endpoints.items():
        assert path in doc["paths"], f"{AGENT_OF[client]} has no {path}"
        op = doc["paths"][path]["post"]
        assert ("callbacks" in op) == endpoint.is_async, f"{path}: async on the agent: " \
            f"{'callbacks' in op}, in the client: {endpoint.is_async}"
        route = agent.routes[path]
        assert (route.command, route.reply) == (endpoint.command, endpoint.reply), path


@pytest.mark.parametrize("site", SITES, ids=lambda s: f"{s.client.__name__}.{s.method}")
def test_what_each_call_site_sends_is_what_its_client_builds(agents, site):
    """Today's body goes through the client (a key the agent would ignore is refused
    there, naming it) and the agent reads the same command from both."""
    endpoint, call, reply, wait = sent(site)
    assert endpoint.command.model_validate(call.body) == \
        endpoint.command.model_validate(site.body), site.where
    assert isinstance(reply, endpoint.reply)
    fields = {f.alias or name for name, f in endpoint.reply.model_fields.items()}
    assert set(site.reads) <= fields, f"{site.where} reads {set(site.reads) - fields}"
    if endpoint.is_async:
        assert call.is_async and wait is not None
    else:
        assert not call.is_async and wait == site.wait
    _, doc = agents[AGENT_OF[site.client]]
    schema = doc["paths"][call.path]["post"]["requestBody"]["content"]["application/json"][
        "schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(
        call.body)


def test_the_call_sites_cover_every_client_method_and_endpoint():
    for client, module in MODULES.items():
        covered = [s for s in SITES if s.client is client]
        assert {s.method for s in covered} == methods(client), client.__name__
        assert {sent(s)[1].path for s in covered} == set(declared(module)), client.__name__


def test_async_methods_need_a_wait():
    with pytest.raises(TypeError):
        KvmAgent(Recorder({})).destroy_vm(uuid=VM)


def _models(model: type[BaseModel], seen: set) -> None:
    if model in seen:
        return
    seen.add(model)
    for f in model.model_fields.values():
        stack = [f.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                _models(t, seen)
            stack.extend(typing.get_args(t))


def test_leaving_none_out_of_a_body_says_what_sending_it_would():
    """Endpoint.call drops ``None``: fine only if no optional field of any command (at
    any depth) defaults to something else."""
    seen: set = set()
    for module in MODULES.values():
        for endpoint in declared(module).values():
            _models(endpoint.command, seen)
    for model in seen:
        for name, f in model.model_fields.items():
            optional = type(None) in typing.get_args(f.annotation)
            assert not optional or f.get_default(call_default_factory=True) is None, \
                f"{model.__name__}.{name}"


def test_the_clients_import_the_agents_models_never_their_drivers_or_handlers():
    code = ("import sys, coordinator.clients.kvmagent, coordinator.clients.cephagent, "
            "coordinator.clients.sftpbsagent; print(' '.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    agents = [m for m in loaded if m.split(".")[0] in AGENT_OF.values()]
    assert agents and not [m for m in agents if m.split(".")[1:2] in (["drivers"],
                                                                     ["handlers"])], agents
