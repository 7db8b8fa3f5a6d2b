"""VM lifecycle commands and replies (ZStack's StartVmCmd and friends)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, model_validator

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import (
    AbsPath,
    DisplayName,
    LinkName,
    MacAddress,
    Port,
    SafeName,
    Timeout,
    Uuid,
    VolumePath,
)
from kvmagent.config import CacheMode, ConsoleMode, CpuMode

VmState = Literal["Running", "Stopped", "Paused", "Crashed", "Unknown"]


class MonInfo(AgentCommand):
    hostname: SafeName
    port: Port = 6789


class VolumeTO(AgentCommand):
    """A volume to attach: a qcow2/raw file, or a Ceph RBD image."""

    volume_uuid: Uuid
    install_path: VolumePath
    device_id: int = Field(ge=0, le=25)
    device_type: Literal["file", "ceph"] = "file"
    format: Literal["qcow2", "raw"] = "qcow2"
    use_virtio: StrictBool = True
    cache_mode: CacheMode | None = None
    secret_uuid: Uuid | None = None  # ceph: the libvirt secret from /vm/createcephsecret
    mon_info: list[MonInfo] = []  # ceph: the mons qemu connects to

    @model_validator(mode="after")
    def _matches_type(self):
        if self.device_type == "ceph" and not self.install_path.startswith("ceph://"):
            raise ValueError("installPath: a ceph volume needs a ceph://<pool>/<image> path")
        if self.device_type == "file" and self.install_path.startswith("ceph://"):
            raise ValueError("deviceType: a ceph:// installPath needs deviceType 'ceph'")
        if self.device_type == "ceph" and not self.mon_info:
            raise ValueError("monInfo: a ceph volume needs at least one mon")
        return self


class NicTO(AgentCommand):
    uuid: Uuid
    mac: MacAddress
    bridge_name: LinkName
    device_id: int = Field(ge=0, le=63)
    nic_internal_name: LinkName | None = None  # the host-side tap device name
    model: Literal["virtio", "e1000", "rtl8139"] = "virtio"


class StartVmCmd(AgentCommand):
    vm_instance_uuid: Uuid
    vm_name: DisplayName
    memory: int = Field(gt=0, description="bytes")
    cpu_num: int = Field(ge=1, le=256)
    cpu_speed: int = Field(0, ge=0, description="MHz (informational)")
    socket_num: int | None = Field(None, ge=1)
    cpu_on_socket: int | None = Field(None, ge=1)
    boot_dev: list[Literal["hd", "cdrom"]] = ["hd"]
    root_volume: VolumeTO
    data_volumes: list[VolumeTO] = []
    iso_path: AbsPath | None = None
    nics: list[NicTO] = []
    timeout: Timeout = Field(300, description="seconds")
    console_password: DisplayName | None = Field(None, max_length=64)
    console_mode: ConsoleMode | None = None
    cpu_mode: CpuMode | None = None
    cache_mode: CacheMode | None = None
    # zfleet extension: direct kernel boot (the test guests boot this way)
    boot_kernel: AbsPath | None = None
    boot_initrd: AbsPath | None = None
    boot_cmdline: DisplayName | None = Field(None, max_length=1024)

    @model_validator(mode="after")
    def _consistent(self):
        if self.memory % (1 << 20):
            raise ValueError(f"memory: {self.memory} bytes is not a whole number of MiB "
                             "(libvirt would round it up)")
        if (self.socket_num is None) != (self.cpu_on_socket is None):
            raise ValueError("socketNum and cpuOnSocket go together")
        if self.socket_num and self.socket_num * self.cpu_on_socket != self.cpu_num:
            raise ValueError(f"cpuNum: {self.cpu_num} != socketNum {self.socket_num} x "
                             f"cpuOnSocket {self.cpu_on_socket}")
        ids = [v.device_id for v in [self.root_volume, *self.data_volumes]]
        if len(ids) != len(set(ids)):
            raise ValueError(f"dataVolumes: deviceId values repeat: {sorted(ids)}")
        macs = [n.mac.lower() for n in self.nics]
        if len(macs) != len(set(macs)):
            raise ValueError("nics: MAC addresses repeat")
        if self.boot_initrd and not self.boot_kernel:
            raise ValueError("bootInitrd needs bootKernel")
        return self


class StartVmReply(AgentReply):
    vm_state: VmState = "Running"
    already_running: bool = False


class VmCmd(AgentCommand):
    """stop, reboot, destroy, pause, resume: one VM by uuid."""

    uuid: Uuid
    timeout: Timeout | None = Field(None, description="seconds for a graceful stop")


class VmStateReply(AgentReply):
    vm_state: VmState


class VmSyncReply(AgentReply):
    states: dict[str, VmState]


class CheckVmStateCmd(AgentCommand):
    vm_uuids: list[Uuid]
    host_uuid: Uuid | None = None


class CheckVmStateReply(AgentReply):
    states: dict[str, VmState]


class GetVncPortCmd(AgentCommand):
    vm_uuid: Uuid


class GetVncPortReply(AgentReply):
    port: int
    protocol: ConsoleMode
    host_ip: str
