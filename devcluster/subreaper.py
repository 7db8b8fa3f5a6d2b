"""A tiny parent for daemons that orphan their children (libvirtd orphans qemu).

It marks itself a child subreaper, runs the command, reaps every descendant that is
reparented to it at once (PID 1 here reaps only every ~2 s, which made a VM destroy
take 1.6 s instead of 0.24 s), forwards SIGTERM/SIGINT to the command, and when the
command exits it terminates whatever descendants are left, so stopping this one pid
stops the whole tree.

Usage: python -m devcluster.subreaper -- ARGV...
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _descendants() -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process().children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _reap() -> list[tuple[int, int]]:
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    main_pid = os.fork()
    if main_pid == 0:
        os.execvp(argv[0], argv)

    def forward(signum, _frame):
        try:
            os.kill(main_pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    rc = None
    while rc is None:
        for pid, status in _reap():
            if pid == main_pid:
                rc = os.waitstatus_to_exitcode(status)
        if rc is None:
            time.sleep(0.02)
    _terminate_leftovers()
    return rc if rc >= 0 else 128 - rc


def _terminate_leftovers(grace: float = 3.0) -> None:
    left = _descendants()
    for pid in left:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while _descendants() and time.monotonic() < deadline:
        _reap()
        time.sleep(0.02)
    for pid in _descendants():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while _descendants():
        _reap()
        time.sleep(0.02)
    _reap()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
