"""Hot-plug on running VMs: disks, NICs and cdrom media, changed live through libvirt.

zfleet domains are transient, so the live change is the whole change: there is no
persistent definition to keep in step, and the coordinator sends every device again on
the next ``/vm/start``. Each operation first reads the running domain, so a repeated
command succeeds without doing anything, and a conflicting one fails saying what is in
the way. Unplugging needs the guest's cooperation (ACPI eject) and libvirt may return
before the guest let go, so a detach waits until libvirt no longer lists the device.
Device changes are not lifecycle events: nothing here reaches the coordinator as an
out-of-band report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import libvirt

from agentlib.errors import AgentError
from kvmagent.drivers.domain import Disk, Domain, Nic, disk_xml, nic_xml, parse_domain
from kvmagent.drivers.vms import VmDriver

log = logging.getLogger(__name__)

UNPLUG_TIMEOUT = 10.0  # seconds a guest gets to release an unplugged device
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def source_of(disk: Disk) -> str | None:
    """What a disk reads: its file, ``rbd:pool/image``, or None for an empty cdrom."""
    return f"rbd:{disk.rbd_name}" if disk.source_type == "network" else disk.path


def attached_disk(disks: list[Disk], wanted: Disk) -> Disk | None:
    """The disk that already is ``wanted`` (same target, same source), or None if the
    target is free; AgentError if another disk holds the target or the source is
    attached at another target."""
    for disk in disks:
        if disk.target == wanted.target:
            if source_of(disk) == source_of(wanted):
                return disk
            held = source_of(disk) or "an empty cdrom drive"
            raise AgentError(f"target {wanted.target} already holds {held}: "
                             f"detach it first or use another deviceId")
        if disk.device == "disk" and source_of(disk) == source_of(wanted):
            raise AgentError(f"{source_of(wanted)} is already attached as {disk.target}, "
                             f"not {wanted.target}")
    return None


def disk_with_source(disks: list[Disk], wanted: Disk) -> Disk | None:
    """The (non-cdrom) disk reading what ``wanted`` reads, wherever it is attached."""
    return next((d for d in disks if d.device == "disk" and source_of(d) == source_of(wanted)),
                None)


def nic_with_mac(nics: list[Nic], mac: str) -> Nic | None:
    return next((n for n in nics if n.mac == mac.lower()), None)


def cdrom_at(disks: list[Disk], target: str) -> Disk | None:
    return next((d for d in disks if d.device == "cdrom" and d.target == target), None)


class DeviceDriver:
    def __init__(self, vms: VmDriver, unplug_timeout: float = UNPLUG_TIMEOUT):
        self.vms = vms
        self.unplug_timeout = unplug_timeout

    def attach_disk(self, vm_uuid: str, disk: Disk) -> bool:
        """Plug ``disk`` in; False if it already was (nothing done)."""
        dom = self._running(vm_uuid)
        try:
            if attached_disk(self._live(dom).disks, disk) is not None:
                return False
        except AgentError as exc:
            raise AgentError(f"vm {vm_uuid}: {exc}") from None
        self._attach(dom, disk_xml(disk), f"disk {disk.target} ({source_of(disk)})")
        return True

    def detach_disk(self, vm_uuid: str, disk: Disk) -> str | None:
        """Unplug the disk reading what ``disk`` reads and wait until it is gone; its
        target, or None if it was not attached."""
        dom = self._running(vm_uuid)
        live = disk_with_source(self._live(dom).disks, disk)
        if live is None:
            return None
        self._detach(dom, disk_xml(live), f"disk {live.target} ({source_of(live)})",
                     lambda d: any(x.target == live.target for x in d.disks))
        return live.target

    def attach_nic(self, vm_uuid: str, nic: Nic) -> bool:
        """Plug ``nic`` in; False if a NIC with its MAC is already on its bridge."""
        dom = self._running(vm_uuid)
        live = nic_with_mac(self._live(dom).nics, nic.mac)
        if live is not None:
            if live.bridge != nic.bridge:
                raise AgentError(f"vm {vm_uuid}: a NIC with MAC {nic.mac} is already on "
                                 f"bridge {live.bridge}, not {nic.bridge}")
            return False
        self._attach(dom, nic_xml(nic), f"nic {nic.mac} on {nic.bridge}")
        return True

    def detach_nic(self, vm_uuid: str, mac: str) -> bool:
        """Unplug the NIC with ``mac`` and wait until it is gone; False if there was none."""
        dom = self._running(vm_uuid)
        live = nic_with_mac(self._live(dom).nics, mac)
        if live is None:
            return False
        self._detach(dom, nic_xml(live), f"nic {live.mac}",
                     lambda d: nic_with_mac(d.nics, live.mac) is not None)
        return True

    def change_media(self, vm_uuid: str, target: str, path: str | None) -> bool:
        """Put ``path`` in the cdrom at ``target`` (None ejects); False if it already
        held that. A locked tray is forced open: the coordinator decides, not the guest."""
        dom = self._running(vm_uuid)
        drive = cdrom_at(self._live(dom).disks, target)
        if drive is None:
            if path is None:
                return False  # no drive, so nothing in it
            raise AgentError(
                f"vm {vm_uuid} has no cdrom drive {target}, and an IDE cdrom cannot be "
                f"hot-plugged on the i440fx (pc) machine: start the VM with a cdrom "
                f"(bootDev containing 'cdrom', or an isoPath)")
        if drive.path == path:
            return False
        media = replace(drive, path=path)  # keeps the drive's bus and boot order
        try:
            dom.updateDeviceFlags(disk_xml(media),
                                  _LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
        except libvirt.libvirtError as exc:
            action = f"insert {path} into" if path else "eject"
            raise AgentError(f"vm {vm_uuid}: libvirt could not {action} cdrom {target}: "
                             f"{exc}") from None
        return True

    # -- internals -------------------------------------------------------------------
    def _running(self, vm_uuid: str) -> libvirt.virDomain:
        dom = self.vms.domain(vm_uuid)
        if dom is None or not dom.isActive():
            raise AgentError(f"vm {vm_uuid} is not running on this host")
        return dom

    @staticmethod
    def _live(dom: libvirt.virDomain) -> Domain:
        try:
            return parse_domain(dom.XMLDesc(0))
        except libvirt.libvirtError as exc:
            raise AgentError(f"vm {dom.name()}: cannot read its running definition: "
                             f"{exc}") from None
        except ValueError as exc:
            raise AgentError(f"vm {dom.name()}: its running definition has a device "
                             f"zfleet does not model: {exc}") from None

    @staticmethod
    def _attach(dom: libvirt.virDomain, xml: str, what: str) -> None:
        try:
            dom.attachDeviceFlags(xml, _LIVE)
        except libvirt.libvirtError as exc:
            raise AgentError(f"vm {dom.name()}: libvirt could not attach {what}: "
                             f"{exc}") from None

    def _detach(self, dom: libvirt.virDomain, xml: str, what: str,
                present: Callable[[Domain], bool]) -> None:
        """Ask for the unplug, then poll until ``present`` says the device is gone."""
        deadline = time.monotonic() + self.unplug_timeout
        try:
            dom.detachDeviceFlags(xml, _LIVE)
        except libvirt.libvirtError as exc:
            if self._still_there(dom, present):
                raise AgentError(f"vm {dom.name()}: libvirt could not detach {what}: "
                                 f"{exc}") from None
            return  # gone meanwhile (e.g. an unplug asked for before completed)
        while self._still_there(dom, present):
            if time.monotonic() > deadline:
                raise AgentError(
                    f"vm {dom.name()}: the guest did not release {what} within "
                    f"{self.unplug_timeout:g}s (it must answer the ACPI eject request); "
                    f"libvirt still lists it: retry, or stop the VM")
            time.sleep(0.05)
        log.info("vm %s: %s unplugged", dom.name(), what)

    def _still_there(self, dom: libvirt.virDomain, present: Callable[[Domain], bool]) -> bool:
        try:
            if not dom.isActive():
                return False
        except libvirt.libvirtError:
            return False  # a transient domain that stopped is gone with its devices
        return present(self._live(dom))
