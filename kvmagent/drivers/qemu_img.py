"""qemu-img, driven with argv lists: image facts, creation, growth, conversion, rebase.

Every failure raises :class:`QemuImgError` carrying qemu-img's argv and stderr, so an
agent reply says exactly what qemu-img refused and why. Facts are read with
``--output=json``; reads that may meet an image a running VM holds use ``-U``
(force-share), while anything that writes takes qemu's image lock like qemu itself,
so it fails instead of corrupting a disk in use.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from agentlib import shell
from agentlib.errors import AgentError

QEMU_IMG = "qemu-img"
SECTOR = 512
COPY_TIMEOUT = None
"""Conversion and rebase copy data: as long as the storage needs, never cut short."""
_WRITE_LOCK_BYTE = 101  # qemu's QEMU_LOCK_PERM_BASE (100) + BLK_PERM_WRITE's bit (1)
_FLOCK = "hh4xqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid


class QemuImgError(AgentError):
    """qemu-img failed or refused; the message carries its stderr."""


@dataclass(frozen=True)
class ImageInfo:
    """One image and, through ``backing``, the rest of its backing chain."""

    filename: str
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None
    backing_format: str | None
    snapshots: tuple[str, ...]
    backing: ImageInfo | None

    @property
    def chain(self) -> list[ImageInfo]:
        """This image, then each backing image down to the base."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.backing
        return out


@dataclass(frozen=True)
class CheckResult:
    supported: bool
    corruptions: int = 0
    leaks: int = 0
    check_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.corruptions == 0 and self.check_errors == 0


def info(path: str | Path) -> ImageInfo:
    """Facts of ``path`` and its whole backing chain; ``-U``, so an image a running VM
    holds can be read too."""
    argv = [QEMU_IMG, "info", "--output=json", "--backing-chain", "-U"]
    layers = json.loads(_run([*argv, str(path)]).stdout)
    node = None
    for layer in reversed(layers):
        node = ImageInfo(
            filename=layer["filename"],
            format=layer["format"],
            virtual_size=layer["virtual-size"],
            actual_size=layer.get("actual-size", 0),
            backing_file=layer.get("full-backing-filename") or layer.get("backing-filename"),
            backing_format=layer.get("backing-filename-format"),
            snapshots=tuple(s["name"] for s in layer.get("snapshots", [])),
            backing=node,
        )
    return node


def in_use(path: str | Path) -> bool:
    """True if a process (a running VM, qemu-io, ...) has ``path`` open for writing.

    Read from qemu's own image lock without taking it: qemu holds an OFD lock on byte
    ``100 + bit`` of an image for each permission it holds (bit 1: write), and
    ``F_OFD_GETLK`` only asks whether such a lock exists. Probing with a locking open
    (``qemu-img info`` without ``-U``) would make a VM starting at that moment fail.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _WRITE_LOCK_BYTE, 1, 0)
        held = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe))[0]
    finally:
        os.close(fd)
    return held != fcntl.F_UNLCK


def create(path: str | Path, size: int, fmt: str = "qcow2") -> None:
    """A new empty image of ``size`` bytes (rounded up to a whole sector)."""
    _run([QEMU_IMG, "create", "-q", "-f", fmt, str(path), str(round_up(size))])


def create_with_backing(path: str | Path, backing: str | Path, backing_fmt: str) -> None:
    """A qcow2 overlay on ``backing``: its size and data, copy-on-write.

    ZStack's "create volume from cache" and the new top of an external snapshot.
    """
    _run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", backing_fmt,
          str(path)])


def resize(path: str | Path, size: int) -> int:
    """Grow ``path`` to ``size`` bytes (rounded up to a sector); returns the new virtual size.

    Shrinking loses the guest's data at the end of the disk, so it is refused.
    """
    current = info(path)
    wanted = round_up(size)
    if wanted < current.virtual_size:
        raise QemuImgError(f"refusing to shrink {path} from {current.virtual_size} to "
                           f"{wanted} bytes: volumes only grow")
    if wanted > current.virtual_size:
        _run([QEMU_IMG, "resize", "-q", "-f", current.format, str(path), str(wanted)])
    return wanted


def convert(src: str | Path, dst: str | Path, fmt: str = "qcow2") -> None:
    """Copy ``src`` with its whole backing chain into one standalone image ``dst``."""
    _run([QEMU_IMG, "convert", "-O", fmt, str(src), str(dst)], timeout=COPY_TIMEOUT)


def rebase(path: str | Path, backing: str | Path | None, backing_fmt: str | None = None) -> None:
    """Make ``backing`` the backing file of ``path`` (None: no backing file), copying
    into ``path`` whatever differs, so the guest sees the same data afterwards."""
    argv = [QEMU_IMG, "rebase", "-q", "-f", "qcow2", "-b", str(backing) if backing else ""]
    if backing:
        argv += ["-F", backing_fmt or info(backing).format]
    _run([*argv, str(path)], timeout=COPY_TIMEOUT)


def check(path: str | Path) -> CheckResult:
    """Consistency of an image's metadata; formats without checks (raw) are unsupported."""
    res = shell.run([QEMU_IMG, "check", "--output=json", str(path)], check=False)
    if res.rc == 63:  # "This image format does not support checks"
        return CheckResult(supported=False)
    if res.rc not in (0, 2, 3):  # 2: corruptions, 3: leaks
        raise QemuImgError(str(shell.CommandFailed(res)))
    facts = json.loads(res.stdout)
    return CheckResult(supported=True, corruptions=facts.get("corruptions", 0),
                       leaks=facts.get("leaks", 0), check_errors=facts.get("check-errors", 0))


def round_up(size: int) -> int:
    return -(-size // SECTOR) * SECTOR


def _run(argv: list[str], timeout: float | None = 60.0) -> shell.Result:
    try:
        return shell.run(argv, timeout=timeout)
    except shell.CommandFailed as exc:
        raise QemuImgError(str(exc)) from None
