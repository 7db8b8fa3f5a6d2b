"""Flat network provider DHCP commands (ZStack's ``/flatnetworkprovider/dhcp/*`` fields).

Every value here ends up in a dnsmasq file or on a command line, so the models refuse
what would corrupt them (a hostname with a newline, comma or space; a MAC or IP that does
not parse) with a 400 naming the field, before anything is written. What needs the
host's state (an IP outside the network its namespace serves) is refused by
:meth:`kvmagent.drivers.dhcp.FlatDhcp.group`, also naming the field.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import IPv4, LinkName, Netmask, SafeName

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
IPV4_PATTERN = rf"^{_OCTET}(\.{_OCTET}){{3}}$"
MAC_PATTERN = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
HOSTNAME_PATTERN = rf"^({_LABEL}(\.{_LABEL})*)?$"
_PATTERN_ERRORS = {
    IPV4_PATTERN: "not a valid IPv4 address",
    MAC_PATTERN: "not a valid MAC address",
    HOSTNAME_PATTERN: "not a valid hostname (letters, digits, '-' and '.' only)",
}

# Entry fields are checked by pydantic's own regexes, with no Python call per field: a
# 10,000-entry batch validates in ~30 ms instead of ~80 (BulkCommand words the errors).
EntryIPv4 = Annotated[str, StringConstraints(pattern=IPV4_PATTERN)]
EntryMac = Annotated[str, StringConstraints(pattern=MAC_PATTERN, to_lower=True)]
Hostname = Annotated[str, StringConstraints(max_length=253, pattern=HOSTNAME_PATTERN)]
"""A DNS host name ('' = none): it is written as one field of a dnsmasq hosts line."""


@functools.lru_cache(maxsize=256)
def ip_int(address: str) -> int:
    """An IPv4 address (or netmask) as an integer: batches compare thousands, and
    ``ipaddress`` objects cost ~10x more."""
    return int.from_bytes(socket.inet_aton(address), "big")


class BulkCommand(AgentCommand):
    """A command carrying entries: pattern errors of their fields are reworded as the
    shared field types word theirs ("not a valid MAC address: '...'")."""

    @model_validator(mode="wrap")
    @classmethod
    def _worded(cls, data, handler):
        try:
            return handler(data)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                exc.title, [_worded(e) for e in exc.errors()]) from None


def _worded(err) -> InitErrorDetails:
    pattern = (err.get("ctx") or {}).get("pattern")
    if err["type"] == "string_pattern_mismatch" and pattern in _PATTERN_ERRORS:
        message = f"{_PATTERN_ERRORS[pattern]}: {err['input']!r}"
    else:
        message = err["msg"]
    kind = PydanticCustomError(err["type"], message)  # no context: used as it is
    return {"type": kind, "loc": err["loc"], "input": err["input"]}


class PrepareDhcpCmd(AgentCommand):
    """``prepare``: the L3's DHCP namespace on ``bridgeName``, serving as ``dhcpServerIp``."""

    bridge_name: LinkName
    namespace_name: SafeName
    dhcp_netmask: Netmask
    dhcp_server_ip: IPv4
    physical_interface: LinkName | None = Field(
        None, description="zfleet: the bridge's uplink, where neighbour hosts' DHCP is cut "
        "off (default: the L2 agent's record on the bridge, else ZStack's br_<nic> naming, "
        "else the bridge's only physical-looking port)")

    @field_validator("dhcp_netmask")
    @classmethod
    def _dotted(cls, v: str) -> str:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{v}").netmask)  # "24" -> 255.255.255.0

    @field_validator("dhcp_server_ip")
    @classmethod
    def _host_address(cls, v: str, info: ValidationInfo) -> str:
        if "dhcp_netmask" in info.data:
            net = ipaddress.IPv4Network(f"{v}/{info.data['dhcp_netmask']}", strict=False)
            if net.prefixlen < 31 and v in (str(net.network_address),
                                            str(net.broadcast_address)):
                raise ValueError(f"{v} is not a host address of {net}")
        return v


class DhcpEntry(AgentCommand):
    """One VM NIC's static lease (ZStack's DhcpInfo)."""

    namespace_name: SafeName
    bridge_name: LinkName
    mac: EntryMac
    ip: EntryIPv4
    netmask: Netmask
    hostname: Hostname = ""
    gateway: EntryIPv4 | None = None
    dns: list[EntryIPv4] = []
    dns_domain: Hostname = ""
    is_default_l3_network: StrictBool = Field(
        True, description="only the VM's default L3 gives it a default route and DNS")


class DhcpEntryRef(AgentCommand):
    """What ``release`` needs of an entry (ZStack sends the whole DhcpInfo)."""

    namespace_name: SafeName
    mac: EntryMac


class ApplyDhcpCmd(BulkCommand):
    """``apply``/``batchApply``: add or replace entries (``rebuild``: exactly these)."""

    dhcp: list[DhcpEntry] = []
    rebuild: StrictBool = False


class BatchApplyDhcpCmd(ApplyDhcpCmd):
    dhcp_infos: list[ApplyDhcpCmd] = Field(
        [], description="ZStack's batch shape: several apply commands in one")


class ReleaseDhcpCmd(BulkCommand):
    dhcp: list[DhcpEntryRef] = []


class ConvergeDhcpCmd(BulkCommand):
    """``connect``: every DHCP namespace on this host serves exactly ``dhcp``."""

    dhcp: list[DhcpEntry] = []


class FlushDhcpCmd(ConvergeDhcpCmd):
    """``flush``: the namespaces named (``namespaceName`` and those of ``dhcp``) serve
    exactly ``dhcp``; without entries the namespace serves nothing (ZStack's flush)."""

    namespace_name: SafeName | None = None
    bridge_name: LinkName | None = None


class ResetDefaultGatewayCmd(BulkCommand):
    """A VM's default L3 changed: the NIC of the old one stops giving it a default route,
    the NIC of the new one starts."""

    namespace_name_of_gateway_to_remove: SafeName | None = None
    mac_of_gateway_to_remove: EntryMac | None = None
    gateway_to_remove: IPv4 | None = None
    bridge_name_of_gateway_to_remove: LinkName | None = None
    namespace_name_of_gateway_to_add: SafeName | None = None
    mac_of_gateway_to_add: EntryMac | None = None
    gateway_to_add: IPv4 | None = None
    bridge_name_of_gateway_to_add: LinkName | None = None

    @model_validator(mode="after")
    def _pairs(self):
        for side in ("remove", "add"):
            ns = getattr(self, f"namespace_name_of_gateway_to_{side}")
            mac = getattr(self, f"mac_of_gateway_to_{side}")
            if bool(ns) != bool(mac):
                raise ValueError(f"namespaceNameOfGatewayTo{side.title()} and "
                                 f"macOfGatewayTo{side.title()} go together")
        return self


class DeleteNamespaceCmd(AgentCommand):
    namespace_name: SafeName
    bridge_name: LinkName | None = None


Reload = Literal["none", "reload", "restart", "start"]


class NamespaceStatus(BaseModel):
    """One DHCP namespace after a command: how dnsmasq took the change."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    entries: int = 0
    reload: Reload = "none"
    dnsmasq_pid: int | None = None


class DhcpReply(AgentReply):
    namespaces: dict[str, NamespaceStatus] = {}


class PrepareDhcpReply(AgentReply, NamespaceStatus):
    namespace_name: str = ""
    inner_interface: str = ""
    outer_interface: str = ""
    uplink: str = ""
