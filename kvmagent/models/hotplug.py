"""Hot-plug commands on a running VM: data volumes, NICs, ISO media (ZStack's names)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath, Uuid
from kvmagent.models.vm import NicTO, VolumeTO


class VmDeviceCmd(AgentCommand):
    """ZStack sends ``vmUuid`` in most of these commands and ``vmInstanceUuid`` in some."""

    vm_uuid: Uuid = Field(validation_alias=AliasChoices("vmUuid", "vmInstanceUuid"))


class VolumeDeviceCmd(VmDeviceCmd):
    """``/vm/attachdatavolume``, ``/vm/detachdatavolume``."""

    volume: VolumeTO


class NicDeviceCmd(VmDeviceCmd):
    """``/vm/attachnic``, ``/vm/detachnic`` (a NIC is found by its MAC)."""

    nic: NicTO


class IsoTO(AgentCommand):
    iso_uuid: Uuid | None = Field(None, validation_alias=AliasChoices("isoUuid", "imageUuid"))
    path: AbsPath


class AttachIsoCmd(VmDeviceCmd):
    iso: IsoTO


class DetachIsoCmd(VmDeviceCmd):
    iso_uuid: Uuid | None = Field(None, validation_alias=AliasChoices("isoUuid", "imageUuid"))


class DeviceReply(AgentReply):
    """``device``: the disk target (vdb, hdc) or the NIC's MAC; ``unchanged``: the VM
    already was as asked (a repeated command), so nothing was done."""

    device: str = ""
    unchanged: bool = False
