"""The agent's handle on its Ceph cluster: one cached librados connection that fails fast.

librados blocks, and by default waits forever for a dead mon or OSD. The client timeouts
(``client_mount_timeout``, ``rados_mon_op_timeout``, ``rados_osd_op_timeout``) make every
call fail within ``timeout`` seconds instead. Connecting costs a mon round trip plus
cephx (~10 ms), so one handle is shared by all commands (librados is thread-safe) and
dropped when a call times out or the connection breaks, or when ceph.conf changes: the
next command connects afresh, so an agent keeps working across a cluster restart or
rebuild without being restarted.

A cluster that stopped answering is remembered as down: commands that come while it is
(say, clones queued behind one another on one image's lock) fail at once with the first
failure's reason instead of each waiting ``timeout`` again, while one background thread
keeps reconnecting; the moment it gets through, commands use the cluster again. A command
thus waits for an unanswering cluster at most once, in its first step that finds it gone:
that step's error ends it (no retries), and its message says what did not answer, within
which timeout and after how long.

Usage from a Python shell::

    c = CephClient(Path("/etc/ceph/ceph.conf"))
    c.fsid(), c.capacity(), c.mons()
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rados
import rbd

from agentlib.errors import AgentError

log = logging.getLogger(__name__)

# errors after which the handle is not trusted any more (the cluster went away or changed)
_BROKEN = (rados.TimedOut, rados.ConnectionShutdown, rados.NotConnected, rbd.Timeout,
           rbd.ConnectionShutdown)


IDLE_SECONDS = 60.0  # stop reconnecting when no command asked for this long
RETRY_SECONDS = 1.0  # at most one connect attempt per second (a refusal can be instant)


class CephError(AgentError):
    """A Ceph operation failed; the message names the resource and Ceph's reason."""


class ClusterUnreachable(CephError):
    """No answer from the mons or OSDs within the configured timeout."""


@dataclass
class _Outage:
    """The cluster stopped answering at ``since`` (``wall`` for the message); ``reason``
    is the latest failure's message, which names the timeout."""

    since: float
    wall: float
    reason: str

    def message(self, conf_path: Path) -> str:
        at = time.strftime("%H:%M:%S", time.localtime(self.wall))
        return (f"the Ceph cluster of {conf_path} has not answered since {at} "
                f"({time.monotonic() - self.since:.1f}s): {self.reason}; failed at once, "
                "without waiting again, while the agent reconnects in the background")


@dataclass(frozen=True)
class Mon:
    name: str
    addr: str  # "ip:port" of its msgr v1 endpoint (what ZStack's monAddr means)
    addrs: tuple[str, ...]  # every address in its addrvec ("v2:ip:port", "v1:ip:port")


class CephClient:
    def __init__(self, conf_path: Path, user: str = "admin", timeout: int = 10):
        self.conf_path = Path(conf_path)
        self.user = user
        self.timeout = timeout
        self._cluster: rados.Rados | None = None
        self._conf_stamp: float | None = None
        self._down: _Outage | None = None
        self._reconnecting = False  # the background reconnect thread runs
        self._asked = 0.0  # when a command last wanted the cluster (monotonic)
        self._closed = False
        self._lock = threading.Lock()

    # -- the connection ------------------------------------------------------------

    def cluster(self) -> rados.Rados:
        """The shared connected handle, connecting first if there is none or if ceph.conf
        changed since (new mons, a rebuilt cluster): one stat() a call.

        While the cluster is down (see :meth:`_lost`) and being reconnected in the
        background, this fails at once; commands that waited while another one's connect
        attempt failed get its error at once too.
        """
        with self._lock:
            self._asked = time.monotonic()
            stamp = _mtime(self.conf_path)
            if stamp != self._conf_stamp and (self._cluster is not None or self._down):
                log.info("%s changed: reconnecting", self.conf_path)
                if self._cluster is not None:
                    self._cluster.shutdown()
                    self._cluster = None
                self._down = None  # another cluster: try it now
            if self._cluster is None:
                if self._down is not None and self._reconnecting:
                    raise ClusterUnreachable(self._down.message(self.conf_path))
                try:
                    self._cluster = self._connect()
                except ClusterUnreachable as exc:
                    self._mark_down(str(exc))
                    raise
                self._conf_stamp = stamp
                self._down = None
            return self._cluster

    def _connect(self) -> rados.Rados:
        if not self.conf_path.is_file():
            raise CephError(f"ceph.conf {self.conf_path} does not exist (--ceph-conf)")
        t = str(self.timeout)
        started = time.monotonic()
        try:
            handle = rados.Rados(rados_id=self.user, conffile=str(self.conf_path), conf={
                "client_mount_timeout": t, "rados_mon_op_timeout": t,
                "rados_osd_op_timeout": t})
        except rados.Error as exc:
            raise CephError(f"cannot read {self.conf_path}: {_reason(exc)}") from None
        try:
            handle.connect()
        except rados.Error as exc:
            handle.shutdown()
            raise ClusterUnreachable(
                f"cannot connect to the Ceph cluster of {self.conf_path} as client.{self.user} "
                f"within {self.timeout}s (gave up after {time.monotonic() - started:.1f}s: "
                f"{_reason(exc)})") from None
        log.info("connected to Ceph cluster %s (%s, client.%s) in %.3fs", handle.get_fsid(),
                 self.conf_path, self.user, time.monotonic() - started)
        return handle

    def reset(self) -> None:
        """Drop the handle (the next call connects again)."""
        with self._lock:
            handle, self._cluster = self._cluster, None
        if handle is not None:
            log.warning("dropping the Ceph connection; the next command reconnects")
            handle.shutdown()

    def close(self) -> None:
        """Drop the handle and stop reconnecting (the agent stops)."""
        with self._lock:
            self._closed = True
            self._down = None
        self.reset()

    def _lost(self, reason: str) -> ClusterUnreachable:
        """A step found the cluster unanswering: drop the handle, remember it as down."""
        self.reset()
        with self._lock:
            self._mark_down(reason)
        return ClusterUnreachable(reason)

    def _mark_down(self, reason: str) -> None:
        """Record (with the lock held) that the cluster does not answer, and make sure one
        thread is reconnecting, so later commands fail at once rather than wait again."""
        if self._down is None:
            self._down = _Outage(time.monotonic(), time.time(), reason)
            log.warning("Ceph cluster of %s unreachable (%s): failing commands at once "
                        "while reconnecting in the background", self.conf_path, reason)
        if not self._reconnecting and not self._closed:
            self._reconnecting = True
            threading.Thread(target=self._reconnect, name="ceph-reconnect",
                             daemon=True).start()

    def _reconnect(self) -> None:
        """Connect again and again (each attempt waits up to ``timeout`` for a mon, so it
        gets through as soon as one answers) until it works, ceph.conf changes, the agent
        closes, or no command asked for the cluster for :data:`IDLE_SECONDS` (the next
        one then connects itself)."""
        while True:
            with self._lock:
                if (self._down is None or self._cluster is not None or self._closed
                        or time.monotonic() - self._asked > IDLE_SECONDS):
                    self._reconnecting = False
                    return
                stamp = _mtime(self.conf_path)
            started = time.monotonic()
            try:
                handle = self._connect()
            except CephError as exc:
                with self._lock:
                    if self._down is not None:
                        self._down.reason = str(exc)
                time.sleep(max(0.0, RETRY_SECONDS - (time.monotonic() - started)))
                continue
            with self._lock:
                if self._down is not None and self._cluster is None and not self._closed:
                    log.warning("Ceph cluster of %s answers again after %.1fs down",
                                self.conf_path, time.monotonic() - self._down.since)
                    self._cluster, self._conf_stamp, handle = handle, stamp, None
                    self._down = None
                self._reconnecting = False
            if handle is not None:  # a command connected first, or the agent closed
                handle.shutdown()
            return

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn librados/librbd errors into a :class:`CephError` starting with ``what``
        (and drop the handle when the cluster stopped answering)."""
        started = time.monotonic()
        try:
            yield
        except _BROKEN as exc:
            raise self._lost(f"{what}: no answer from the Ceph cluster within "
                             f"{self.timeout:g}s (gave up after "
                             f"{time.monotonic() - started:.1f}s: {_reason(exc)})") from None
        except (rados.Error, rbd.Error) as exc:
            raise CephError(f"{what}: {_reason(exc)}") from None

    @contextmanager
    def ioctx(self, pool: str) -> Iterator[rados.Ioctx]:
        """An I/O context on ``pool``; a missing pool is an error naming it."""
        cluster = self.cluster()
        with self.guard(f"pool {pool}"):
            try:
                ioctx = cluster.open_ioctx(pool)
            except rados.ObjectNotFound:
                raise CephError(f"pool {pool} does not exist") from None
        try:
            yield ioctx
        finally:
            ioctx.close()

    def mon_command(self, prefix: str, **args: Any) -> Any:
        """Run a mon command and return its JSON answer; a timeout is a clear error."""
        cluster = self.cluster()
        started = time.monotonic()
        with self.guard(f"ceph {prefix}"):
            ret, out, err = cluster.mon_command(
                json.dumps({"prefix": prefix, "format": "json", **args}), b"")
        if ret == -errno.ETIMEDOUT:
            raise self._lost(f"ceph {prefix}: no answer from the mons within "
                             f"{self.timeout:g}s (gave up after "
                             f"{time.monotonic() - started:.1f}s)")
        if ret != 0:
            raise CephError(f"ceph {prefix}: {err or errno.errorcode.get(-ret, ret)}")
        return json.loads(out) if out else None

    # -- what every reply carries --------------------------------------------------

    def fsid(self) -> str:
        cluster = self.cluster()
        with self.guard("fsid"):
            return cluster.get_fsid()

    def capacity(self) -> tuple[int, int]:
        """(total, available) bytes of the cluster's raw capacity."""
        cluster = self.cluster()
        with self.guard("cluster capacity"):
            stats = cluster.get_cluster_stats()
        return stats["kb"] * 1024, stats["kb_avail"] * 1024

    def mons(self) -> list[Mon]:
        """The mons in the cluster's current monmap (``ceph mon dump``)."""
        dump = self.mon_command("mon dump")
        mons = []
        for m in dump["mons"]:
            vec = m.get("public_addrs", {}).get("addrvec", [])
            addrs = tuple(f"{a['type']}:{a['addr']}" for a in vec)
            v1 = next((a["addr"] for a in vec if a["type"] == "v1"), None)
            mons.append(Mon(m["name"], v1 or m["addr"].split("/")[0], addrs))
        return mons

    def user_key(self) -> str:
        """The cephx key of the agent's own client (for the hosts' libvirt secrets)."""
        return self.mon_command("auth get-key", entity=f"client.{self.user}")["key"]

    # -- pools ---------------------------------------------------------------------

    def pool_exists(self, pool: str) -> bool:
        cluster = self.cluster()
        with self.guard(f"pool {pool}"):
            return cluster.pool_exists(pool)

    def ensure_pool(self, pool: str) -> bool:
        """Create ``pool`` for RBD if it is missing; True if this call created it."""
        cluster = self.cluster()
        with self.guard(f"create pool {pool}"):
            try:
                cluster.create_pool(pool)
            except rados.ObjectExists:
                return False
        with self.ioctx(pool) as ioctx, self.guard(f"rbd pool init {pool}"):
            rbd.RBD().pool_init(ioctx, False)  # without it: POOL_APP_NOT_ENABLED
        log.info("created pool %s", pool)
        return True

    def missing_pools(self, pools: list[str]) -> list[str]:
        return [p for p in pools if not self.pool_exists(p)]

    def write_probe(self, pool: str, name: str) -> None:
        """Write a small object to ``pool``: proves mons, OSDs and caps allow writing."""
        with self.ioctx(pool) as ioctx, self.guard(f"write a test object to pool {pool}"):
            ioctx.write_full(name, f"zfleet cephagent ping {time.time():.3f}".encode())


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _reason(exc: Exception) -> str:
    """librados' messages are like '[errno 2] RADOS object not found (error opening pool
    'x')': keep them, they say what was being done."""
    return str(exc) or type(exc).__name__
