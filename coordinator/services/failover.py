"""Host loss: HA VMs restarted on another host, once the coordinator is sure (HCI manual).

Each ping round (:mod:`coordinator.scheduler`) calls :meth:`Failover.check`. A host that
missed a ping and still runs HA VMs on Ceph (as the database has it) is scanned from a
Connected peer of its cluster (``/ha/scanhost``): does its agent answer, and does its
heartbeat in the storage's pool still advance? The coordinator is sure the host runs the
VMs no more only when it is unreachable AND its heartbeat stood still for longer than
its self-fencer (:mod:`coordinator.services.ha`) needs to act: then the host is either
dead or has destroyed its VMs itself. The host must be Disconnected by then too. A host
cut off from the coordinator alone still writes its heartbeat, and its VMs go on running
there; a host without a heartbeat (no fencer ever ran) is never declared dead: its VMs
wait for an operator.

Sure -> each VM, under its lock, leaves the lost host in the database (capacity freed;
the host's part — destroying the domain, DHCP, user data, EIPs — kept as GC jobs that
run when it comes back) and is started once on a host the allocator picks in its
cluster. A start that fails leaves it Stopped, with the reason in the log.

A NeverStop VM that stops on its own (qemu crashed, a power-off inside the guest, a
``virsh destroy``) is started again on its host: :meth:`Failover.restart_in_place`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from coordinator import allocator
from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import backends, ha, rootvolumes, vms
from coordinator.services.gc import HostCalls
from coordinator.services.hosts import KVMAGENT_PORT, kvm
from coordinator.services.vmdeletion import leave_host
from coordinator.services.vmstate import HA_RUNNING, VmState, set_state

log = logging.getLogger(__name__)
# Seconds for a fenced qemu to be gone after its fencer acted: virDomainDestroy sends
# SIGTERM, waits up to 10 s (a qemu whose RBD I/O hangs does not exit on it), then SIGKILL.
FENCE_MARGIN = 20.0
RESTART_TIMEOUT = 300.0
SYNC_TIMEOUT = 5.0  # as a ping's


def ha_vms(ctx: Context, host_uuid: str) -> list[dict]:
    """The host's HA VMs whose every volume is on shared storage (Ceph): only those can
    start elsewhere."""
    marks = ",".join("?" * len(HA_RUNNING))
    shared = backends.shared_types()
    return ctx.db.find(
        "vm", f"host_uuid = ? AND state IN ({marks}) AND ha_level IN ('NeverStop', "
        "'OnHostFailure') AND NOT EXISTS "
        "(SELECT 1 FROM volume v JOIN primary_storage p ON p.uuid = v.ps_uuid WHERE "
        f"v.vm_uuid = vm.uuid AND v.status = 'Ready' AND p.type NOT IN "
        f"({','.join('?' * len(shared))}))", (host_uuid, *HA_RUNNING, *shared))


def scan_window(ctx: Context) -> float:
    """How long a heartbeat must stand still: the fencer's time to act, plus two of its
    intervals (its own check period and our first read's), plus the qemu's death."""
    s = ha.fencer_settings(ctx)
    return s["interval"] * (s["max_attempts"] + 2) + FENCE_MARGIN


class Failover:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._settings: tuple | None = None

    def check(self) -> None:
        """One round: hosts follow changed HA settings; lost hosts are scanned."""
        ctx = self.ctx
        enabled, fencer = ctx.gconf.get("ha", "enable"), ha.fencer_settings(ctx)
        settings = (enabled, fencer["interval"], fencer["max_attempts"])
        if settings != self._settings:  # and on the first round: hosts may be stale
            grace = fencer["interval"] * fencer["max_attempts"]
            if enabled and ctx.gconf.get("host", "ping.interval") >= grace:
                log.warning("host/ping.interval is not below the self-fencers' %g s grace: "
                            "a host that only lost its storage may fence itself between "
                            "two pings", grace)
            threading.Thread(target=self._sync_all, daemon=True, name="fencer-sync").start()
            self._settings = settings
        if not enabled:
            return
        # The scan starts at the first missed ping: its window overlaps the pings that
        # make the host Disconnected, and its verdict counts only for a Disconnected host.
        for host in ctx.db.find("host", "status = 'Disconnected' OR missed_pings > 0"):
            if ha_vms(ctx, host["uuid"]) and self._claim(host["uuid"]):
                threading.Thread(target=self._recover, args=(host,), daemon=True,
                                 name=f"failover-{host['name']}").start()

    def _sync_all(self) -> None:
        """Every connected host's fencers follow the settings; in the background, so a
        host that stops answering just now does not hold up the pings."""
        hosts = self.ctx.db.find("host", "status = 'Connected'")
        with ThreadPoolExecutor(min(16, max(1, len(hosts)))) as pool:
            list(pool.map(lambda h: ha.sync_fencers(self.ctx, h["uuid"], SYNC_TIMEOUT),
                          hosts))

    def _claim(self, host_uuid: str) -> bool:
        with self._lock:
            if host_uuid in self._busy:
                return False
            self._busy.add(host_uuid)
            return True

    def _recover(self, host: dict) -> None:
        try:
            by_ps: dict[str, list[dict]] = {}
            for vm in ha_vms(self.ctx, host["uuid"]):
                root = self.ctx.db.get("volume", vm["root_volume_uuid"])
                by_ps.setdefault(root["ps_uuid"], []).append(vm)
            for ps_uuid, vm_rows in by_ps.items():
                ps = self.ctx.db.get("primary_storage", ps_uuid)
                if not self.host_is_down(host, ps):
                    continue
                status = self.ctx.db.get("host", host["uuid"])["status"]
                if status != "Disconnected":
                    log.info("host %s looks down, but is %s: its VMs stay", host["name"],
                             status)
                    continue
                for vm in vm_rows:
                    self._restart(vm["uuid"], host, ps)
        except Exception:
            log.exception("failover of host %s failed", host["name"])
        finally:
            with self._lock:
                self._busy.discard(host["uuid"])

    def host_is_down(self, host: dict, ps: dict) -> bool:
        """Ask a connected peer to watch the host's heartbeat for :func:`scan_window`."""
        ctx = self.ctx
        peers = ctx.db.find("host", "cluster_uuid = ? AND status = 'Connected' AND uuid != ?",
                            (host["cluster_uuid"], host["uuid"]))
        window = scan_window(ctx)
        for peer in peers:
            started = time.monotonic()
            try:
                reply = kvm(ctx, peer).scan_host(
                    target_host_uuid=host["uuid"], target_ip=host["management_ip"],
                    target_port=host["agent_port"] or KVMAGENT_PORT, window=window,
                    interval=ha.fencer_settings(ctx)["interval"],
                    **backends.primary(ps).ha_access(), wait=window + 60)
            except AgentCallError as exc:
                log.warning("host %s: scan from %s failed: %s", host["name"], peer["name"],
                            exc)
                continue
            sure = not reply.reachable and reply.heartbeat == "Stale"
            log.log(logging.WARNING if sure else logging.INFO,
                    "host %s seen from %s in %.1f s: agent %s, heartbeat in %s %s%s -> %s",
                    host["name"], peer["name"], time.monotonic() - started,
                    "reachable" if reply.reachable else "unreachable", ps["name"],
                    reply.heartbeat,
                    f" ({reply.heartbeat_error})" if reply.heartbeat_error else "",
                    "down: its HA VMs restart elsewhere" if sure else
                    "not sure it is down: its VMs stay")
            return sure
        log.warning("host %s is Disconnected with HA VMs, but no connected host of its "
                    "cluster can scan it", host["name"])
        return False

    def _restart(self, vm_uuid: str, lost: dict, ps: dict) -> None:
        ctx = self.ctx
        try:
            with ctx.locks.hold(f"vm:{vm_uuid}", timeout=60):
                vm = ctx.db.get("vm", vm_uuid)
                if vm["host_uuid"] != lost["uuid"] or vm["state"] not in HA_RUNNING \
                        or not ctx.gconf.get("ha", "enable"):
                    return
                leave_host(ctx, vm, HostCalls(ctx, lost, lost="host lost (VM HA)"))
                set_state(ctx, vm_uuid, VmState.STOPPED)
                deadline = Deadline(RESTART_TIMEOUT, f"HA restart of {vm['name']}")
                need = allocator.Need(vm["cpu_num"], vm["memory_size"], vms.l2s_of(ctx, vm),
                                      ps["uuid"], cluster_uuid=vm["cluster_uuid"],
                                      exclude=lost["uuid"])
                with ctx.db.tx():
                    dest = allocator.allocate(ctx, need, lambda p: p["uuid"] == ps["uuid"])[0]
                try:
                    rootvolumes.prepare_host(ctx, ps, dest)
                except AgentCallError as exc:
                    allocator.release(ctx, dest["uuid"], vm["cpu_num"], vm["memory_size"])
                    raise ApiError(f"host {dest['name']}: {exc}") from None
                vms.start_on(ctx, ctx.db.get("vm", vm_uuid), dest, deadline, reserved=True)
            log.warning("VM %s (%s) of lost host %s restarted on %s", vm["name"], vm_uuid,
                        lost["name"], dest["name"])
        except TimeoutError:
            log.info("VM %s: an API works on it; the next round restarts it", vm_uuid)
        except (ApiError, LookupError) as exc:
            log.error("VM %s of lost host %s not restarted (it stays Stopped): %s", vm_uuid,
                      lost["name"], exc)

    def restart_in_place(self, vm_uuid: str) -> None:
        """A NeverStop VM reported Stopped or Crashed, not by an API: start it again where
        it ran, in the background (the report's caller must not wait for a start)."""
        threading.Thread(target=self._restart_in_place, args=(vm_uuid,), daemon=True,
                         name=f"neverstop-{vm_uuid[:8]}").start()

    def _restart_in_place(self, vm_uuid: str) -> None:
        ctx = self.ctx
        try:
            with ctx.locks.hold(f"vm:{vm_uuid}", timeout=60):
                vm = ctx.db.get("vm", vm_uuid)
                if vm["state"] not in ("Stopped", "Crashed") or vm["ha_level"] != "NeverStop" \
                        or not ctx.gconf.get("ha", "enable"):
                    return
                host = ctx.db.get("host", vm["last_host_uuid"])
                if host["status"] != "Connected":
                    return  # a lost host: the failover's business
                vms.start_on(ctx, vm, host, Deadline(RESTART_TIMEOUT, f"restart {vm_uuid}"))
            log.warning("NeverStop VM %s (%s) stopped on its own: started again on %s",
                        vm["name"], vm_uuid, host["name"])
        except (ApiError, TimeoutError, LookupError) as exc:
            log.error("NeverStop VM %s stopped on its own and was not started again: %s",
                      vm_uuid, exc)
