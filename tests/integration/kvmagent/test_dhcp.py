"""Distributed DHCP through real kvmagents on simulated hosts sharing one data L2: real
namespaces, dnsmasq and ebtables; "VM NICs" are namespaces running busybox udhcpc, and
one real qemu guest takes its lease too."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from agentlib.receiver import CallbackReceiver
from kvmagent.drivers.dhcp import names
from tests.fixtures.dhcp import DATA_BRIDGE
from tests.fixtures.kvm import KvmHost

pytestmark = pytest.mark.integration

L3 = uuid.uuid4().hex
NS = f"{DATA_BRIDGE}_{L3}"
SERVER, NETMASK, GATEWAY, DNS = "10.42.0.2", "255.255.255.0", "10.42.0.1", ["10.42.0.53"]
MAC1, MAC2, MAC3 = "52:54:00:42:00:01", "52:54:00:42:00:02", "52:54:00:42:00:03"


def prepare(host, namespace=NS, server=SERVER):
    return host.call("/flatnetworkprovider/dhcp/prepare", {
        "bridgeName": DATA_BRIDGE, "namespaceName": namespace, "dhcpServerIp": server,
        "dhcpNetmask": NETMASK})


def entry(mac, ip, hostname="", namespace=NS, **extra):
    return {"namespaceName": namespace, "bridgeName": DATA_BRIDGE, "mac": mac, "ip": ip,
            "netmask": NETMASK, "gateway": GATEWAY, "dns": DNS, "hostname": hostname,
            "isDefaultL3Network": True, **extra}


def apply(host, *entries, path="apply", **extra):
    return host.call(f"/flatnetworkprovider/dhcp/{path}", {"dhcp": list(entries), **extra})


def answered(log: str, mac: str) -> list[str]:
    """The addresses this dnsmasq acknowledged to ``mac``."""
    return re.findall(rf"DHCPACK\(\S+\) (\S+) {mac}", log)


def hosts_file(host, namespace=NS) -> list[str]:
    return host.dnsmasq(namespace).hosts.read_text().splitlines()


def test_each_host_serves_only_its_own_vms(dhcp_host_factory):
    a, b = dhcp_host_factory(), dhcp_host_factory()
    for host in (a, b):
        reply = prepare(host)
        assert reply["uplink"] == "eth1" and reply["reload"] == "start"
    apply(a, entry(MAC1, "10.42.0.11", "vm1"))
    # b holds a stale entry for MAC1 (the VM used to live there): it must stay silent
    apply(b, entry(MAC2, "10.42.0.12", "vm2"), entry(MAC1, "10.42.0.99", "stale"))
    nic1, nic2 = a.nic("n1", MAC1), b.nic("n2", MAC2)

    lease1, lease2 = nic1.lease(), nic2.lease()
    assert (lease1.ip, lease1.router, lease1.dns, lease1.hostname, lease1.serverid) == (
        "10.42.0.11", GATEWAY, DNS[0], "vm1", SERVER)
    assert lease1.mask == "24" and lease1.seconds < 1.5
    assert lease2.ip == "10.42.0.12"
    assert answered(a.dnsmasq_log(NS), MAC1) == ["10.42.0.11"]
    assert MAC1 not in b.dnsmasq_log(NS)  # b never even heard nic1's broadcasts
    assert MAC2 not in a.dnsmasq_log(NS)

    # the rules are what keeps them apart: without them b hears (and answers) nic1
    _, _, chain = names(NS)
    for host in (a, b):
        host.host.run(["ebtables", "-D", "FORWARD", "-j", chain])
    nic1.lease()
    assert MAC1 in b.dnsmasq_log(NS)
    # a repeated prepare repairs them without touching dnsmasq
    for host in (a, b):
        assert prepare(host)["reload"] == "none"
        assert f"-A FORWARD -j {chain}" in host.ebtables()


def test_remap_release_reset_gateway_and_converge(dhcp_host_factory):
    a = dhcp_host_factory()
    prepare(a)
    first = apply(a, entry(MAC1, "10.42.0.11", "vm1"))["namespaces"][NS]
    pid = first["dnsmasqPid"]
    nic1, nic2 = a.nic("n1", MAC1), a.nic("n2", MAC2)
    assert nic1.lease().ip == "10.42.0.11"

    # remap: served by a reload of the same dnsmasq
    reply = apply(a, entry(MAC1, "10.42.0.21", "vm1"))["namespaces"][NS]
    assert reply == {"entries": 1, "reload": "reload", "dnsmasqPid": pid}
    assert nic1.lease().ip == "10.42.0.21"
    # the same command again changes nothing
    assert apply(a, entry(MAC1, "10.42.0.21", "vm1"))["namespaces"][NS]["reload"] == "none"
    # an IP moved to another MAC leaves the old holder without it
    apply(a, entry(MAC2, "10.42.0.21", "vm2"))
    assert hosts_file(a) == [f"{MAC2},10.42.0.21,vm2,infinite"]
    assert nic2.lease().ip == "10.42.0.21"

    # a NIC of a VM whose default L3 is another one gets neither router nor DNS
    apply(a, entry(MAC1, "10.42.0.31", isDefaultL3Network=False))
    lease = nic1.lease()
    assert (lease.ip, lease.router, lease.dns) == ("10.42.0.31", "", "")
    reply = a.call("/flatnetworkprovider/dhcp/resetDefaultGateway", {
        "namespaceNameOfGatewayToAdd": NS, "macOfGatewayToAdd": MAC1,
        "gatewayToAdd": GATEWAY, "bridgeNameOfGatewayToAdd": DATA_BRIDGE})
    assert reply["namespaces"][NS]["reload"] == "restart"  # options live in the conf
    pid = reply["namespaces"][NS]["dnsmasqPid"]
    assert nic1.lease().router == GATEWAY

    # release: nothing is offered any more
    apply(a, entry(MAC3, "10.42.0.33"))
    a.call("/flatnetworkprovider/dhcp/release", {"dhcp": [entry(MAC1, "10.42.0.31")]})
    assert MAC1 not in a.dnsmasq(NS).hosts.read_text()
    assert nic1.lease(tries=2) is None

    # connect converges to exactly what is sent: no stale entry survives
    reply = apply(a, entry(MAC2, "10.42.0.22", "vm2"), path="connect")
    assert reply["namespaces"][NS]["entries"] == 1
    assert hosts_file(a) == [f"{MAC2},10.42.0.22,vm2,infinite"]
    assert nic2.lease().ip == "10.42.0.22"
    # flush of the namespace with no entries: it serves nobody
    a.call("/flatnetworkprovider/dhcp/flush", {"namespaceName": NS, "bridgeName": DATA_BRIDGE})
    assert hosts_file(a) == []
    # batchApply with rebuild, in ZStack's dhcpInfos shape
    reply = a.call("/flatnetworkprovider/dhcp/batchApply", {"dhcpInfos": [
        {"dhcp": [entry(MAC1, "10.42.0.41")], "rebuild": True},
        {"dhcp": [entry(MAC2, "10.42.0.42")]}]})
    assert reply["namespaces"][NS] == {"entries": 2, "reload": "reload", "dnsmasqPid": pid}


def test_agent_restart_keeps_dnsmasq_and_leases(dhcp_host_factory):
    a = dhcp_host_factory()
    prepare(a)
    pid = apply(a, entry(MAC1, "10.42.0.11"))["namespaces"][NS]["dnsmasqPid"]
    nic1 = a.nic("n1", MAC1)
    a.restart_agent()
    assert a.dnsmasq(NS).pid() == pid
    assert nic1.lease().ip == "10.42.0.11"
    reply = apply(a, entry(MAC1, "10.42.0.12"))["namespaces"][NS]
    assert (reply["reload"], reply["dnsmasqPid"]) == ("reload", pid)
    assert nic1.lease().ip == "10.42.0.12"
    assert "adopted (dnsmasq pid" in (a.host.dir / "log" / "kvmagent.log").read_text()

    # a dnsmasq that died is started again by the next command
    psutil.Process(pid).kill()
    reply = apply(a, entry(MAC1, "10.42.0.13"))["namespaces"][NS]
    assert reply["reload"] == "start" and reply["dnsmasqPid"] != pid
    assert nic1.lease().ip == "10.42.0.13"


def test_prepare_puts_back_what_was_undone_behind_the_agents_back(dhcp_host_factory):
    """The agent reads the namespace's links, address and rules from the system (never
    from what it did last): a prepare after they were changed by hand restores them."""
    a = dhcp_host_factory()
    prepare(a)
    apply(a, entry(MAC1, "10.42.0.11"))
    outer, inner, chain = names(NS)

    def rules() -> list[str]:
        return [line for line in a.ebtables().splitlines() if line.startswith(f"-A {chain} ")]

    def address() -> str:
        return a.host.run(["ip", "-n", NS, "-o", "addr", "show", "dev", inner]).stdout

    before = rules()
    assert before and SERVER in address()
    a.host.run(["ebtables", "-F", chain])
    a.host.run(["ip", "link", "set", outer, "nomaster"])
    a.host.run(["ip", "-n", NS, "addr", "flush", "dev", inner])
    prepare(a)
    assert rules() == before
    assert f"master {DATA_BRIDGE} " in next(ln for ln in a.links().splitlines() if outer in ln)
    assert f"inet {SERVER}/24" in address()


def test_deletenamespace_leaves_nothing(dhcp_host_factory):
    a = dhcp_host_factory()
    prepare(a)
    pid = apply(a, entry(MAC1, "10.42.0.11"))["namespaces"][NS]["dnsmasqPid"]
    outer, _, chain = names(NS)
    assert NS in a.netns() and outer in a.links() and chain in a.ebtables()

    body = {"namespaceName": NS, "bridgeName": DATA_BRIDGE}
    a.call("/flatnetworkprovider/dhcp/deletenamespace", body)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert NS not in a.netns()
    assert outer not in a.links()
    assert chain not in a.ebtables()
    assert not (a.data_dir / "dhcp" / NS).exists()
    a.call("/flatnetworkprovider/dhcp/deletenamespace", body)  # idempotent
    # and entries for it are refused until it is prepared again
    reply = a.post("/flatnetworkprovider/dhcp/apply", {"dhcp": [entry(MAC1, "10.42.0.11")]})
    assert not reply.json()["success"] and "dhcp.0.namespaceName" in reply.json()["error"]


BAD_INPUT = [  # (field, value, HTTP status): the model's 400, or a failure reply
    ("hostname", "vm1\ndhcp-script=/tmp/x", 400),
    ("hostname", "vm1,10.42.0.99", 400),
    ("hostname", "vm 1", 400),
    ("mac", "52:54:00:42:00", 400),
    ("mac", "52:54:00:42:00:01\n", 400),
    ("ip", "10.42.0.300", 400),
    ("gateway", "10.9.9.9", 200),  # not in the network the namespace serves
    ("ip", "10.43.0.11", 200),  # outside the network the namespace serves (no gateway)
    ("ip", SERVER, 200),
]


def test_bad_input_names_the_field_and_writes_nothing(dhcp_host_factory):
    a = dhcp_host_factory()
    prepare(a)
    apply(a, entry(MAC3, "10.42.0.13"))
    before = a.dnsmasq(NS).hosts.read_text(), a.dnsmasq_log(NS).count("read ")
    good = entry(MAC1, "10.42.0.11")
    for field, value, status in BAD_INPUT:
        bad = {**entry(MAC2, "10.42.0.12", gateway=None), field: value}
        reply = a.post("/flatnetworkprovider/dhcp/batchApply", {"dhcp": [good, bad]})
        case = f"{field}={value!r}: {reply.text}"
        assert reply.status_code == status, case
        assert not reply.json()["success"] and f"dhcp.1.{field}" in reply.json()["error"], case
    # one IP for two MACs in one command
    reply = a.post("/flatnetworkprovider/dhcp/apply",
                   {"dhcp": [good, entry(MAC2, "10.42.0.11")]})
    assert not reply.json()["success"] and "dhcp.1.ip" in reply.json()["error"]
    assert (a.dnsmasq(NS).hosts.read_text(), a.dnsmasq_log(NS).count("read ")) == before
    reply = a.post("/flatnetworkprovider/dhcp/prepare", {
        "bridgeName": DATA_BRIDGE, "namespaceName": "bad/name", "dhcpServerIp": SERVER,
        "dhcpNetmask": NETMASK})
    assert reply.status_code == 400 and "namespaceName" in reply.json()["error"]


def test_concurrent_prepare_and_apply_never_race(dhcp_host_factory):
    a = dhcp_host_factory()
    namespaces = [f"{DATA_BRIDGE}_{uuid.uuid4().hex}" for _ in range(6)]

    def make(i_ns):
        i, ns = i_ns
        server = f"10.50.{i}.2"
        prepare(a, ns, server)  # twice at once per namespace: same outcome
        return apply(a, entry(f"52:54:00:50:00:{i:02x}", f"10.50.{i}.10", namespace=ns,
                              gateway=f"10.50.{i}.1"))["namespaces"][ns]

    work = list(enumerate(namespaces)) * 2
    with ThreadPoolExecutor(len(work)) as pool:
        replies = list(pool.map(make, work))
    assert all(r["entries"] == 1 for r in replies)
    pids = {a.dnsmasq(ns).pid() for ns in namespaces}
    assert len(pids) == len(namespaces) and None not in pids
    assert sorted(ns for ns in a.netns() if ns in namespaces) == sorted(namespaces)
    for ns in namespaces:
        a.call("/flatnetworkprovider/dhcp/deletenamespace", {"namespaceName": ns})
    assert not set(namespaces) & set(a.netns())


def test_a_qemu_guest_gets_its_mapped_address(dhcp_host_factory, host_network,
                                              guest_image):
    a = dhcp_host_factory(libvirt=True)
    prepare(a)
    receiver = CallbackReceiver(host=host_network.root_ip.split("/")[0]).start()
    try:
        kvm = KvmHost(a.host, None, receiver, guest_image, uuid.uuid4().hex)
        kvm.call("/host/connect", {"hostUuid": kvm.host_uuid, "sendCommandUrl": receiver.url})
        cmd = kvm.start_cmd()
        mac = cmd["nics"][0]["mac"]
        cmd["nics"][0]["bridgeName"] = DATA_BRIDGE
        apply(a, entry(mac, "10.42.0.77", "guest"))
        started = time.monotonic()
        assert kvm.call_async("/vm/start", cmd)["success"]
        vm = cmd["vmInstanceUuid"]
        report = kvm.wait_console(vm, lambda r: r.leases.get("eth0") and r, "guest lease")
        assert report.ip("eth0") == "10.42.0.77", kvm.console_text(vm)
        assert report.leases["eth0"]["router"] == GATEWAY
        assert answered(a.dnsmasq_log(NS), mac) == ["10.42.0.77"]
        print(f"guest start -> lease {time.monotonic() - started:.1f}s")
        assert kvm.call_async("/vm/destroy", {"uuid": vm})["success"]
    finally:
        receiver.stop()
