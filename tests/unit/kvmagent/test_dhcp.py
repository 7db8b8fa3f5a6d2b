"""Distributed DHCP without root: models, names, merging, dnsmasq files, checks."""

import json
import socket

import pytest
from pydantic import ValidationError

from agentlib.agent import validation_message
from agentlib.errors import AgentError
from kvmagent.drivers.dhcp import FlatDhcp, State, learn, merge, names, uplink_rules
from kvmagent.drivers.dnsmasq import Dnsmasq, DnsmasqError, L3Options, Lease, release_packet
from kvmagent.models.dhcp import (
    BatchApplyDhcpCmd,
    DhcpEntry,
    PrepareDhcpCmd,
    ResetDefaultGatewayCmd,
)

NS = "br_eth1_" + "ab" * 16


def entry(mac="52:54:00:00:00:01", ip="10.0.0.11", **kw) -> DhcpEntry:
    return DhcpEntry.model_validate({
        "namespaceName": NS, "bridgeName": "br_eth1", "mac": mac, "ip": ip,
        "netmask": "255.255.255.0", "gateway": "10.0.0.1", "dns": ["10.0.0.53"], **kw})


def error_of(model, body) -> str:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(body)
    return validation_message(exc.value)


def test_names_are_short_stable_and_distinct():
    outer, inner, chain = names(NS)
    assert (outer, inner, chain) == names(NS)
    assert len(outer) <= 15 and len(inner) <= 15 and outer != inner
    assert chain.startswith("ZD-") and names(NS + "x")[0] != outer


@pytest.mark.parametrize("field,value,words", [
    ("hostname", "vm1\nx", "not a valid hostname"),
    ("hostname", "vm1,10.0.0.9", "not a valid hostname"),
    ("hostname", "vm 1", "not a valid hostname"),
    ("mac", "52:54:00:00:00", "not a valid MAC address"),
    ("ip", "10.0.0.256", "not a valid IPv4 address"),
    ("dns", ["10.0.0.53", "x"], "not a valid IPv4 address"),
    ("netmask", "255.0.255.0", "not a valid IPv4 netmask"),
    ("namespaceName", "a/b", "not a valid name"),
])
def test_bad_entries_are_refused_naming_the_field(field, value, words):
    good = entry().model_dump(by_alias=True)
    message = error_of(BatchApplyDhcpCmd, {"dhcp": [good, {**good, field: value}]})
    assert message.startswith(f"dhcp.1.{field}") and words in message


def test_models_normalise_what_they_accept():
    assert entry(mac="52:54:00:AB:CD:EF").mac == "52:54:00:ab:cd:ef"
    assert entry(hostname="").hostname == ""
    cmd = PrepareDhcpCmd(bridge_name="br0", namespace_name=NS, dhcp_server_ip="10.0.0.2",
                         dhcp_netmask="24")
    assert cmd.dhcp_netmask == "255.255.255.0"
    body = {"bridgeName": "br0", "namespaceName": NS, "dhcpServerIp": "10.0.0.0",
            "dhcpNetmask": "255.255.255.0"}
    assert "dhcpServerIp: 10.0.0.0 is not a host address" in error_of(PrepareDhcpCmd, body)
    assert "go together" in error_of(ResetDefaultGatewayCmd,
                                     {"namespaceNameOfGatewayToAdd": NS})


def test_merge_replaces_by_mac_and_moves_ips():
    current = [Lease("m1", "10.0.0.11", "a"), Lease("m2", "10.0.0.12", "b")]
    merged = merge(current, [entry("52:54:00:00:00:03", "10.0.0.12", hostname="c")])
    assert list(merged.values()) == [Lease("m1", "10.0.0.11", "a"),
                                     Lease("52:54:00:00:00:03", "10.0.0.12", "c")]
    remapped = merge(merged.values(), [entry("52:54:00:00:00:03", "10.0.0.13")])
    assert remapped["52:54:00:00:00:03"] == Lease("52:54:00:00:00:03", "10.0.0.13", "")
    # the moved IP is free again: another MAC may take it in the same command
    both = merge(current, [entry("52:54:00:00:00:01", "10.0.0.12"),
                           entry("52:54:00:00:00:02", "10.0.0.11")])
    assert {x.ip for x in both.values()} == {"10.0.0.11", "10.0.0.12"}


def test_learn_takes_options_from_default_entries_only():
    st = State(NS, "br_eth1", "10.0.0.2", "255.255.255.0", "eth1", non_default=["m9"])
    new = learn(st, [entry("52:54:00:00:00:01", is_default_l3_network=False),
                     entry("52:54:00:00:00:02", gateway="10.0.0.254", dns=[])])
    assert new.gateway == "10.0.0.254" and new.dns == []
    assert new.non_default == ["52:54:00:00:00:01", "m9"]
    assert learn(new, [entry("52:54:00:00:00:01")]).non_default == ["m9"]


def test_dnsmasq_conf_keeps_router_and_dns_from_non_default_nics(tmp_path):
    dm = Dnsmasq(tmp_path, NS)
    conf = dm.render_conf("zdi1", "10.0.0.2/24", L3Options("10.0.0.1", ("10.0.0.53",), "x.y"),
                          ["52:54:00:00:00:07"])
    lines = conf.splitlines()
    assert "dhcp-range=10.0.0.0,static,255.255.255.0,infinite" in lines
    assert "dhcp-ignore=tag:!known" in lines and "interface=zdi1" in lines
    assert "dhcp-option=tag:!nondefault,option:router,10.0.0.1" in lines
    assert "dhcp-option=tag:nondefault,option:router" in lines  # else dnsmasq offers itself
    assert "dhcp-option=tag:!nondefault,option:dns-server,10.0.0.53" in lines
    assert "dhcp-option=tag:!nondefault,option:domain-name,x.y" in lines
    assert "dhcp-mac=set:nondefault,52:54:00:00:00:07" in lines
    assert f"dhcp-hostsfile={dm.hosts}" in lines and f"pid-file={dm.pid_file}" in lines
    bare = dm.render_conf("zdi1", "10.0.0.2/24", L3Options(), [])
    assert "dhcp-option=tag:!nondefault,option:router" in bare.splitlines()
    assert "dns-server" not in bare and "dhcp-mac" not in bare


def test_hosts_file_lines_carry_no_tags_and_are_cached(tmp_path):
    dm = Dnsmasq(tmp_path, NS)
    leases = [Lease("52:54:00:00:00:01", "10.0.0.11", "vm1"),
              Lease("52:54:00:00:00:02", "10.0.0.12")]
    assert dm.write_hosts(leases) and not dm.write_hosts(list(leases))
    assert dm.hosts.read_text() == ("52:54:00:00:00:01,10.0.0.11,vm1,infinite\n"
                                    "52:54:00:00:00:02,10.0.0.12,infinite\n")
    assert dm.hosts.stat().st_mode & 0o777 == 0o644  # dnsmasq reads it as nobody
    assert dm.read_hosts() == leases
    dm.hosts.write_text("52:54:00:00:00:03,10.0.0.13,x,infinite\n")  # changed by hand
    assert dm.read_hosts() == [Lease("52:54:00:00:00:03", "10.0.0.13", "x")]


def test_dnsmasq_refuses_to_start_where_nobody_cannot_read(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    dm = Dnsmasq(private / "ns", NS)
    dm.dir.mkdir()
    with pytest.raises(DnsmasqError, match="chmod o\\+x"):
        dm.start()


def test_release_packet_is_a_dhcprelease_from_the_client():
    pkt = release_packet("10.0.0.2", Lease("52:54:00:ab:cd:ef", "10.0.0.11"))
    assert pkt[0] == 1 and pkt[12:16] == socket.inet_aton("10.0.0.11")  # op, ciaddr
    assert pkt[28:34] == bytes.fromhex("525400abcdef")  # chaddr
    assert pkt[236:240] == bytes([99, 130, 83, 99])  # magic cookie
    assert pkt[240:] == bytes([53, 1, 7, 54, 4]) + socket.inet_aton("10.0.0.2") + b"\xff"


def test_uplink_rules_cut_dhcp_and_arp_for_the_server_both_ways():
    rules = uplink_rules("eth1", "10.0.0.2")
    assert "-p IPv4 -i eth1 --ip-proto udp --ip-sport 67:68 -j DROP" in rules
    assert "-p IPv4 -o eth1 --ip-proto udp --ip-sport 67:68 -j DROP" in rules
    assert sum("--arp-ip-dst 10.0.0.2" in r for r in rules) == 2
    assert sum("--arp-ip-src 10.0.0.2" in r for r in rules) == 2


def test_group_checks_entries_against_the_prepared_namespace(tmp_path):
    dhcp = FlatDhcp(tmp_path)
    st = State(NS, "br_eth1", "10.0.0.2", "255.255.255.0", "eth1")
    (tmp_path / "dhcp" / NS).mkdir(parents=True)
    (tmp_path / "dhcp" / NS / "state.json").write_text(json.dumps(st.__dict__))
    groups = dhcp.group([entry(), entry("52:54:00:00:00:02", "10.0.0.12")])
    assert [e.ip for e in groups[NS]] == ["10.0.0.11", "10.0.0.12"]

    def refused(*entries) -> str:
        with pytest.raises(AgentError) as exc:
            dhcp.group(entries)
        return str(exc.value)

    assert refused(entry(), entry(ip="10.0.1.11")).startswith("dhcp.1.ip: 10.0.1.11 is not")
    assert refused(entry(ip="10.0.0.2")).startswith("dhcp.0.ip")
    assert refused(entry(), entry("52:54:00:00:00:02")).startswith(
        "dhcp.1.ip: 10.0.0.11 is also given to 52:54:00:00:00:01")
    assert refused(entry(bridgeName="br0")).startswith("dhcp.0.bridgeName")
    assert refused(entry(namespaceName="other")).startswith("dhcp.0.namespaceName")
    assert refused(entry(), entry("52:54:00:00:00:02", "10.0.0.12", gateway="10.0.0.9")
                   ).startswith("dhcp.1.gateway: the default-L3 entries")
    assert refused(entry(netmask="255.0.0.0", gateway="10.9.9.9")).startswith(
        "dhcp.0.gateway: 10.9.9.9 is not in 10.0.0.0/24")
