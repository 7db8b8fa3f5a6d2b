"""Live migration of a running VM to another host, peer to peer between the libvirtds.

The source libvirtd connects to ``qemu+tcp://<dest>/system`` itself (PEER2PEER), so
the agent needs no connection of its own to the destination and the migration
survives the agent's HTTP request. zfleet domains are transient: the VM lands on the
destination as a transient domain (no PERSIST_DEST) and is gone from the source.

Storage, by ``policy``:

* ``shared``: every disk is already visible on the destination (RBD, NFS, a shared
  mount point). libvirt trusts only file systems it recognises as shared and cache
  mode none; when it refuses a disk as unsafe, the coordinator's word that the storage
  is shared decides, and the migration is retried with VIR_MIGRATE_UNSAFE.
* ``copy``: writable file disks are copied to the destination while the VM runs
  (VIR_MIGRATE_NON_SHARED_DISK over NBD). libvirt needs the destination file to exist
  at the same path with the same virtual size: the coordinator creates it first with
  the destination's ``/localstorage/volume/createempty``.

The migration runs in a thread while the caller's thread logs progress and enforces
the timeout: past it (or on cancellation) the job is aborted and the VM keeps running
on the source. The source's "stopped" event (detail "migrated") is announced to
:class:`~kvmagent.statecapture.StateCapture`; on the destination the incoming
"started"/"resumed" events (detail "migrated") are never reported as out-of-band.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from agentlib.errors import AgentError, Cancelled
from kvmagent.drivers.domain import Disk, parse_domain
from kvmagent.drivers.vms import VmDriver

log = logging.getLogger(__name__)

POLICIES = ("shared", "copy")
BASE_FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER
POLL_SECONDS = 0.2
PROGRESS_EVERY = 1.0  # seconds between progress lines in the log
ABORT_GRACE = 30.0  # seconds an aborted migration may take to end before we stop waiting
MIB = 1 << 20


def dest_uri(dest_ip: str) -> str:
    return f"qemu+tcp://{dest_ip}/system"


@dataclass
class Plan:
    """How to migrate: libvirt flags and the disks (targets) to copy."""

    flags: int
    copy_disks: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict:
        if not self.copy_disks:
            return {}
        return {libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: self.copy_disks}


def plan(disks: list[Disk], policy: str) -> Plan:
    """The flags for ``policy``; ``copy`` copies writable file disks (not RBD, not ISOs)."""
    if policy not in POLICIES:
        raise ValueError(f"storageMigrationPolicy: must be one of {', '.join(POLICIES)}")
    if policy == "shared":
        return Plan(BASE_FLAGS)
    local = [d.target for d in disks
             if d.source_type == "file" and d.path is not None and not d.readonly]
    if not local:
        return Plan(BASE_FLAGS)  # nothing local: as shared
    return Plan(BASE_FLAGS | libvirt.VIR_MIGRATE_NON_SHARED_DISK, local)


class MigrationDriver:
    def __init__(self, vms: VmDriver):
        self.vms = vms

    def migrate(self, vm_uuid: str, dest_ip: str, policy: str, timeout: float,
                cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Live-migrate ``vm_uuid`` to ``dest_ip``; False if it already ran there."""
        dom = self.vms.domain(vm_uuid)
        uri = dest_uri(dest_ip)
        if dom is None or not dom.isActive():
            if _runs_on(uri, vm_uuid):
                log.info("vm %s already runs on %s: nothing to migrate", vm_uuid, dest_ip)
                return False
            raise AgentError(f"vm {vm_uuid} is not running on this host (nor on {dest_ip})")
        try:
            how = plan(parse_domain(dom.XMLDesc(0)).disks, policy)
        except ValueError as exc:
            raise AgentError(f"vm {vm_uuid}: cannot plan its migration: {exc}") from None
        self.vms.capture.expect(vm_uuid, "stopped")
        started = time.monotonic()
        try:
            self._run(dom, uri, how, policy, timeout, cancelled)
        except BaseException:
            self.vms.capture.forget(vm_uuid)
            raise
        log.info("vm %s migrated to %s in %.2fs", vm_uuid, dest_ip, time.monotonic() - started)
        return True

    def _run(self, dom: libvirt.virDomain, uri: str, how: Plan, policy: str,
             timeout: float, cancelled: Callable[[], bool]) -> None:
        vm = dom.name()
        outcome: dict[str, BaseException | None] = {}

        def migrate() -> None:
            try:
                _migrate(dom, uri, how, policy)
                outcome["error"] = None
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = exc

        context = contextvars.copy_context()  # its log lines keep the caller's taskuuid
        worker = threading.Thread(target=context.run, args=(migrate,),
                                  name=f"migrate-{vm[:8]}", daemon=True)
        worker.start()
        deadline = time.monotonic() + timeout
        next_progress = time.monotonic() + PROGRESS_EVERY
        stop_reason, stopped_at, aborted = "", 0.0, False
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            if not worker.is_alive():
                break
            now = time.monotonic()
            if not stop_reason and (now >= deadline or cancelled()):
                stop_reason = ("was cancelled" if now < deadline
                               else f"did not finish within {timeout:g}s")
                stopped_at = now
            if stop_reason and now >= stopped_at + ABORT_GRACE:
                raise AgentError(f"vm {vm}: migration to {uri} {stop_reason}, and it was still "
                                 f"running {ABORT_GRACE:g}s after the abort: see where the VM "
                                 f"runs with /vm/vmsync on both hosts")
            if stop_reason and not aborted:
                aborted = _abort(dom)  # until it takes: the job may not have begun yet
            elif not stop_reason and now >= next_progress:
                _log_progress(dom)
                next_progress = now + PROGRESS_EVERY
        error = outcome.get("error")
        if error is None:
            return  # done, even if an abort came too late to stop it
        if stop_reason:
            message = (f"vm {vm}: migration to {uri} {stop_reason}; aborted, the VM keeps "
                       f"running on this host")
            if stop_reason == "was cancelled":
                raise Cancelled(message)
            raise AgentError(message)
        if isinstance(error, libvirt.libvirtError):
            raise AgentError(f"vm {vm}: migration to {uri} failed: {error}"
                             f"{_hint(error, how)}") from None
        raise error


def _migrate(dom: libvirt.virDomain, uri: str, how: Plan, policy: str) -> None:
    try:
        dom.migrateToURI3(uri, how.params, how.flags)
    except libvirt.libvirtError as exc:
        if policy != "shared" or exc.get_error_code() != libvirt.VIR_ERR_MIGRATE_UNSAFE:
            raise
        # Checked before anything is done, so retrying is safe.
        log.info("vm %s: libvirt cannot tell the storage is shared (%s); the coordinator "
                 "says it is: migrating with VIR_MIGRATE_UNSAFE", dom.name(), exc)
        dom.migrateToURI3(uri, how.params, how.flags | libvirt.VIR_MIGRATE_UNSAFE)


def _hint(error: libvirt.libvirtError, how: Plan) -> str:
    """What the operator can do about a failure whose libvirt message does not say."""
    if how.copy_disks and error.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
        # libvirt looked for a pool to create the missing file in
        return (f"; to copy disks {', '.join(how.copy_disks)} their files must first exist "
                f"on the destination at the same paths and sizes (its "
                f"/localstorage/volume/createempty)")
    return ""


def _abort(dom: libvirt.virDomain) -> bool:
    try:
        dom.abortJob()
    except libvirt.libvirtError as exc:
        log.debug("vm %s: abort not possible yet: %s", dom.name(), exc)
        return False
    log.warning("vm %s: migration job aborted", dom.name())
    return True


def _log_progress(dom: libvirt.virDomain) -> None:
    try:
        stats = dom.jobStats()
    except libvirt.libvirtError:
        return  # between phases, or already finished
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return
    parts = [f"{stats.get('time_elapsed', 0) / 1000:.1f}s elapsed",
             f"memory {stats.get('memory_processed', 0) // MIB}"
             f"/{stats.get('memory_total', 0) // MIB} MiB sent, "
             f"{stats.get('memory_remaining', 0) // MIB} MiB left"]
    if stats.get("disk_total"):
        parts.append(f"disks {stats.get('disk_processed', 0) // MIB}"
                     f"/{stats['disk_total'] // MIB} MiB")
    log.info("vm %s: migrating: %s", dom.name(), ", ".join(parts))


def _runs_on(uri: str, vm_uuid: str) -> bool:
    """Whether ``vm_uuid`` runs on the libvirtd at ``uri`` (a retried migration that
    already finished); False if that libvirtd cannot be asked."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        log.warning("cannot ask %s whether vm %s runs there: %s", uri, vm_uuid, exc)
        return False
    try:
        return bool(conn.lookupByName(vm_uuid).isActive())
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()
