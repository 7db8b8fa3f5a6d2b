"""Start, record and stop the daemons devcluster runs — always by pid, never by name.

Every daemon is recorded in a registry file (pid + process start time) inside the
component's directory, so ``zfleet-devcluster down`` and test fixtures can stop exactly
what was started, and a recycled pid is never killed by mistake.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from agentlib import jsonfile


@dataclass
class Proc:
    """A daemon devcluster started: enough to find it again and prove it is the same one."""

    name: str
    pid: int
    argv: list[str]
    log: str
    create_time: float

    def alive(self) -> bool:
        return not is_dead(self.pid, self.create_time)


def is_dead(pid: int, create_time: float | None = None) -> bool:
    """True if ``pid`` is gone, a zombie, or a different process that reused the pid."""
    try:
        p = psutil.Process(pid)
        if create_time is not None and abs(p.create_time() - create_time) > 0.05:
            return True
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_dead(pid: int, timeout: float, create_time: float | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_dead(pid, create_time):
            return True
        time.sleep(0.02)
    return is_dead(pid, create_time)


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    subreaper: bool = False,
) -> Proc:
    """Start ``argv`` detached in its own session, output appended to ``log``.

    With ``subreaper=True`` the command runs under :mod:`devcluster.subreaper`, which
    reaps what the command orphans (libvirt orphans qemu) and takes it all down on stop.
    """
    if subreaper:
        argv = [sys.executable, "-m", "devcluster.subreaper", "--", *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    _reap_later(child)
    return Proc(name, child.pid, argv, str(log), psutil.Process(child.pid).create_time())


_children: list[subprocess.Popen] = []


def _reap_later(child: subprocess.Popen) -> None:
    """Keep the Popen so its zombie is collected by poll() instead of lingering."""
    _children.append(child)
    for c in list(_children):
        if c.poll() is not None:
            _children.remove(c)


def stop(proc: Proc, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL the process (and its session) if it is still there."""
    if proc.alive():
        _signal(proc, signal.SIGTERM)
        if not wait_dead(proc.pid, timeout, proc.create_time):
            _signal(proc, signal.SIGKILL)
            wait_dead(proc.pid, 5, proc.create_time)
    for c in list(_children):
        if c.pid == proc.pid:
            c.wait()
            _children.remove(c)


def _signal(proc: Proc, sig: int) -> None:
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


class Registry:
    """The daemons of one devcluster component, persisted as JSON next to its data."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> list[Proc]:
        return [Proc(**p) for p in jsonfile.read(self.path, [])]

    def add(self, proc: Proc) -> Proc:
        procs = [p for p in self.load() if p.name != proc.name] + [proc]
        self._save(procs)
        return proc

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop in reverse start order, so dependents go before what they depend on."""
        for proc in reversed(self.load()):
            stop(proc, timeout)
        self.path.unlink(missing_ok=True)

    def _save(self, procs: list[Proc]) -> None:
        jsonfile.write(self.path, [asdict(p) for p in procs])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_taken(host: str, port: int) -> str | None:
    """None if a server could listen on ``host:port`` now, else "port P on H is taken",
    naming the listener when it can be found (not in another network namespace).

    The trial bind sets SO_REUSEADDR, as every server does, so the TIME-WAIT sockets of
    a server stopped a moment ago do not count.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return None
        except OSError:
            pass
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and \
                conn.laddr.ip in (host, "0.0.0.0", "::") and conn.pid:
            try:
                name = psutil.Process(conn.pid).name()
                return f"port {port} on {host} is taken (held by {name} pid {conn.pid})"
            except psutil.NoSuchProcess:
                pass
    return f"port {port} on {host} is taken"


class DaemonDied(RuntimeError):
    """A watched daemon exited while we waited for something; says so with its log tail."""

    def __init__(self, proc: Proc, what: str):
        self.proc = proc
        super().__init__(f"{proc.name} (pid {proc.pid}) exited while waiting for {what}; "
                         f"last lines of {proc.log}:\n{log_tail(Path(proc.log))}")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05,
             watch: list[Proc] | tuple[Proc, ...] = ()):
    """Poll ``predicate`` until truthy and return its value.

    Raises TimeoutError naming ``what`` (and the predicate's last exception), or, at once,
    :class:`DaemonDied` if a daemon in ``watch`` exits meanwhile: a daemon that died at
    start should fail fast with its own words, not after the whole timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        for proc in watch:
            if not proc.alive():
                raise DaemonDied(proc, what)
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
            last_exc = exc
        if time.monotonic() > deadline:
            detail = f": {last_exc}" if last_exc else ""
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s{detail}")
        time.sleep(interval)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` of a daemon's log, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])
