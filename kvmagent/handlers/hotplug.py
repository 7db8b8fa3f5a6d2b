"""Hot-plug on running VMs: data volumes, NICs, and ISO media (ZStack 1.0, "ISO API").

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
from dataclasses import dataclass
from pathlib import Path

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.routes import Routes
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

routes = Routes()


@dataclass
class Hotplug:
    """What the handlers work on: the device driver, the files a VM may open, the config
    and the agent's locks."""

    devices: DeviceDriver
    files: VmFiles
    cfg: KvmAgentConfig
    locks: NamedLocks

    def lock(self, vm_uuid: str):
        return self.locks.hold(f"vm:{vm_uuid}")


def register(agent: Agent, vms: VmDriver, cfg: KvmAgentConfig) -> None:
    files = VmFiles(Path(cfg.data_dir) / STATE_FILE, cfg.image_roots)
    agent.include(routes, Hotplug(DeviceDriver(vms), files, cfg, agent.locks))


def check_volume(hp: Hotplug, cmd: VolumeDeviceCmd) -> None:
    if cmd.volume.device_type == "file":
        hp.files.volume("volume.installPath", cmd.volume.install_path)


def check_iso(hp: Hotplug, cmd: AttachIsoCmd) -> None:
    hp.files.readable("iso.path", cmd.iso.path)


@routes.async_("/vm/attachdatavolume", check=check_volume)
def attach_data_volume(hp: Hotplug, cmd: VolumeDeviceCmd) -> DeviceReply:
    """Plug a data volume (file or Ceph) into a running VM at the target its
    deviceId names (1 = vdb); already there = success."""
    if cmd.volume.device_type == "file":
        require_file("volume.installPath", cmd.volume.install_path)
    disk = volume_disk(cmd.volume, hp.cfg.cache_mode)
    with hp.lock(cmd.vm_uuid):
        attached = hp.devices.attach_disk(cmd.vm_uuid, disk)
    return DeviceReply(device=disk.target, unchanged=not attached)


@routes.async_("/vm/detachdatavolume")
def detach_data_volume(hp: Hotplug, cmd: VolumeDeviceCmd) -> DeviceReply:
    """Unplug a data volume and wait until the guest released it; not attached =
    success."""
    disk = volume_disk(cmd.volume, hp.cfg.cache_mode)
    with hp.lock(cmd.vm_uuid):
        target = hp.devices.detach_disk(cmd.vm_uuid, disk)
    return DeviceReply(device=target or "", unchanged=target is None)


@routes.async_("/vm/attachnic")
def attach_nic(hp: Hotplug, cmd: NicDeviceCmd) -> DeviceReply:
    """Plug a NIC into a running VM on its bridge; a NIC with that MAC already
    there = success."""
    require_bridge("nic.bridgeName", cmd.nic.bridge_name)
    with hp.lock(cmd.vm_uuid):
        attached = hp.devices.attach_nic(cmd.vm_uuid, nic_device(cmd.nic))
    return DeviceReply(device=cmd.nic.mac.lower(), unchanged=not attached)


@routes.async_("/vm/detachnic")
def detach_nic(hp: Hotplug, cmd: NicDeviceCmd) -> DeviceReply:
    """Unplug the NIC with the given MAC and wait until it is gone; none = success."""
    with hp.lock(cmd.vm_uuid):
        detached = hp.devices.detach_nic(cmd.vm_uuid, cmd.nic.mac)
    return DeviceReply(device=cmd.nic.mac.lower(), unchanged=not detached)


@routes.async_("/vm/iso/attach", check=check_iso)
def attach_iso(hp: Hotplug, cmd: AttachIsoCmd) -> DeviceReply:
    """Put an ISO into the VM's cdrom drive (which it must have been started with)."""
    require_file("iso.path", cmd.iso.path)
    with hp.lock(cmd.vm_uuid):
        changed = hp.devices.change_media(cmd.vm_uuid, CDROM_TARGET, cmd.iso.path)
    log.info("vm %s: iso %s (%s) in %s%s", cmd.vm_uuid, cmd.iso.iso_uuid, cmd.iso.path,
             CDROM_TARGET, "" if changed else " already")
    return DeviceReply(device=CDROM_TARGET, unchanged=not changed)


@routes.async_("/vm/iso/detach")
def detach_iso(hp: Hotplug, cmd: DetachIsoCmd) -> DeviceReply:
    """Eject the VM's cdrom media (the drive stays, empty); already empty = success."""
    with hp.lock(cmd.vm_uuid):
        changed = hp.devices.change_media(cmd.vm_uuid, CDROM_TARGET, None)
    log.info("vm %s: iso %s ejected from %s%s", cmd.vm_uuid, cmd.iso_uuid, CDROM_TARGET,
             "" if changed else " (it was empty)")
    return DeviceReply(device=CDROM_TARGET, unchanged=not changed)
