"""The self-fencer: a host that lost both its coordinator and its Ceph storage stops its
Ceph VMs, so the coordinator can restart them elsewhere without two copies writing one disk.

Per primary storage (``psUuid``) one thread rewrites the host's heartbeat object every
``interval`` seconds (:mod:`kvmagent.drivers.heartbeat`). The host fences itself (destroys
every running domain with an RBD disk in that pool) only when BOTH hold for at least
``interval * maxAttempts``: the writes have failed continuously, and no ``/host/ping`` or
``/host/connect`` came from the coordinator. Either alone is not a lost host: a host cut
from the coordinator but writing its heartbeat is still alive for its peers (who tell the
coordinator so), and a storage outage the coordinator still sees is the coordinator's
to handle. The fencer never restarts anything; it keeps heartbeating afterwards.

Setups are persisted (with the cephx key: the file is 0600 in a 0700 directory) and
re-adopted when the agent restarts; the coordinator-contact clock then starts at the
agent's start, so a restart never counts as contact lost for longer than it was.

Decisions use a monotonic ``clock`` (injectable for tests); epochs are only reported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import libvirt

from agentlib import jsonfile
from agentlib.errors import AgentError
from kvmagent.drivers.heartbeat import (
    HeartbeatError,
    HeartbeatStore,
    RadosTarget,
    heartbeat_object,
)
from kvmagent.drivers.libvirt_conn import LibvirtConnection

log = logging.getLogger(__name__)

Clock = Callable[[], float]
StoreFactory = Callable[[RadosTarget, float], HeartbeatStore]


@dataclass(frozen=True)
class FencerConfig:
    ps_uuid: str
    host_uuid: str
    target: RadosTarget
    interval: float = 5.0
    max_attempts: int = 6

    @property
    def grace(self) -> float:
        """Seconds both storage and coordinator must have been lost before fencing."""
        return self.interval * self.max_attempts

    @property
    def heartbeat_object(self) -> str:
        return heartbeat_object(self.host_uuid)

    def to_json(self) -> dict:
        return {**asdict(self), "target": {**asdict(self.target),
                                           "mon_hosts": list(self.target.mon_hosts)}}

    @classmethod
    def from_json(cls, d: dict) -> FencerConfig:
        t = d["target"]
        target = RadosTarget(t["pool"], tuple(t["mon_hosts"]), t["user"], t["key"])
        return cls(d["ps_uuid"], d["host_uuid"], target, d["interval"], d["max_attempts"])


def rbd_disks_in_pool(domain_xml: str, pool: str) -> list[str]:
    """The ``pool/image`` names of a domain's RBD disks that are in ``pool``."""
    names = []
    for source in ET.fromstring(domain_xml).iterfind("./devices/disk/source[@protocol='rbd']"):
        name = source.get("name", "")
        if name.startswith(pool + "/"):
            names.append(name)
    return names


@dataclass
class FencerState:
    counter: int = 0
    last_write_ok: float | None = None  # epoch
    failing_since: float | None = None  # monotonic (clock)
    failing_since_epoch: float | None = None
    last_error: str = ""
    fenced_at: float | None = None  # epoch
    fenced_vms: list[str] = field(default_factory=list)


class SelfFencer:
    """One pool's heartbeat and fence decision. ``tick()`` is one step (tests drive it);
    ``start()`` runs it every ``interval`` in a thread."""

    def __init__(self, config: FencerConfig, libvirt_conn: LibvirtConnection,
                 last_contact: Clock, clock: Clock = time.monotonic,
                 store_factory: StoreFactory = HeartbeatStore):
        self.config = config
        self.libvirt = libvirt_conn
        self.last_contact = last_contact
        self.clock = clock
        self.store_factory = store_factory
        self.state = FencerState()
        self._store: HeartbeatStore | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"selffencer-{self.config.ps_uuid[:8]}")
        self._thread.start()
        c = self.config
        log.info("self-fencer for primary storage %s: heartbeat %s/%s every %gs, fencing "
                 "after %gs without storage and coordinator", c.ps_uuid, c.target.pool,
                 c.heartbeat_object, c.interval, c.grace)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.tick()
                except Exception:  # the fencer must outlive any one failure
                    log.exception("self-fencer %s: step failed", self.config.ps_uuid)
                self._stop.wait(max(0.0, self.config.interval - (time.monotonic() - started)))
        finally:
            self._close_store()

    # -- one step -------------------------------------------------------------------
    def tick(self) -> None:
        """Write the heartbeat once, then fence if both conditions have held long enough."""
        config = self.config  # one consistent view; setup may swap it meanwhile
        self._heartbeat(config)
        now = self.clock()
        if self.should_fence(now, config) and not self._stop.is_set():
            self.fence(now, config)

    def should_fence(self, now: float, config: FencerConfig | None = None) -> bool:
        config = config or self.config
        since = self.state.failing_since
        return (since is not None and now - since >= config.grace
                and now - self.last_contact() >= config.grace)

    def _heartbeat(self, config: FencerConfig) -> None:
        store = self._store_for(config)
        attempt_started = self.clock()
        s = self.state
        s.counter += 1
        try:
            store.write(config.heartbeat_object, {"hostUuid": config.host_uuid,
                                                  "counter": s.counter, "time": time.time()})
        except HeartbeatError as exc:
            if s.failing_since is None:
                s.failing_since, s.failing_since_epoch = attempt_started, time.time()
                log.warning("self-fencer %s: heartbeat write failed (%s); fencing in %gs "
                            "unless it recovers or the coordinator is in contact",
                            config.ps_uuid, exc, config.grace)
            s.last_error = str(exc)
            return
        if s.failing_since is not None:
            log.warning("self-fencer %s: heartbeat writes work again after %.1fs",
                        config.ps_uuid, self.clock() - s.failing_since)
        s.failing_since = s.failing_since_epoch = None
        s.last_error = ""
        s.last_write_ok = time.time()

    def _store_for(self, config: FencerConfig) -> HeartbeatStore:
        if self._store is not None and self._store.target != config.target:
            self._close_store()
        if self._store is None:
            self._store = self.store_factory(config.target, config.interval)
        return self._store

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()

    # -- fencing --------------------------------------------------------------------
    def fence(self, now: float, config: FencerConfig) -> list[str]:
        """Destroy every running domain with an RBD disk in the pool; the names destroyed."""
        try:
            domains = self.libvirt.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        except (AgentError, libvirt.libvirtError) as exc:
            log.error("self-fencer %s: cannot list domains to fence: %s", config.ps_uuid, exc)
            return []
        pool, fenced = config.target.pool, []
        for dom in domains:
            try:
                disks = rbd_disks_in_pool(dom.XMLDesc(0), pool)
                if not disks:
                    continue
                log.warning(
                    "self-fencing: destroying vm %s (disks %s): no heartbeat written to pool "
                    "%s for %.1fs (%s) and no contact from the coordinator for %.1fs; its "
                    "HA restart elsewhere must not find it running here", dom.name(),
                    ", ".join(disks), pool, now - (self.state.failing_since or now),
                    self.state.last_error, now - self.last_contact())
                dom.destroy()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN,
                                            libvirt.VIR_ERR_OPERATION_INVALID):
                    continue  # gone or stopped meanwhile
                log.error("self-fencing: destroying vm %s failed: %s", dom.name(), exc)
                continue
            fenced.append(dom.name())
        if fenced:
            self.state.fenced_at = time.time()
            self.state.fenced_vms += [n for n in fenced if n not in self.state.fenced_vms]
        return fenced

    def status(self) -> dict:
        c, s = self.config, self.state
        contact_age = self.clock() - self.last_contact()
        return {"ps_uuid": c.ps_uuid, "pool": c.target.pool, "host_uuid": c.host_uuid,
                "interval": c.interval, "max_attempts": c.max_attempts, "counter": s.counter,
                "last_write_ok": s.last_write_ok, "failing_since": s.failing_since_epoch,
                "last_contact": time.time() - contact_age, "fenced_at": s.fenced_at,
                "fenced_vms": list(s.fenced_vms)}


class SelfFencers:
    """The fencers of this host by primary storage uuid, persisted under ``state_dir``."""

    def __init__(self, state_dir: Path, libvirt_conn: LibvirtConnection,
                 clock: Clock = time.monotonic, store_factory: StoreFactory = HeartbeatStore):
        self.state_dir = Path(state_dir)
        self.libvirt = libvirt_conn
        self.clock = clock
        self.store_factory = store_factory
        self._last_contact = clock()  # agent start: a restart is not lost contact
        self._fencers: dict[str, SelfFencer] = {}
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.state_dir / "selffencers.json"

    def contact(self) -> None:
        """The coordinator reached this agent (ping, connect)."""
        self._last_contact = self.clock()

    def last_contact(self) -> float:
        return self._last_contact

    def adopt(self) -> int:
        """Start the fencers persisted by an earlier run of the agent; how many."""
        saved = jsonfile.read(self.path, {})
        with self._lock:
            for ps_uuid, raw in saved.items():
                if ps_uuid not in self._fencers:
                    self._start(FencerConfig.from_json(raw))
        if saved:
            log.info("re-adopted %d self-fencer(s) from %s", len(saved), self.path)
        return len(saved)

    def setup(self, config: FencerConfig) -> SelfFencer:
        """Start the fencer of ``config.ps_uuid``, or reconfigure the running one in place
        (same thread and counter: repeating a setup changes nothing)."""
        with self._lock:
            fencer = self._fencers.get(config.ps_uuid)
            if fencer is None:
                fencer = self._start(config)
            elif fencer.config != config:
                fencer.config = config
                log.info("self-fencer for primary storage %s reconfigured: heartbeat %s/%s "
                         "every %gs, grace %gs", config.ps_uuid, config.target.pool,
                         config.heartbeat_object, config.interval, config.grace)
            self._save()
            return fencer

    def cancel(self, ps_uuid: str) -> bool:
        """Stop and forget the fencer of ``ps_uuid``; False if there was none."""
        with self._lock:
            fencer = self._fencers.pop(ps_uuid, None)
            if fencer is not None:
                self._save()
        if fencer is None:
            return False
        fencer.stop()
        log.info("self-fencer for primary storage %s cancelled", ps_uuid)
        return True

    def get(self, ps_uuid: str) -> SelfFencer | None:
        return self._fencers.get(ps_uuid)

    def status(self) -> list[dict]:
        return [f.status() for f in list(self._fencers.values())]

    def close(self) -> None:
        """Stop the threads (the setups stay persisted for the next start)."""
        with self._lock:
            fencers = list(self._fencers.values())
            self._fencers.clear()
        for fencer in fencers:
            fencer.stop()

    def _start(self, config: FencerConfig) -> SelfFencer:
        fencer = SelfFencer(config, self.libvirt, self.last_contact, self.clock,
                            self.store_factory)
        self._fencers[config.ps_uuid] = fencer
        fencer.start()
        return fencer

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)  # the file holds cephx keys
        jsonfile.write(self.path, {p: f.config.to_json() for p, f in self._fencers.items()})
        os.chmod(self.path, 0o600)
