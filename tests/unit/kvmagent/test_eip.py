"""Distributed EIP without root: the command model's checks, names and rules."""

import uuid

import pytest
from pydantic import ValidationError

from agentlib.agent import validation_message
from kvmagent.drivers.eip import ebtables_rules, names, nat_rules
from kvmagent.models.eip import ApplyEipCmd, DeleteEipCmd, EipTO

UUID = "5f33f31e65d45f39" * 2
GOOD = {"eipUuid": UUID, "vip": "172.31.250.10", "vipNetmask": "255.255.255.0",
        "vipGateway": "172.31.250.1", "nicName": "vnic1.0", "nicIp": "10.0.0.5",
        "nicMac": "52:54:00:AA:00:05", "nicGateway": "10.0.0.1", "nicNetmask": "255.255.255.0",
        "publicBridgeName": "br_eth2", "vmBridgeName": "br_eth1"}


def error_of(**change) -> str:
    with pytest.raises(ValidationError) as exc:
        ApplyEipCmd.model_validate({"eip": {**GOOD, **change}})
    return validation_message(exc.value)


@pytest.mark.parametrize("field, value, says", [
    ("vip", "172.31.250.256", "not a valid IPv4"),
    ("vip", "172.31.250.255", "not a host address of 172.31.250.0/24"),
    ("vipGateway", "172.31.251.1", "not another host of 172.31.250.0/24"),
    ("vipGateway", "172.31.250.10", "not another host"),
    ("vipNetmask", "255.0.255.0", "not a valid IPv4 netmask"),
    ("nicMac", "52:54:00:aa:00", "not a valid MAC address"),
    ("nicIp", "10.0.1.5", "not a VM address of 10.0.0.0/24"),
    ("nicIp", "10.0.0.1", "not a VM address"),
    ("nicIp", "10.0.0.255", "not a host address"),
    ("nicGateway", "10.0.0.0", "not a host address"),
    ("nicName", "vnic-name-16char", "at most 15 characters"),
    ("publicBridgeName", "br\nx", "not a valid link name"),
    ("eipUuid", "../../etc", "not a valid uuid"),
])
def test_bad_fields_are_named(field, value, says):
    msg = error_of(**{field: value})
    assert msg.startswith(f"eip.{field}: ") and says in msg, msg


def test_uuid_forms_and_mac_case_are_canonical():
    dashed = str(uuid.UUID(UUID))
    eip = EipTO.model_validate({**GOOD, "eipUuid": dashed.upper()})
    assert eip.eip_uuid == UUID and eip.nic_mac == "52:54:00:aa:00:05"
    assert DeleteEipCmd.model_validate({"eip": GOOD}).eip.eip_uuid == UUID  # extra ignored
    assert names(dashed) == names(UUID)


def test_names_fit_the_kernel_and_macs_are_local_unicast():
    n, other = names(UUID), names(uuid.uuid4().hex)
    assert n.netns == f"eip-{UUID}"
    assert all(len(link) <= 15 for link in (n.public_outer, n.private_outer))
    assert {n.public_outer, n.private_outer}.isdisjoint({other.public_outer,
                                                         other.private_outer})
    for mac in (n.public_mac, n.gateway_mac):
        assert int(mac[:2], 16) & 0b11 == 0b10  # locally administered, unicast
    assert n.public_mac != n.gateway_mac and n.gateway_mac != other.gateway_mac
    assert len({c.name for c in n.chains if c.table == "filter"}) == 3


def test_rules_isolate_the_namespace_and_answer_only_its_vm():
    eip = EipTO.model_validate(GOOD)
    n = names(UUID)
    rules = ebtables_rules(n, eip)
    assert rules[n.forward] == [f"-i {n.private_outer} -o ! vnic1.0 -j DROP",
                                f"-i ! vnic1.0 -o {n.private_outer} -j DROP"]
    assert rules[n.arpreply] == [
        f"-p ARP -i vnic1.0 --arp-op Request --arp-ip-dst 10.0.0.1 -j arpreply "
        f"--arpreply-mac {n.gateway_mac}"]
    assert nat_rules(eip) == [
        "-A PREROUTING -d 172.31.250.10/32 -j DNAT --to-destination 10.0.0.5",
        "-A POSTROUTING -s 10.0.0.5/32 -j SNAT --to-source 172.31.250.10"]
