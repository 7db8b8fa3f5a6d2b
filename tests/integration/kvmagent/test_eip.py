"""Distributed EIP through real kvmagents on simulated hosts sharing a public L2: "VMs" are
namespaces on each host's br-vm, the public side is another simulated host (the public
gateway, with a server behind it); traffic is real TCP (busybox nc) and real ARP."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from devcluster.vmnic import VmNic
from kvmagent.drivers.eip import names
from tests.fixtures.eip import (
    PUBLIC_BRIDGE,
    PUBLIC_GATEWAY,
    REMOTE_SERVER,
    VM_BRIDGE,
    EipHost,
    tcp_peer,
)

pytestmark = pytest.mark.integration

VIP1, VIP2 = "172.31.250.10", "172.31.250.11"
GATEWAY, NETMASK = "10.60.0.1", "255.255.255.0"
MAC1, MAC2 = "52:54:00:60:00:11", "52:54:00:60:00:12"
IP1, IP2 = "10.60.0.11", "10.60.0.12"
ROUTER_MAC = "52:54:00:60:00:01"
HOST_IP = "10.60.0.5"


def eip_to(eip_uuid: str, vip: str = VIP1, nic: str = "vn-vm1", mac: str = MAC1,
           ip: str = IP1, **extra) -> dict:
    return {"eipUuid": eip_uuid, "vip": vip, "vipNetmask": "255.255.255.0",
            "vipGateway": PUBLIC_GATEWAY, "nicName": nic, "nicIp": ip, "nicMac": mac,
            "nicGateway": GATEWAY, "nicNetmask": NETMASK, "publicBridgeName": PUBLIC_BRIDGE,
            "vmBridgeName": VM_BRIDGE, **extra}


def timed(host: EipHost, path: str, body: dict) -> tuple[dict, float]:
    started = time.monotonic()
    reply = host.call(path, body)
    return reply, time.monotonic() - started


def router(host: EipHost) -> VmNic:
    """The VM network's real router on br-vm: the EIP namespace shares its address."""
    nic = VmNic(host.host, "gw", VM_BRIDGE, ROUTER_MAC).create()
    host.host.run(["ip", "-n", nic.netns, "addr", "add", f"{GATEWAY}/24", "dev", "eth0"])
    return nic


def vm(host: EipHost, name: str, mac: str, ip: str) -> VmNic:
    return host.vm(name, mac, f"{ip}/24", GATEWAY)


def arping(host: EipHost, ns: str, ifname: str, target: str) -> str:
    """What ``busybox arping`` in ``ns`` heard back ('' if nobody answered)."""
    res = host.inside(ns, "busybox", "arping", "-c", "1", "-w", "1", "-I", ifname, target,
                      check=False)
    return res.stdout if res.rc == 0 else ""


def neighbour(host: EipHost, ns: str, ip: str) -> str:
    return host.host.run(["ip", "-n", ns, "neigh", "show", ip]).stdout.strip()


def echoes_heard(host: EipHost, ns: str) -> int:
    """ICMP echo requests that reached namespace ``ns`` (its /proc/net/snmp)."""
    names_, values = [line.split()[1:] for line in
                      host.inside(ns, "cat", "/proc/net/snmp").stdout.splitlines()
                      if line.startswith("Icmp:")]
    return int(dict(zip(names_, values, strict=True))["InEchos"])


def snapshot(host: EipHost, eip_uuid: str) -> dict:
    """Everything an EIP is on its host (link indexes show a re-creation)."""
    ns = names(eip_uuid).netns
    inside = (["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"],
              ["iptables-save", "-t", "nat"], ["sysctl", "net.ipv4.ip_forward"])
    return {"links": host.host.run(["ip", "-o", "link"]).stdout,
            "ebtables": host.ebtables(),
            "inside": [re.sub(r"^#.*\n", "", host.inside(ns, *argv).stdout, flags=re.M)
                       for argv in inside]}


def leftovers(host: EipHost, eip_uuid: str) -> list[str]:
    n = names(eip_uuid)
    found = [ns for ns in host.netns() if ns == n.netns]
    found += [link for link in host.links() if link in (n.public_outer, n.private_outer)]
    return found + [line for line in host.ebtables()
                    if any(c.name in line for c in n.chains) or n.private_outer in line]


def test_eip_serves_its_vm_only_and_moves_with_it(eip_host_factory, public_client):
    a, b = eip_host_factory(), eip_host_factory()
    client = public_client
    eip = uuid.uuid4().hex
    n = names(eip)
    vm1, vm2 = vm(a, "vm1", MAC1, IP1), vm(a, "vm2", MAC2, IP2)  # vm2 has no EIP
    router(a)

    reply, apply_s = timed(a, "/flatnetworkprovider/eip/apply", {"eip": eip_to(eip)})
    assert reply["eips"] == [{"eipUuid": eip, "namespace": n.netns, "changed": True,
                              "publicInterface": n.public_outer,
                              "privateInterface": n.private_outer,
                              "gatewayMac": n.gateway_mac}]

    # inbound: the public client reaches the VM at the EIP, and the VM sees the client
    assert tcp_peer(a.host, vm1.netns, 8080, client, None, VIP1) == PUBLIC_GATEWAY
    # outbound, through the public gateway: the server sees the EIP, not the VM's address
    assert tcp_peer(client, None, 9090, a.host, vm1.netns, REMOTE_SERVER) == VIP1

    # vm1's gateway ARP is answered on the bridge with the namespace's MAC and goes no
    # further (the real router never hears it); vm2 (no EIP) only hears the real router
    heard = arping(a, vm1.netns, "eth0", GATEWAY).lower()
    assert n.gateway_mac in heard and ROUTER_MAC not in heard
    heard = arping(a, vm2.netns, "eth0", GATEWAY).lower()
    assert ROUTER_MAC in heard and n.gateway_mac not in heard
    # the namespace hears nothing from vm2, not even a ping sent straight to its MAC ...
    heard_before = echoes_heard(a, n.netns)
    a.host.run(["ip", "-n", vm2.netns, "neigh", "replace", GATEWAY, "lladdr", n.gateway_mac,
                "dev", "eth0"])
    assert a.inside(vm2.netns, "busybox", "ping", "-c", "1", "-W", "1", GATEWAY,
                    check=False).rc != 0
    assert echoes_heard(a, n.netns) == heard_before
    a.host.run(["ip", "-n", vm2.netns, "neigh", "del", GATEWAY, "dev", "eth0"])
    # ... and its own ARP requests (sent from the gateway IP) reach vm1 only, not vm2
    # nor the host (here on the VM network too) ...
    a.host.run(["ip", "addr", "add", f"{HOST_IP}/24", "dev", VM_BRIDGE])
    a.host.run(["busybox", "ping", "-c", "1", "-W", "1", GATEWAY])
    a.inside(vm2.netns, "busybox", "ping", "-c", "1", "-W", "1", GATEWAY)
    assert arping(a, n.netns, "private", IP2) == ""
    assert arping(a, n.netns, "private", HOST_IP) == ""
    assert ROUTER_MAC in neighbour(a, vm2.netns, GATEWAY)
    assert ROUTER_MAC in a.host.run(["ip", "neigh", "show", GATEWAY]).stdout
    # ... because of the isolation rules: without them vm2's gateway entry is poisoned
    a.host.run(["ebtables", "-F", n.forward.name])
    assert arping(a, n.netns, "private", IP2) != ""
    assert n.gateway_mac in neighbour(a, vm2.netns, GATEWAY)
    a.host.run(["ip", "-n", vm2.netns, "neigh", "flush", "all"])

    # a repeated apply repairs what is missing, and then changes nothing at all
    assert a.call("/flatnetworkprovider/eip/apply", {"eip": eip_to(eip)})["eips"][0]["changed"]
    assert arping(a, n.netns, "private", IP2) == ""
    before = snapshot(a, eip)
    reply, reapply_s = timed(a, "/flatnetworkprovider/eip/apply", {"eip": eip_to(eip)})
    assert reply["eips"][0]["changed"] is False
    assert snapshot(a, eip) == before

    # delete leaves nothing; a second delete has nothing to do
    reply, delete_s = timed(a, "/flatnetworkprovider/eip/delete", {"eip": {"eipUuid": eip}})
    assert reply["eips"][0]["changed"] is True
    assert leftovers(a, eip) == []
    assert a.call("/flatnetworkprovider/eip/delete", {"eip": eip_to(eip)})["eips"][0][
        "changed"] is False
    print(f"apply {apply_s:.3f}s, repeated apply {reapply_s:.3f}s, delete {delete_s:.3f}s")

    # the VM moves to b, and its EIP with it
    vm1.delete()
    vm1_b = vm(b, "vm1", MAC1, IP1)
    b.call("/flatnetworkprovider/eip/apply", {"eip": eip_to(eip)})
    assert tcp_peer(b.host, vm1_b.netns, 8081, client, None, VIP1) == PUBLIC_GATEWAY
    assert tcp_peer(client, None, 9091, b.host, vm1_b.netns, REMOTE_SERVER) == VIP1
    assert client.run(["ip", "neigh", "show", VIP1]).stdout.split()[4] == n.public_mac


def test_batches_and_bad_input(eip_host_factory, public_client):
    a = eip_host_factory()
    eip1, eip2 = uuid.uuid4().hex, str(uuid.uuid4())  # the dashed form is accepted too
    vm1, vm2 = vm(a, "vm1", MAC1, IP1), vm(a, "vm2", MAC2, IP2)
    good = [eip_to(eip1), eip_to(eip2, VIP2, "vn-vm2", MAC2, IP2)]
    clean = (a.netns(), a.links(), a.ebtables())

    bad = {"vip": "172.31.250.300", "nicMac": "52:54:00:60:00", "nicIp": "10.61.0.11",
           "nicName": "a-nic-name-too-long", "vmBridgeName": "br-vm;reboot",
           "vipGateway": "172.31.251.1", "eipUuid": "not-a-uuid"}
    for field, value in bad.items():
        reply = a.post("/flatnetworkprovider/eip/batchapply",
                       {"eips": [good[0], eip_to(eip2, **{field: value})]})
        assert reply.status_code == 400, (field, reply.text)
        assert reply.json()["error"].startswith(f"eips.1.{field}:"), reply.text
    for field in ("publicBridgeName", "vmBridgeName"):
        reply = a.post("/flatnetworkprovider/eip/apply", {"eip": eip_to(eip1, **{field: "br-x"})})
        assert not reply.json()["success"]
        assert reply.json()["error"].startswith(f"eip.{field}:"), reply.text
    assert (a.netns(), a.links(), a.ebtables()) == clean  # nothing was made

    reply = a.call("/flatnetworkprovider/eip/batchapply", {"eips": good})
    assert [e["changed"] for e in reply["eips"]] == [True, True]
    assert tcp_peer(a.host, vm2.netns, 8082, public_client, None, VIP2) == PUBLIC_GATEWAY
    assert tcp_peer(a.host, vm1.netns, 8083, public_client, None, VIP1) == PUBLIC_GATEWAY
    # each namespace answers its own VM's gateway ARP only
    assert names(eip2).gateway_mac in arping(a, vm2.netns, "eth0", GATEWAY).lower()
    assert names(eip1).gateway_mac in arping(a, vm1.netns, "eth0", GATEWAY).lower()
    reply = a.call("/flatnetworkprovider/eip/batchapply", {"eips": good})
    assert [e["changed"] for e in reply["eips"]] == [False, False]

    reply = a.call("/flatnetworkprovider/eip/batchdelete", {"eips": good})
    assert [e["changed"] for e in reply["eips"]] == [True, True]
    assert leftovers(a, eip1) == leftovers(a, eip2) == []
    assert (a.netns(), a.links(), a.ebtables()) == clean
