"""Hot-plug on running VMs: data volumes, NICs, and ISO media (seed 1.0, "ISO API").

Each command holds the VM's lock (as lifecycle commands do), checks on this host what
the model cannot (the volume file, the bridge, the ISO file exist), and is idempotent:
attaching what is attached, or detaching what is not, succeeds and says ``unchanged``.
They are async as in ZStack's agent: a detach waits for the guest to let go.

Boot order (ZStack's SetVmBootOrder, "调整VM启动顺序") needs no endpoint here: it takes
effect at the next boot, zfleet domains are transient, and the coordinator sends the
whole order as ``bootDev`` in every ``/vm/start`` (``vmspec.domain_for`` turns it into
per-device ``<boot order>``). A VM that should be able to take an ISO later must be
started with a cdrom: ``bootDev`` containing "cdrom" gives it an empty drive, since an
IDE cdrom cannot be hot-plugged on the i440fx machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from agentlib.agent import Agent
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.devices import DeviceDriver
from kvmagent.drivers.vms import VmDriver
from kvmagent.handlers.localstorage import STATE_FILE
from kvmagent.hostchecks import VmFiles, require_bridge, require_file
from kvmagent.models.hotplug import (
    AttachIsoCmd,
    DetachIsoCmd,
    DeviceReply,
    NicDeviceCmd,
    VolumeDeviceCmd,
)
from kvmagent.vmspec import CDROM_TARGET, nic_device, volume_disk

log = logging.getLogger(__name__)


def register(agent: Agent, vms: VmDriver, cfg: KvmAgentConfig) -> None:
    devices = DeviceDriver(vms)
    files = VmFiles(Path(cfg.data_dir) / STATE_FILE, cfg.image_roots)

    def check_volume(cmd: VolumeDeviceCmd) -> None:
        if cmd.volume.device_type == "file":
            files.volume("volume.installPath", cmd.volume.install_path)

    def lock(vm_uuid: str):
        return agent.locks.hold(f"vm:{vm_uuid}")

    @agent.async_("/vm/attachdatavolume", check=check_volume)
    def attach_data_volume(cmd: VolumeDeviceCmd) -> DeviceReply:
        """Plug a data volume (file or Ceph) into a running VM at the target its
        deviceId names (1 = vdb); already there = success."""
        if cmd.volume.device_type == "file":
            require_file("volume.installPath", cmd.volume.install_path)
        disk = volume_disk(cmd.volume, cfg.cache_mode)
        with lock(cmd.vm_uuid):
            attached = devices.attach_disk(cmd.vm_uuid, disk)
        return DeviceReply(device=disk.target, unchanged=not attached)

    @agent.async_("/vm/detachdatavolume")
    def detach_data_volume(cmd: VolumeDeviceCmd) -> DeviceReply:
        """Unplug a data volume and wait until the guest released it; not attached =
        success."""
        disk = volume_disk(cmd.volume, cfg.cache_mode)
        with lock(cmd.vm_uuid):
            target = devices.detach_disk(cmd.vm_uuid, disk)
        return DeviceReply(device=target or "", unchanged=target is None)

    @agent.async_("/vm/attachnic")
    def attach_nic(cmd: NicDeviceCmd) -> DeviceReply:
        """Plug a NIC into a running VM on its bridge; a NIC with that MAC already
        there = success."""
        require_bridge("nic.bridgeName", cmd.nic.bridge_name)
        with lock(cmd.vm_uuid):
            attached = devices.attach_nic(cmd.vm_uuid, nic_device(cmd.nic))
        return DeviceReply(device=cmd.nic.mac.lower(), unchanged=not attached)

    @agent.async_("/vm/detachnic")
    def detach_nic(cmd: NicDeviceCmd) -> DeviceReply:
        """Unplug the NIC with the given MAC and wait until it is gone; none = success."""
        with lock(cmd.vm_uuid):
            detached = devices.detach_nic(cmd.vm_uuid, cmd.nic.mac)
        return DeviceReply(device=cmd.nic.mac.lower(), unchanged=not detached)

    @agent.async_("/vm/iso/attach", check=lambda cmd: files.readable("iso.path", cmd.iso.path))
    def attach_iso(cmd: AttachIsoCmd) -> DeviceReply:
        """Put an ISO into the VM's cdrom drive (which it must have been started with)."""
        require_file("iso.path", cmd.iso.path)
        with lock(cmd.vm_uuid):
            changed = devices.change_media(cmd.vm_uuid, CDROM_TARGET, cmd.iso.path)
        log.info("vm %s: iso %s (%s) in %s%s", cmd.vm_uuid, cmd.iso.iso_uuid, cmd.iso.path,
                 CDROM_TARGET, "" if changed else " already")
        return DeviceReply(device=CDROM_TARGET, unchanged=not changed)

    @agent.async_("/vm/iso/detach")
    def detach_iso(cmd: DetachIsoCmd) -> DeviceReply:
        """Eject the VM's cdrom media (the drive stays, empty); already empty = success."""
        with lock(cmd.vm_uuid):
            changed = devices.change_media(cmd.vm_uuid, CDROM_TARGET, None)
        log.info("vm %s: iso %s ejected from %s%s", cmd.vm_uuid, cmd.iso_uuid, CDROM_TARGET,
                 "" if changed else " (it was empty)")
        return DeviceReply(device=CDROM_TARGET, unchanged=not changed)
