"""L2 planning without root: names, device arguments, bridge/move/fdb/delete plans, models."""

import errno

import pytest
from pydantic import ValidationError
from pyroute2.netlink.exceptions import NetlinkError

from kvmagent.drivers.bridges import (
    FLOOD_MAC,
    Addr,
    L2Error,
    Link,
    Route,
    Step,
    alias_for,
    explain,
    plan_address_move,
    plan_bridge,
    plan_delete,
    plan_fdb,
    plan_vlan_device,
    plan_vxlan_device,
    vlan_device_args,
    vlan_device_name,
    vxlan_device_args,
    vxlan_device_name,
)
from kvmagent.models.l2 import (
    CheckPhysicalNetworkInterfaceCmd,
    CreateBridgeCmd,
    CreateVlanBridgeCmd,
    CreateVxlanBridgeCmd,
    PopulateVxlanFdbCmd,
)


def links(*items: Link) -> dict[str, Link]:
    return {ln.name: ln for ln in items}


ETH1 = Link("eth1", up=True)
BRIDGED_ETH1 = Link("eth1", master="br1", up=True)
BR1 = Link("br1", "bridge", up=True, alias=alias_for("eth1"))


# -- names and arguments --------------------------------------------------------------------


def test_vlan_device_name_is_iface_dot_vlan_when_it_fits():
    assert vlan_device_name("eth1", 10) == "eth1.10"
    assert vlan_device_name("enp0s31f6", 4094) == "enp0s31f6.4094"  # exactly 14


def test_long_vlan_device_names_are_cut_and_hashed_to_15_and_stay_distinct():
    a = vlan_device_name("enp129s0f1np1", 4094)
    b = vlan_device_name("enp129s0f1np2", 4094)
    assert len(a) == len(b) == 15 and a != b
    assert a.endswith(".4094") and a.startswith("enp129")
    assert vlan_device_name("enp129s0f1np1", 4094) == a  # deterministic
    assert len(vlan_device_name("x" * 15, 1)) == 15


def test_device_arguments():
    assert vlan_device_args("eth1", 10) == {"kind": "vlan", "link": "eth1", "vlan_id": 10}
    assert vxlan_device_name(16777215) == "vxlan16777215"
    assert vxlan_device_args(42, "10.0.0.1", 4789) == {
        "kind": "vxlan", "vxlan_id": 42, "vxlan_local": "10.0.0.1", "vxlan_port": 4789,
        "vxlan_learning": 0}


# -- bridges ------------------------------------------------------------------------------


def test_new_bridge_plan_creates_marks_enslaves_and_brings_up():
    assert plan_bridge(links(Link("eth1")), "br1", "eth1") == [
        Step("link_add", "br1", {"kind": "bridge"}),
        Step("link_set", "br1", {"ifalias": "zfleet-l2 uplink=eth1"}),
        Step("link_set", "eth1", {"master": "br1"}),
        Step("link_set", "br1", {"state": "up"}),
        Step("link_set", "eth1", {"state": "up"}),
    ]


def test_bridge_in_place_plans_nothing():
    assert plan_bridge(links(BRIDGED_ETH1, BR1, Link("vnet0", "tun", "br1")),
                       "br1", "eth1") == []


def test_bridge_made_elsewhere_with_only_vm_taps_is_adopted():
    plan = plan_bridge(links(ETH1, Link("br1", "bridge", up=True),
                             Link("vnet0", "tun", master="br1")), "br1", "eth1")
    assert plan == [Step("link_set", "br1", {"ifalias": alias_for("eth1")}),
                    Step("link_set", "eth1", {"master": "br1"})]


def test_bridge_with_another_uplink_is_refused_naming_both():
    state = links(ETH1, Link("eth2", master="br1", up=True),
                  Link("br1", "bridge", up=True, alias=alias_for("eth2")))
    with pytest.raises(L2Error, match=r"br1 already bridges eth2.*also bridge eth1"):
        plan_bridge(state, "br1", "eth1")


def test_unmarked_bridge_with_a_non_tap_port_is_refused():
    state = links(ETH1, Link("br1", "bridge"), Link("veth9", "veth", master="br1"))
    with pytest.raises(L2Error, match="br1 already bridges veth9"):
        plan_bridge(state, "br1", "eth1")


def test_marked_bridge_keeps_its_other_ports_and_a_gone_uplink_can_be_replaced():
    state = links(ETH1, Link("br1", "bridge", up=True, alias=alias_for("eth2")),
                  Link("dhcp-veth", "veth", master="br1"))  # eth2 is gone
    assert plan_bridge(state, "br1", "eth1") == [
        Step("link_set", "br1", {"ifalias": alias_for("eth1")}),
        Step("link_set", "eth1", {"master": "br1"})]


@pytest.mark.parametrize("state, error", [
    (links(Link("br1", "bridge")), "interface eth1 does not exist"),
    (links(Link("eth1", master="br9"), Link("br9", "bridge"), Link("br1", "bridge")),
     "eth1 is already a port of bridge br9"),
    (links(ETH1, Link("br1", "veth")), "br1 exists and is a veth link, not a bridge"),
    (links(Link("eth1", "bridge")), "eth1 is a bridge"),
])
def test_bridge_refusals(state, error):
    with pytest.raises(L2Error, match=error):
        plan_bridge(state, "br1", "eth1")


def test_address_move_adds_on_bridge_repoints_routes_then_removes_from_nic():
    addrs = [Addr("10.0.0.5", 24, "10.0.0.255"), Addr("10.0.1.5", 24)]
    default = Route("0.0.0.0", 0, gateway="10.0.0.1", priority=100)
    plan = plan_address_move("eth0", "br0", addrs, [Addr("10.0.1.5", 24)], [default])
    assert plan == [
        Step("addr_add", "br0", {"address": "10.0.0.5", "prefixlen": 24,
                                 "broadcast": "10.0.0.255"}),
        Step("route_replace", "br0", {"dst": "0.0.0.0", "dst_len": 0, "table": 254,
                                      "proto": 4, "scope": 0, "type": 1,
                                      "gateway": "10.0.0.1", "priority": 100}),
        Step("addr_del", "eth0", {"address": "10.0.0.5", "prefixlen": 24,
                                  "broadcast": "10.0.0.255"}),
        Step("addr_del", "eth0", {"address": "10.0.1.5", "prefixlen": 24}),
    ]
    assert plan_address_move("eth0", "br0", [], addrs, []) == []  # moved already


# -- VLAN ---------------------------------------------------------------------------------


def test_vlan_device_plan():
    assert plan_vlan_device(links(ETH1), "eth1", 10) == [
        Step("link_add", "eth1.10", {"kind": "vlan", "link": "eth1", "vlan_id": 10})]
    assert plan_vlan_device(
        links(ETH1, Link("eth1.10", "vlan", parent="eth1", vlan_id=10)), "eth1", 10) == []
    with pytest.raises(L2Error, match="eth1.10 exists but is not VLAN 10 on eth1"):
        plan_vlan_device(links(ETH1, Link("eth1.10", "vlan", parent="eth1", vlan_id=11)),
                         "eth1", 10)
    with pytest.raises(L2Error, match="physical interface eth7 does not exist"):
        plan_vlan_device(links(ETH1), "eth7", 10)


def test_kernel_without_8021q_is_explained():
    step = plan_vlan_device(links(ETH1), "eth1", 10)[0]
    message = str(explain(step, NetlinkError(errno.EOPNOTSUPP)))
    assert message.startswith("this host's kernel has no 802.1Q VLAN support (module 8021q)")
    assert "eth1.10 on eth1" in message
    other = str(explain(Step("link_add", "br1", {"kind": "bridge"}),
                         NetlinkError(errno.EEXIST)))
    assert other == "link_add br1 kind=bridge failed: File exists"


# -- VXLAN --------------------------------------------------------------------------------


def test_vxlan_device_plan_creates_keeps_or_replaces():
    add = Step("link_add", "vxlan42", vxlan_device_args(42, "10.0.0.5", 4789))
    assert plan_vxlan_device({}, 42, "10.0.0.5", 4789) == [add]
    same = Link("vxlan42", "vxlan", vni=42, local="10.0.0.5", port=4789, learning=False)
    assert plan_vxlan_device(links(same), 42, "10.0.0.5", 4789) == []
    moved = Link("vxlan42", "vxlan", vni=42, local="10.0.0.9", port=4789, learning=False)
    assert plan_vxlan_device(links(moved), 42, "10.0.0.5", 4789) == [
        Step("link_del", "vxlan42"), add]
    with pytest.raises(L2Error, match="vxlan42 exists and is a veth link"):
        plan_vxlan_device(links(Link("vxlan42", "veth")), 42, "10.0.0.5", 4789)


def test_fdb_converges_to_exactly_the_peers_and_never_to_itself():
    plan = plan_fdb("vxlan42", {"10.0.0.7", "10.0.0.9"},
                    ["10.0.0.10", "10.0.0.7", "10.0.0.5", "10.0.0.10"], local="10.0.0.5")
    assert plan == [Step("fdb_append", "vxlan42", {"lladdr": FLOOD_MAC, "dst": "10.0.0.10"}),
                    Step("fdb_del", "vxlan42", {"lladdr": FLOOD_MAC, "dst": "10.0.0.9"})]
    assert plan_fdb("vxlan42", {"10.0.0.7"}, ["10.0.0.7"], "10.0.0.5") == []
    assert [s.action for s in plan_fdb("vxlan42", {"10.0.0.7"}, [], None)] == ["fdb_del"]


# -- delete -------------------------------------------------------------------------------


def test_delete_takes_the_bridge_and_its_devices_of_the_kind_only():
    state = links(ETH1, Link("eth1.10", "vlan", master="br10", parent="eth1", vlan_id=10),
                  Link("br10", "bridge", alias=alias_for("eth1.10")),
                  Link("vnet0", "tun", master="br10"))
    assert plan_delete(state, "br10", "vlan", ["eth1.10"]) == [
        Step("link_del", "br10"), Step("link_del", "eth1.10")]
    assert plan_delete({}, "br10", "vlan", ["eth1.10"]) == []  # already gone
    left = links(Link("eth1.10", "vlan", parent="eth1", vlan_id=10))  # bridge gone, device not
    assert plan_delete(left, "br10", "vlan", ["eth1.10"]) == [Step("link_del", "eth1.10")]


def test_delete_refuses_a_bridge_on_a_nic_or_a_link_that_is_no_bridge():
    with pytest.raises(L2Error, match="br1 bridges eth1, a physical link, not a vxlan"):
        plan_delete(links(BRIDGED_ETH1, BR1), "br1", "vxlan", ["vxlan42"])
    with pytest.raises(L2Error, match="eth1 is a physical link, not a bridge"):
        plan_delete(links(ETH1), "eth1", "vlan")


# -- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model, body, field", [
    (CreateBridgeCmd, {"physicalInterfaceName": "eth1; reboot", "bridgeName": "br1"},
     "physicalInterfaceName"),
    (CreateBridgeCmd, {"physicalInterfaceName": "eth1", "bridgeName": "b" * 16}, "bridgeName"),
    (CreateBridgeCmd, {"physicalInterfaceName": "eth1", "bridgeName": "eth1"}, "bridgeName"),
    (CreateVlanBridgeCmd, {"physicalInterfaceName": "eth1", "bridgeName": "br1",
                           "vlan": 4095}, "vlan"),
    (CreateVlanBridgeCmd, {"physicalInterfaceName": "eth1", "bridgeName": "br1",
                           "vlan": "10"}, "vlan"),
    (CreateVxlanBridgeCmd, {"vni": 16777216, "bridgeName": "br1", "localIp": "10.0.0.1"},
     "vni"),
    (CreateVxlanBridgeCmd, {"vni": 1, "bridgeName": "br1", "localIp": "10.0.0.1",
                            "peers": ["10.0.0.300"]}, "peers"),
    (PopulateVxlanFdbCmd, {"vni": 0, "peers": []}, "vni"),
    (CheckPhysicalNetworkInterfaceCmd, {"interfaceNames": ["eth0", "a\nb"]}, "interfaceNames"),
])
def test_bad_input_is_refused_naming_the_field(model, body, field):
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert field in str(info.value)


def test_vxlan_command_defaults_and_zstack_spellings():
    cmd = CreateVxlanBridgeCmd.model_validate({"vni": 42, "bridgeName": "br42",
                                               "vtepIp": "10.0.0.1", "dstport": 8472})
    assert (cmd.local_ip, cmd.dst_port, cmd.peers) == ("10.0.0.1", 8472, [])
    assert CreateVxlanBridgeCmd.model_validate(
        {"vni": 42, "bridgeName": "br42", "localIp": "10.0.0.1"}).dst_port == 4789
