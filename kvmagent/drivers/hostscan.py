"""A peer's view of a host the coordinator lost: does its agent answer, and does its
storage heartbeat still move?

The coordinator asks another host (``/ha/scanhost``) before restarting a lost host's HA
VMs. "Stale" (the heartbeat object is there and its counter did not move for a whole
window) is the evidence that the host stopped writing: only counters are compared, never
the clocks of two hosts. Anything this host cannot judge (no object, no cluster, the
object vanished, the last read failed) is "Missing" with the reason.

Usage from a Python shell::

    scan_host(RadosTarget("rbd", ("10.0.0.1:6789",), "admin", key), host_uuid,
              "10.0.0.7", 7070, window=30, interval=1)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvmagent.drivers.heartbeat import (
    HeartbeatError,
    HeartbeatStore,
    RadosTarget,
    heartbeat_object,
)

CONNECT_TIMEOUT = 1.0
PROBES = 3  # TCP connects spread over the window, until one succeeds


@dataclass(frozen=True)
class HeartbeatWatch:
    state: str  # "Alive" | "Stale" | "Missing"
    counter: int | None = None
    time: float | None = None  # the writer's clock: informational
    error: str = ""


@dataclass(frozen=True)
class HostScan:
    reachable: bool
    heartbeat: HeartbeatWatch


def tcp_reachable(ip: str, port: int, timeout: float = CONNECT_TIMEOUT) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def watch_heartbeat(store: HeartbeatStore, name: str, window: float, interval: float,
                    check_cancelled: Callable[[], None] = lambda: None,
                    clock: Callable[[], float] = time.monotonic) -> HeartbeatWatch:
    """Read heartbeat ``name`` every ``interval`` until its counter moves ("Alive", at
    once) or stays put for ``window`` seconds from the first read ("Stale"). Without any
    good read within ``window`` it is "Missing" (so a scan takes at most 2 windows)."""
    started = clock()
    first: dict | None = None
    first_at = 0.0
    missing_seen = False
    error = ""
    while True:
        check_cancelled()
        try:
            body = store.read(name)
            failed = False
        except HeartbeatError as exc:
            body, failed, error = None, True, str(exc)
        now = clock()
        if body is not None:
            if first is None and missing_seen:
                return _seen("Alive", body)  # it appeared: someone writes it
            if first is None:
                first, first_at = body, now
            elif body["counter"] != first["counter"]:
                return _seen("Alive", body)
            if now - first_at >= window:
                return _seen("Stale", body)
        elif not failed:
            if first is not None:
                return HeartbeatWatch("Missing", error=f"{store.target.pool}/{name} "
                                                       "disappeared during the window")
            missing_seen = True
            error = f"no heartbeat object {name} in pool {store.target.pool}"
        end = (first_at if first is not None else started) + window
        if now >= end:
            return HeartbeatWatch("Missing", error=error)
        time.sleep(min(interval, end - now))


def scan_host(target: RadosTarget, host_uuid: str, ip: str, port: int, window: float,
              interval: float, check_cancelled: Callable[[], None] = lambda: None
              ) -> HostScan:
    """Probe the host's agent port (in a thread, a few times over the window) while
    watching its heartbeat."""
    reachable = threading.Event()
    done = threading.Event()

    def probe() -> None:
        for _ in range(PROBES):
            if tcp_reachable(ip, port):
                reachable.set()
                return
            if done.wait(window / PROBES):
                return

    prober = threading.Thread(target=probe, name=f"scan-{ip}", daemon=True)
    prober.start()
    store = HeartbeatStore(target, timeout=min(interval, window))
    try:
        watch = watch_heartbeat(store, heartbeat_object(host_uuid), window, interval,
                                check_cancelled)
    finally:
        store.close()
        done.set()
    prober.join(CONNECT_TIMEOUT + 0.5)
    return HostScan(reachable.is_set(), watch)


def _seen(state: str, body: dict) -> HeartbeatWatch:
    stamp = body.get("time")
    return HeartbeatWatch(state, body["counter"],
                          float(stamp) if isinstance(stamp, int | float) else None)
