"""Flat network provider user data commands (ZStack's ``/flatnetworkprovider/userdata/*``).

The metadata service of an L3 lives in its DHCP namespace, so every command names that
namespace; a VM is known by its IP (the service tells VMs apart by source address).
User data beyond :data:`MAX_USERDATA_BYTES` is refused naming the field, nothing written.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, field_validator

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import IPv4, LinkName, MacAddress, Port, SafeName
from kvmagent.models.dhcp import Hostname

MAX_USERDATA_BYTES = 64 * 1024
"""EC2's own limit is 16 KiB; cloud-config with embedded files needs more."""


class VmMetadata(AgentCommand):
    vm_uuid: SafeName
    vm_hostname: Hostname = ""


class UserdataTO(AgentCommand):
    """One VM NIC's metadata and user data (ZStack's UserdataTO)."""

    bridge_name: LinkName
    namespace_name: SafeName
    vm_ip: IPv4
    metadata: VmMetadata
    userdata: str | None = None
    ssh_key: str | None = Field(None, max_length=16 * 1024,
                                description="the public key of the `sshkey::` system tag")
    vm_mac: MacAddress | None = Field(
        None, description="zfleet: the NIC's MAC (default: the DHCP entry of vmIp)")
    dhcp_server_ip: IPv4 | None = None
    port: Port = 80

    @field_validator("userdata")
    @classmethod
    def _limit(cls, v: str | None) -> str | None:
        if v is not None and len(v.encode()) > MAX_USERDATA_BYTES:
            raise ValueError(f"user data is {len(v.encode())} bytes, more than the "
                             f"{MAX_USERDATA_BYTES} allowed")
        return v

    @field_validator("ssh_key")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and "\n" in v.strip():
            raise ValueError("an ssh public key is one line")
        return v.strip() if v else v


class ApplyUserdataCmd(AgentCommand):
    userdata: UserdataTO


class BatchApplyUserdataCmd(AgentCommand):
    userdata: list[UserdataTO] = []
    rebuild: StrictBool = Field(False, description="each namespace named serves exactly these VMs")


class ReleaseUserdataCmd(AgentCommand):
    bridge_name: LinkName | None = None
    namespace_name: SafeName
    vm_ip: IPv4


class CleanupUserdataCmd(AgentCommand):
    bridge_name: LinkName | None = None
    namespace_name: SafeName


class UserdataReply(AgentReply):
    server_pids: dict[str, int] = Field({}, description="namespace -> metadata server pid")
