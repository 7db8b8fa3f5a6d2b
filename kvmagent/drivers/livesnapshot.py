"""Snapshots of a running VM's file volume, and merging them, through libvirt.

The result has the same shape as :class:`~kvmagent.drivers.filestorage.FileStorage`'s
offline snapshot (ZStack's external scheme): the disk's current file stays where it is
and becomes the snapshot, and a new qcow2 overlay on it becomes the disk. libvirt makes
the overlay and switches qemu to it (``snapshotCreateXML`` with DISK_ONLY, NO_METADATA
so libvirt keeps no snapshot object the coordinator does not know of, and ATOMIC so a
failure leaves the disk as it was).

Consistency: qemu switches the disk between two guest writes, so the snapshot is
crash-consistent, like pulling the power. It is not application-consistent: QUIESCE
(freezing the guest's filesystems first) needs the qemu guest agent inside the guest,
which zfleet guests are not required to run, so it is not asked for; data the guest
holds in its page cache is not in the snapshot.

A merge is a block pull (``blockRebase``): qemu copies the data of the snapshots above
the base into the top while the guest runs, and then drops them from the chain. The
agent polls the block job until it is gone, and aborts it after a timeout or on
cancellation (the chain is then unchanged; what was already copied changes nothing the
guest sees).

Neither a disk-only snapshot nor a block pull pauses the guest, so neither emits a
lifecycle event; nothing is announced to :class:`~kvmagent.statecapture.StateCapture`.
"""

from __future__ import annotations

import logging
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import libvirt

from agentlib.errors import AgentError, Cancelled
from kvmagent.drivers import qemu_img
from kvmagent.drivers.domain import Disk, parse_domain
from kvmagent.drivers.filestorage import FileStorage, StorageError
from kvmagent.drivers.vms import VmDriver
from kvmagent.models.vm import VolumeTO
from kvmagent.vmspec import disk_target

log = logging.getLogger(__name__)

SNAPSHOT_FLAGS = (libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
                  | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
                  | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
POLL_SECONDS = 0.05


def snapshot_xml(target: str, overlay: str, other_targets: list[str]) -> str:
    """A disk-only snapshot of ``target`` into a new qcow2 ``overlay``; every other disk
    is left alone (qemu would otherwise snapshot them all)."""
    root = ET.Element("domainsnapshot")
    disks = ET.SubElement(root, "disks")
    disk = ET.SubElement(disks, "disk", name=target, snapshot="external", type="file")
    ET.SubElement(disk, "source", file=overlay)
    ET.SubElement(disk, "driver", type="qcow2")
    for other in other_targets:
        ET.SubElement(disks, "disk", name=other, snapshot="no")
    return ET.tostring(root, encoding="unicode")


def backing_of(path: str | Path) -> str | None:
    """The real path of ``path``'s backing file, or None."""
    backing = qemu_img.info(path).backing_file
    return os.path.realpath(backing) if backing else None


class LiveSnapshots:
    def __init__(self, vms: VmDriver):
        self.vms = vms

    def running(self, vm_uuid: str | None) -> libvirt.virDomain | None:
        """The VM's domain if it is running (or paused) here; None if it is stopped."""
        dom = self.vms.domain(vm_uuid) if vm_uuid else None
        return dom if dom is not None and dom.isActive() else None

    def disk(self, dom: libvirt.virDomain, volume: VolumeTO, paths: set[Path]) -> Disk:
        """The VM's disk holding ``volume``: the one reading one of ``paths`` (the
        volume's file, or the overlay of a snapshot already taken), preferably at the
        target its deviceId names (vda for 0)."""
        disks = [d for d in _disks(dom)
                 if d.device == "disk" and d.source_type == "file" and d.path]
        real = {str(p) for p in paths}
        reads = [d for d in disks if os.path.realpath(d.path) in real]
        by_target = [d for d in reads if d.target == disk_target(volume)]
        if by_target or reads:
            return (by_target or reads)[0]
        held = ", ".join(f"{d.target}: {d.path}" for d in disks) or "none"
        raise AgentError(f"vm {dom.name()} has no disk reading volume.installPath "
                         f"{volume.install_path} (its file disks: {held})")

    def take_snapshot(self, dom: libvirt.virDomain, disk: Disk, volume: Path, overlay: Path,
                      storage: FileStorage) -> bool:
        """Make ``overlay`` (a new file in ``storage``) the disk's file, on top of
        ``volume``; False if that was already done (a repeated command)."""
        vm = dom.name()
        if os.path.realpath(disk.path) == str(overlay):
            if backing_of(overlay) == str(volume):
                return False
            raise AgentError(f"vm {vm}: {disk.target} already reads {overlay}, which is not "
                             f"an overlay on {volume}")
        if os.path.lexists(overlay):
            raise AgentError(f"installPath: {overlay} already exists, but vm {vm}'s "
                             f"{disk.target} still reads {disk.path}: the new volume file "
                             "must be a new path")
        others = [d.target for d in _disks(dom) if d.target != disk.target]
        xml = snapshot_xml(disk.target, str(overlay), others)
        try:
            with storage.new_parents(overlay.parent):
                dom.snapshotCreateXML(xml, SNAPSHOT_FLAGS)
        except libvirt.libvirtError as exc:
            raise AgentError(f"vm {vm}: libvirt could not snapshot {disk.target} "
                             f"({volume}) into {overlay}: {exc}") from None
        except StorageError as exc:
            raise AgentError(f"installPath: {exc}") from None
        log.info("vm %s: snapshot of %s taken: it now reads %s on %s", vm, disk.target,
                 overlay, volume)
        return True

    def block_pull(self, dom: libvirt.virDomain, disk: Disk, base: str | None,
                   timeout: float, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Copy into the disk's top the data of its backing chain above ``base`` (a path
        as the chain names it; None: the whole chain) and wait until qemu dropped those
        layers; aborted (chain unchanged) after ``timeout`` seconds or on cancellation."""
        vm, what = dom.name(), f"{disk.target} ({disk.path})"
        started = time.monotonic()
        try:
            dom.blockRebase(disk.target, base, 0, 0)
        except libvirt.libvirtError as exc:
            raise AgentError(f"vm {vm}: libvirt could not start the block pull of {what}: "
                             f"{exc}") from None
        stop_reason = ""
        while _job(dom, disk.target):
            if time.monotonic() - started > timeout:
                stop_reason = f"did not finish within {timeout:g}s"
            elif cancelled():
                stop_reason = "was cancelled"
            if stop_reason:
                _abort(dom, disk.target)
                message = (f"vm {vm}: the block pull of {what} {stop_reason}; aborted, the "
                           "volume's backing chain is unchanged")
                raise (Cancelled if stop_reason == "was cancelled" else AgentError)(message)
            time.sleep(POLL_SECONDS)
        wanted = os.path.realpath(base) if base else None
        if backing_of(disk.path) != wanted:
            raise AgentError(f"vm {vm}: the block pull of {what} ended but its backing file is "
                             f"{backing_of(disk.path)}, not {wanted} (the job failed; libvirtd's "
                             "log of the VM says why)")
        log.info("vm %s: block pull of %s onto %s done in %.2fs", vm, what, base or "nothing",
                 time.monotonic() - started)


def _disks(dom: libvirt.virDomain) -> list[Disk]:
    try:
        return parse_domain(dom.XMLDesc(0)).disks
    except (libvirt.libvirtError, ValueError) as exc:
        raise AgentError(f"vm {dom.name()}: cannot read its running definition: "
                         f"{exc}") from None


def _job(dom: libvirt.virDomain, target: str) -> dict:
    try:
        return dom.blockJobInfo(target, 0)
    except libvirt.libvirtError as exc:
        raise AgentError(f"vm {dom.name()}: cannot follow the block job on {target}: "
                         f"{exc}") from None


def _abort(dom: libvirt.virDomain, target: str) -> None:
    try:
        dom.blockJobAbort(target, 0)
    except libvirt.libvirtError as exc:
        if _job(dom, target):
            raise AgentError(f"vm {dom.name()}: cannot abort the block job on {target}: "
                             f"{exc}") from None
