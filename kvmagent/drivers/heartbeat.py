"""Storage heartbeats for VM HA: one small RADOS object a host rewrites every few seconds.

The self-fencer writes ``zfleet-ha-<host uuid>`` in a pool; a peer host reads it to tell
the coordinator whether the host still reaches its storage (the counter moves). The
handle is built from a conf dict (mon addresses and the cephx key, no ceph.conf on the
host) with librados' client timeouts, so no call blocks for longer than ``timeout``
(whole seconds: librados takes no fractions); after any failure the handle is dropped
and the next call connects afresh.

Usage from a Python shell::

    store = HeartbeatStore(RadosTarget("rbd", ("10.0.0.1:6789",), "admin", key))
    store.write(heartbeat_object(host_uuid), {"counter": 1})
    store.read(heartbeat_object(host_uuid))
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass, field

import rados

from agentlib.errors import AgentError
from agentlib.types import uuid_key

log = logging.getLogger(__name__)

OBJECT_PREFIX = "zfleet-ha-"
MSGR2_PORT = "3300"


class HeartbeatError(AgentError):
    """The heartbeat object could not be written or read; says what and why (no key)."""


@dataclass(frozen=True)
class RadosTarget:
    """A pool and how to reach its cluster."""

    pool: str
    mon_hosts: tuple[str, ...]  # "ip:port"
    user: str
    key: str = field(repr=False)  # base64 cephx key: a credential

    def conf(self, timeout: int) -> dict[str, str]:
        t = str(timeout)
        return {"mon_host": ",".join(_mon_addr(m) for m in self.mon_hosts), "key": self.key,
                "keyring": "", "client_mount_timeout": t, "rados_mon_op_timeout": t,
                "rados_osd_op_timeout": t}


def heartbeat_object(host_uuid: str) -> str:
    """The object name of a host's heartbeat: one name whichever way the uuid is spelt."""
    return OBJECT_PREFIX + uuid_key(host_uuid)


def whole_seconds(seconds: float) -> int:
    """librados' timeouts are whole seconds and 0 means none: at least 1."""
    return max(1, math.ceil(seconds))


class HeartbeatStore:
    """Writes and reads heartbeat objects in one pool; thread-safe, connects on demand."""

    def __init__(self, target: RadosTarget, timeout: float = 5):
        self.target = target
        self.timeout = whole_seconds(timeout)
        self._cluster: rados.Rados | None = None
        self._ioctx: rados.Ioctx | None = None
        self._lock = threading.Lock()

    def write(self, name: str, payload: dict) -> None:
        data = json.dumps(payload).encode()
        with self._lock:
            try:
                self._open().write_full(name, data)
            except rados.Error as exc:
                self._drop()
                raise HeartbeatError(f"writing {self.target.pool}/{name}: {_reason(exc)}"
                                     ) from None

    def read(self, name: str) -> dict | None:
        """The heartbeat's JSON, or None if there is no such object."""
        with self._lock:
            try:
                data = self._open().read(name, 4096)
            except rados.ObjectNotFound:
                return None
            except rados.Error as exc:
                self._drop()
                raise HeartbeatError(f"reading {self.target.pool}/{name}: {_reason(exc)}"
                                     ) from None
        try:
            body = json.loads(data)
            if isinstance(body, dict) and isinstance(body.get("counter"), int):
                return body
        except ValueError:
            pass
        raise HeartbeatError(f"{self.target.pool}/{name} is not a zfleet heartbeat "
                             f"({len(data)} bytes)")

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _open(self) -> rados.Ioctx:
        if self._ioctx is not None:
            return self._ioctx
        cluster = rados.Rados(rados_id=self.target.user, conf=self.target.conf(self.timeout))
        try:
            cluster.connect()
            self._ioctx = cluster.open_ioctx(self.target.pool)
        except rados.ObjectNotFound:
            cluster.shutdown()
            raise HeartbeatError(f"pool {self.target.pool} does not exist") from None
        except rados.Error:
            cluster.shutdown()
            raise
        self._cluster = cluster
        log.info("heartbeat store connected to pool %s (mons %s, client.%s)",
                 self.target.pool, ",".join(self.target.mon_hosts), self.target.user)
        return self._ioctx

    def _drop(self) -> None:
        ioctx, cluster, self._ioctx, self._cluster = self._ioctx, self._cluster, None, None
        if ioctx is not None:
            ioctx.close()
        if cluster is not None:
            cluster.shutdown()


def _mon_addr(mon: str) -> str:
    """``ip:port`` as librados' mon_host wants it: the protocol by port, so it does not try
    msgr v2 on a v1 port first (and log an error about it)."""
    return f"{'v2' if mon.rpartition(':')[2] == MSGR2_PORT else 'v1'}:{mon}"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
