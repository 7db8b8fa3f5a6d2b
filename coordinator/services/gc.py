"""Garbage collection (ZStack 1.1): agent work that cannot be done now is kept, not lost.

When a VM (or its volume) is deleted while its host's agent is unreachable, the
database changes at once and each host command that could not be sent becomes a
persisted job (``gc_job``: what, where, why, attempts, status). Work that must follow
the host's (deleting a Ceph volume the still-running VM holds open) is kept in the same
queue, sent through the storage's agent (``via_ps_uuid``). Jobs run in order when their
host reconnects (event) and on an interval (time); a job whose host was deleted is
Cancelled, never run. Agent commands are idempotent, so running one twice is harmless.

Work for a storage whose agents are all unreachable (a Ceph volume or an image copy
deleted while no cephagent or sftpbsagent answers) is kept the same way, with no host
(``via_ps_uuid`` / ``via_bs_uuid``): it runs on the interval, in order per storage, and
is Cancelled if the storage leaves the inventory. QueryGCJob lists them all.
"""

from __future__ import annotations

import logging

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.clients.endpoint import Call
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.repos.gcjobs import GcJobs
from coordinator.services import backends
from coordinator.services.hosts import kvm
from coordinator.services.storageagents import StorageUnreachable

log = logging.getLogger(__name__)
JOB_TIMEOUT = 300.0


def on_host_connect(ctx: Context, host_uuid: str) -> None:
    """The event-based trigger: a host that (re)connected gets its jobs run."""
    run_host(ctx, host_uuid)


class HostCalls:
    """Host commands for work the database already considers done: sent now, or kept as
    GC jobs once the host proves unreachable (the rest then go straight to the jobs,
    instead of each waiting for its own timeout). A refusal by a reachable agent is
    raised as usual."""

    def __init__(self, ctx: Context, host: dict, timeout: float = 60.0, lost: str = ""):
        """``lost``: why the host is known to be gone; then every command is kept at once."""
        self.ctx, self.host, self.timeout, self.lost = ctx, host, timeout, lost
        self.kept = 0

    def after_host(self, ps: dict, path: str, body: dict, what: str) -> bool:
        """A Ceph storage command that must wait for this host's kept commands (if any)."""
        if not self.kept:
            return storage_call(self.ctx, ps, "ps", path, body, what)
        self._keep(path, body, what, False, "waits for the host's commands", ps["uuid"])
        return False

    def send_call(self, call: Call, what: str) -> bool:
        """A command a kvmagent endpoint built (``DESTROY_VM.call(uuid=...)``): True if
        it ran now, False if it is kept as a GC job."""
        if not self.kept and not self.lost:
            try:
                kvm(self.ctx, self.host).run(call, self.timeout if call.is_async else None)
                return True
            except AgentCallError as exc:
                if not exc.unreachable:
                    raise
                error = str(exc)
        else:
            error = self.lost or "host unreachable (an earlier command of this operation failed)"
        self._keep(call.path, call.body, what, call.is_async, error)
        return False

    def _keep(self, path: str, body: dict, what: str, is_async: bool, error: str,
              via_ps: str = "") -> None:
        self.ctx.db.insert("gc_job", {"uuid": new_uuid(), "name": what,
                                      "host_uuid": self.host["uuid"], "path": path,
                                      "body": body, "is_async": int(is_async),
                                      "via_ps_uuid": via_ps, "last_error": error})
        self.kept += 1
        log.warning("host %s unreachable: '%s' kept for garbage collection",
                    self.host["name"], what)


def storage_call(ctx: Context, storage: dict, kind: str, path: str, body: dict,
                 what: str) -> bool:
    """A command for a primary (``kind`` "ps") or backup ("bs") storage's agent: run now
    (True), or kept as a GC job when none of its agents answers (False). A refusal by an
    agent that answers is raised."""
    try:
        _storage_run(ctx, storage, kind, path, body)
        return True
    except StorageUnreachable as exc:
        ctx.db.insert("gc_job", {"uuid": new_uuid(), "name": what, "host_uuid": "",
                                 "path": path, "body": body, "last_error": str(exc),
                                 f"via_{kind}_uuid": storage["uuid"]})
        log.warning("storage %s unreachable: '%s' kept for garbage collection",
                    storage["name"], what)
        return False


def _storage_run(ctx: Context, storage: dict, kind: str, path: str, body: dict) -> None:
    (backends.primary if kind == "ps" else backends.backup)(storage).call(ctx, path, body)


def _attempted(ctx: Context, job: dict, error: str | None = None) -> None:
    """One more attempt at ``job``: Done without an ``error``, still Pending with one."""
    ctx.db.update("gc_job", job["uuid"], attempts=job["attempts"] + 1, last_error=error or "",
                  **({"status": "Done"} if error is None else {}))


def run_storages(ctx: Context) -> tuple[int, int]:
    """Run the storages' pending jobs, oldest first; a storage still unreachable keeps
    the rest of its jobs for the next round. (done, failed)"""
    done = failed = 0
    down: set[str] = set()
    for job in ctx.db.find("gc_job", "host_uuid = '' AND status = 'Pending' "
                           "ORDER BY created, rowid"):
        kind = "ps" if job["via_ps_uuid"] else "bs"
        table = "primary_storage" if kind == "ps" else "backup_storage"
        storage_uuid = job[f"via_{kind}_uuid"]
        if storage_uuid in down:
            continue
        rows = ctx.db.find(table, "uuid = ?", (storage_uuid,))
        if not rows:
            ctx.db.update("gc_job", job["uuid"], status="Cancelled",
                          last_error="the storage was deleted")
            continue
        try:
            _storage_run(ctx, rows[0], kind, job["path"], job["body"])
        except ApiError as exc:
            failed += 1
            _attempted(ctx, job, str(exc))
            if isinstance(exc, StorageUnreachable):
                down.add(storage_uuid)
            continue
        done += 1
        _attempted(ctx, job)
    if done or failed:
        log.info("garbage collection on storages: %d done, %d failed", done, failed)
    return done, failed


def run_host(ctx: Context, host_uuid: str) -> tuple[int, int]:
    """Run the host's pending jobs, oldest first; (done, failed)."""
    rows = ctx.db.find("host", "uuid = ?", (host_uuid,))
    jobs = ctx.db.find("gc_job", "host_uuid = ? AND status = 'Pending' ORDER BY created, rowid",
                       (host_uuid,))
    if not rows:
        for job in jobs:
            ctx.db.update("gc_job", job["uuid"], status="Cancelled",
                          last_error="the host was deleted")
        return 0, 0
    done = failed = 0
    for job in jobs:
        try:
            if job["via_ps_uuid"]:
                ps = ctx.db.get("primary_storage", job["via_ps_uuid"])
                backends.primary(ps).call(ctx, job["path"], job["body"])
            else:
                call = Call(job["path"], job["body"], bool(job["is_async"]))
                kvm(ctx, rows[0]).run(call, JOB_TIMEOUT if call.is_async else None)
        except (AgentCallError, ApiError, LookupError) as exc:
            failed += 1
            _attempted(ctx, job, str(exc))
            if getattr(exc, "unreachable", False):
                break  # still gone: the next reconnect or round tries again
            continue
        done += 1
        _attempted(ctx, job)
    if done or failed:
        log.info("garbage collection on host %s: %d done, %d failed", rows[0]["name"], done,
                 failed)
    return done, failed


def run_all(ctx: Context) -> None:
    """The time-based round: every storage and host with pending jobs (deleted ones' jobs
    cancelled)."""
    run_storages(ctx)
    for host_uuid in GcJobs(ctx.db).hosts_with_pending():
        connected = ctx.db.find("host", "uuid = ? AND status = 'Connected'", (host_uuid,))
        if connected or not ctx.db.find("host", "uuid = ?", (host_uuid,)):
            run_host(ctx, host_uuid)
