"""L2 networks through a real kvmagent in simulated hosts: novlan bridges that take over
a NIC's addresses (also the management NIC), the VLAN path on a kernel without 802.1Q,
and VXLAN between two hosts proven by pinging between namespaces only it connects.

The agents run without libvirtd (the L2 endpoints do not need it; the agent keeps
retrying libvirt in the background), so each host costs about a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests

from devcluster.kvmhost import kvmagent_url, start_kvmagent
from devcluster.simhost import SimHost

pytestmark = pytest.mark.integration

VNI = 4242
VX_NET = "10.66.0"  # the VXLAN's test subnet: exists only inside the hosts' namespaces


@dataclass(eq=False)  # hashable by identity: tests key dicts by host
class L2Host:
    host: SimHost

    def call(self, path: str, body: dict) -> dict:
        return requests.post(kvmagent_url(self.host) + path, json=body, timeout=30).json()

    def ip(self, *args: str) -> list[dict]:
        return json.loads(self.host.run(["ip", "-j", *args]).stdout or "[]")

    def link(self, name: str) -> dict | None:
        found = [ln for ln in self.ip("-d", "link", "show") if ln["ifname"] == name]
        return found[0] if found else None

    def ipv4(self, dev: str) -> list[str]:
        return [f"{a['local']}/{a['prefixlen']}" for ln in self.ip("-4", "addr", "show", "dev", dev)
                for a in ln["addr_info"]]

    def snapshot(self) -> tuple:
        """Links, IPv4 addresses, routes and static fdb entries: what an idempotent command
        must leave unchanged (not timers, learned MACs or IPv6 DAD flags: they move alone)."""
        return (self.ip("link", "show"), self.ip("-4", "addr", "show"),
                self.ip("-4", "route", "show"),
                [e for e in self.fdb() if e.get("state") == "permanent"])

    def fdb(self, dev: str | None = None) -> list[dict]:
        args = ["bridge", "-j", "fdb", "show"] + (["dev", dev] if dev else [])
        return json.loads(self.host.run(args).stdout or "[]")

    def ping(self, address: str, netns: str | None = None, wait: int = 2) -> bool:
        inside = ["ip", "netns", "exec", netns] if netns else []
        argv = [*inside, "busybox", "ping", "-c1", f"-W{wait}", address]
        return self.host.run(argv, check=False).rc == 0

    def vm_namespace(self, name: str, bridge: str, address: str) -> None:
        """A stand-in VM: a namespace joined to ``bridge`` by a veth, with ``address``."""
        self.host.run(["ip", "netns", "add", name])
        self.host.run(["ip", "link", "add", f"{name}-p", "type", "veth", "peer", "name",
                       "eth0", "netns", name])
        self.host.run(["ip", "link", "set", f"{name}-p", "master", bridge, "up"])
        for argv in (["ip", "addr", "add", address, "dev", "eth0"],
                     ["ip", "link", "set", "eth0", "up"], ["ip", "link", "set", "lo", "up"]):
            self.host.run(["ip", "netns", "exec", name, *argv])


@pytest.fixture
def l2_host(simhost_factory):
    """``make(roles=("data",)) -> L2Host``: a simulated host running kvmagent, no libvirtd."""

    def make(roles=("data",)) -> L2Host:
        host = simhost_factory(roles=roles)
        start_kvmagent(host, "--log-level", "DEBUG")
        return L2Host(host)

    return make


def test_novlan_bridge_takes_over_the_nic_and_its_addresses(l2_host):
    a, b = l2_host(roles=("data", "public")), l2_host()
    for n, h in ((1, a), (2, b)):
        h.host.run(["ip", "addr", "add", f"10.77.0.{n}/24", "dev", "eth1"])
    a.host.run(["ip", "route", "add", "default", "via", "10.77.0.254", "dev", "eth1"])
    assert a.ping("10.77.0.2")

    create = {"physicalInterfaceName": "eth1", "bridgeName": "br_eth1"}
    for h in (a, b):
        assert h.call("/network/l2novlan/createbridge", create) == {"success": True, "error": ""}
    for n, h in ((1, a), (2, b)):
        assert h.link("eth1")["master"] == "br_eth1"
        assert h.ipv4("eth1") == [] and h.ipv4("br_eth1") == [f"10.77.0.{n}/24"]
    [default] = [r for r in a.ip("-4", "route", "show") if r["dst"] == "default"]
    assert (default["dev"], default["gateway"]) == ("br_eth1", "10.77.0.254")
    assert a.ping("10.77.0.2") and b.ping("10.77.0.1")

    before = a.snapshot()
    assert a.call("/network/l2novlan/createbridge", create)["success"]
    assert a.snapshot() == before
    assert a.call("/network/l2novlan/checkbridge", create)["success"]

    wrong = a.call("/network/l2novlan/checkbridge",
                   {"physicalInterfaceName": "eth2", "bridgeName": "br_eth1"})
    assert not wrong["success"] and "eth2 is not a port of bridge br_eth1" in wrong["error"]
    other = a.call("/network/l2novlan/createbridge",
                   {"physicalInterfaceName": "eth2", "bridgeName": "br_eth1"})
    assert not other["success"]
    assert "br_eth1 already bridges eth1" in other["error"] and "eth2" in other["error"]
    assert a.link("eth2").get("master") is None and a.snapshot() == before

    check = a.call("/network/checkphysicalnetworkinterface",
                   {"interfaceNames": ["eth0", "eth1", "eth7", "bond9"]})
    assert not check["success"] and check["failedInterfaceNames"] == ["eth7", "bond9"]
    assert "eth7, bond9" in check["error"]
    assert a.call("/network/checkphysicalnetworkinterface",
                  {"interfaceNames": ["eth0", "eth2"]})["success"]

    bad = requests.post(kvmagent_url(a.host) + "/network/l2novlan/createbridge", timeout=10,
                        json={"physicalInterfaceName": "eth1;reboot", "bridgeName": "br1"})
    assert bad.status_code == 400 and "physicalInterfaceName" in bad.json()["error"]


def test_bridging_the_management_nic_keeps_the_agent_reachable(l2_host):
    a, b = l2_host(roles=()), l2_host(roles=())
    mgmt = a.ipv4("eth0")
    reply = a.call("/network/l2novlan/createbridge",
                   {"physicalInterfaceName": "eth0", "bridgeName": "br_eth0"})
    assert reply["success"], reply
    assert a.ipv4("br_eth0") == mgmt and a.ipv4("eth0") == []
    assert a.call("/host/echo", {})["success"]
    assert b.ping(a.host.mgmt_address)


def test_vlan_bridge_fails_clearly_on_a_kernel_without_8021q(l2_host):
    a = l2_host()
    before = a.snapshot()
    reply = a.call("/network/l2vlan/createbridge",
                   {"physicalInterfaceName": "eth1", "bridgeName": "br_eth1_10", "vlan": 10})
    assert not reply["success"]
    assert reply["error"].startswith(
        "this host's kernel has no 802.1Q VLAN support (module 8021q): "
        "cannot create VLAN device eth1.10 on eth1")
    assert a.snapshot() == before  # nothing half-made
    missing = a.call("/network/l2vlan/createbridge",
                     {"physicalInterfaceName": "eth9", "bridgeName": "br_eth9_10", "vlan": 10})
    assert "physical interface eth9 does not exist" in missing["error"]
    delete = {"bridgeName": "br_eth1_10", "physicalInterfaceName": "eth1", "vlan": 10}
    assert a.call("/network/l2vlan/deletebridge", delete)["success"]  # nothing to delete
    assert not a.call("/network/l2vlan/checkbridge", delete)["success"]


def test_vxlan_connects_two_hosts_and_follows_the_fdb(l2_host):
    a, b = l2_host(roles=()), l2_host(roles=())
    vteps = {a: a.host.mgmt_address, b: b.host.mgmt_address}
    for n, (h, other) in enumerate(((a, b), (b, a)), start=1):
        reply = h.call("/network/l2vxlan/createbridge", {
            "vni": VNI, "bridgeName": "br_vx", "localIp": vteps[h], "peers": [vteps[other]]})
        assert reply["success"], reply
        h.vm_namespace("vm", "br_vx", f"{VX_NET}.{n}/24")
    vx = a.link(f"vxlan{VNI}")
    data = vx["linkinfo"]["info_data"]
    assert (vx["master"], data["id"], data["local"], data["port"]) == (
        "br_vx", VNI, vteps[a], 4789)
    assert not data.get("learning")
    assert _flood_peers(a) == [vteps[b]]
    assert a.ping(f"{VX_NET}.2", netns="vm")  # nothing but the VXLAN joins the two bridges

    before = a.snapshot()
    again = {"vni": VNI, "bridgeName": "br_vx", "localIp": vteps[a], "peers": [vteps[b]]}
    assert a.call("/network/l2vxlan/createbridge", again)["success"]
    assert a.snapshot() == before

    assert a.call("/network/l2vxlan/populatefdb", {"vni": VNI, "peers": []})["success"]
    assert _flood_peers(a) == []
    assert not a.ping(f"{VX_NET}.2", netns="vm", wait=1)
    fdb = {"vni": VNI, "peers": [vteps[b], vteps[a], "10.66.255.9"]}  # self is skipped
    assert a.call("/network/l2vxlan/populatefdb", fdb)["success"]
    assert _flood_peers(a) == sorted([vteps[b], "10.66.255.9"])
    assert a.ping(f"{VX_NET}.2", netns="vm")

    missing = a.call("/network/l2vxlan/populatefdb", {"vni": 7, "peers": []})
    assert not missing["success"] and "vxlan7 does not exist" in missing["error"]
    foreign = a.call("/network/l2vxlan/createbridge",
                     {"vni": 43, "bridgeName": "br_vx43", "localIp": "10.66.0.1"})
    assert not foreign["success"] and "10.66.0.1 is not an address" in foreign["error"]

    delete = {"vni": VNI, "bridgeName": "br_vx"}
    for _ in range(2):
        assert a.call("/network/l2vxlan/deletebridge", delete)["success"]
        assert a.link("br_vx") is None and a.link(f"vxlan{VNI}") is None


def _flood_peers(h: L2Host) -> list[str]:
    return sorted(e["dst"] for e in h.fdb(f"vxlan{VNI}") if e["mac"] == "00:00:00:00:00:00")
