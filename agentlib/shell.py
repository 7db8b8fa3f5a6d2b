"""Run external commands from argv lists only — never a shell string.

A failure raises :class:`CommandFailed` carrying the argv, exit code, stdout and stderr,
so an agent's error reply tells the operator exactly what ran and what it said.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Result:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float


class CommandFailed(Exception):
    """A command exited non-zero, timed out, or could not be started."""

    def __init__(self, result: Result, reason: str = ""):
        self.result = result
        cmd = shlex.join(result.argv)
        detail = reason or f"exit code {result.rc}"
        err = (result.stderr or result.stdout).strip()
        super().__init__(f"`{cmd}` failed ({detail})" + (f": {err[-2000:]}" if err else ""))


def run(
    argv: Sequence[str | int],
    *,
    timeout: float | None = 60.0,
    check: bool = True,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> Result:
    """Run ``argv`` and wait; raise :class:`CommandFailed` on non-zero exit if ``check``."""
    if isinstance(argv, str | bytes):
        raise TypeError("shell.run takes an argv list, not a string")
    args = [str(a) for a in argv]
    text = not isinstance(input, bytes)
    started = time.monotonic()
    log.debug("run: %s", shlex.join(args))
    try:
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        res = Result(args, -1, _s(exc.stdout), _s(exc.stderr), time.monotonic() - started)
        raise CommandFailed(res, f"timed out after {timeout}s") from None
    except OSError as exc:
        res = Result(args, -1, "", str(exc), time.monotonic() - started)
        raise CommandFailed(res, "could not start") from None
    elapsed = time.monotonic() - started
    res = Result(args, proc.returncode, _s(proc.stdout), _s(proc.stderr), elapsed)
    if check and proc.returncode != 0:
        raise CommandFailed(res)
    return res


def _s(v: str | bytes | None) -> str:
    if v is None:
        return ""
    return v.decode(errors="replace") if isinstance(v, bytes) else v
