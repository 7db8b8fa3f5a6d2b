"""The coordinator's clocks, each on its global config's interval: host pings (with the
failover check after each round), the expungers of VMs, volumes and images, and
garbage collection. Started by the app unless ``background`` is off (tests)."""

from __future__ import annotations

import logging
import threading

from coordinator.context import Context
from coordinator.services import gc, hosts, imagedeletion, vmdeletion, volumedeletion
from coordinator.services.failover import Failover

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, ctx: Context, failover: Failover):
        self.ctx = ctx
        self.failover = failover
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._every("host-ping", lambda: self.ctx.gconf.get("host", "ping.interval"),
                    lambda: (hosts.ping_all(self.ctx), self.failover.check()))
        self._every("vm-expunge", lambda: self.ctx.gconf.get("vm", "expungeInterval"),
                    lambda: vmdeletion.expunge_due(self.ctx))
        self._every("volume-expunge", lambda: self.ctx.gconf.get("volume", "expungeInterval"),
                    lambda: volumedeletion.expunge_due(self.ctx))
        self._every("image-expunge", lambda: self.ctx.gconf.get("image", "expungeInterval"),
                    lambda: imagedeletion.expunge_due(self.ctx))
        self._every("gc", lambda: self.ctx.gconf.get("gc", "interval"),
                    lambda: gc.run_all(self.ctx))

    def _every(self, name: str, interval, work) -> None:
        def loop() -> None:
            while not self._stop.wait(interval()):
                try:
                    work()
                except Exception:
                    log.exception("%s failed", name)
        t = threading.Thread(target=loop, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
