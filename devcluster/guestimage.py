"""The smallest useful test guest: a Debian kernel plus a busybox-static initramfs.

Booted with ``-kernel/-initrd/-append`` (qemu or libvirt ``<os><kernel>``), the guest
runs DHCP on every NIC, fetches EC2-style metadata, reports hot-plugged disks and NICs
and powers off on the ACPI power button, printing each fact on the serial console in the
formats of :mod:`devcluster.guestconsole` (re-exported here; read a log with
:func:`parse_console`). Both files are cached in ``cache_dir``: the kernel by package
version, the initramfs by a hash of its contents, so a second build costs milliseconds.

CLI: ``python -m devcluster.guestimage build --cache-dir DIR [--refresh]``.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import os
import stat
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentlib.shell import run
from devcluster import guestinit, guestkernel
from devcluster.guestconsole import (
    DISK,
    HOTPLUG,
    LEASE,
    LEASE_FAIL,
    METADATA,
    METADATA_ERROR,
    NIC,
    POWEROFF,
    READY,
    RESIZE,
    UNPLUG,
    ConsoleReport,
    parse_console,
    parse_line,
)

__all__ = [
    "CMDLINE", "MIN_MEMORY_MIB", "GuestImage", "build", "locked_cache", "main",
    # the serial console's line formats and their parser, from devcluster.guestconsole
    "DISK", "HOTPLUG", "LEASE", "LEASE_FAIL", "METADATA", "METADATA_ERROR", "NIC",
    "POWEROFF", "READY", "RESIZE", "UNPLUG", "ConsoleReport", "parse_console", "parse_line",
]  # fmt: skip

# no_timer_check: without it 1 of 10 concurrent TCG guests stalled at boot.
# quiet: kernel messages (e.g. on hot-plug) could split a ZFLEET line; boot time is the same.
CMDLINE = "console=ttyS0 no_timer_check quiet"
# Measured floor is 96 MiB (64 hangs, 80 panics out of memory at boot); 128 has margin.
MIN_MEMORY_MIB = 128
BUSYBOX = Path("/bin/busybox")  # from busybox-static: the guest has no libc


@dataclass(frozen=True)
class GuestImage:
    kernel: Path  # uncompressed ELF vmlinux: qemu boots it via PVH, ~3 s faster under TCG
    initrd: Path
    cmdline: str


def build(cache_dir: Path, refresh: bool = False) -> GuestImage:
    """Kernel and initramfs in ``cache_dir``, made only if not cached yet.

    ``refresh`` asks apt for a newer kernel; otherwise a cached kernel is used as is.
    Safe to call from several processes at once (a lock file serialises them).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked_cache(cache_dir):
        kernel = guestkernel.fetch(cache_dir, refresh)
        archive = _cpio(_entries(kernel))
        initrd = cache_dir / f"initrd-{hashlib.sha256(archive).hexdigest()[:16]}.cpio.gz"
        if not initrd.exists():
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(gzip.compress(archive, compresslevel=6, mtime=0))
            os.replace(tmp, initrd)
    return GuestImage(kernel.vmlinux, initrd, CMDLINE)


@contextmanager
def locked_cache(cache_dir: Path) -> Iterator[None]:
    """Hold the cache's lock: what is built from the guest build (guestdisk) takes it too.

    Not reentrant: a process holding it must not call :func:`build`.
    """
    with open(cache_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# (path in the guest, mode, content or symlink target, (rdev major, rdev minor))
_Entry = tuple[str, int, bytes, tuple[int, int]]


def _entries(kernel: guestkernel.Kernel) -> list[_Entry]:
    """Everything in the initramfs, sorted so that every directory precedes its content."""
    busybox = BUSYBOX.read_bytes()
    if _has_interp(busybox):
        raise RuntimeError(f"{BUSYBOX} is dynamically linked: install busybox-static")
    files: dict[str, tuple[int, bytes]] = {"/bin/busybox": (0o755, busybox)}
    applets = run([str(BUSYBOX), "--list-full"], timeout=30).stdout.split()
    for applet in applets:
        files.setdefault("/" + applet, (stat.S_IFLNK | 0o777, b"/bin/busybox"))
    for path, text in guestinit.scripts().items():
        files[path] = (0o755, text.encode())
    for ko in kernel.modules:
        files[f"/lib/modules/{ko.name}"] = (0o644, ko.read_bytes())
    names = "".join(f"{ko.name}\n" for ko in kernel.modules)
    files[guestinit.MODULE_LIST] = (0o644, names.encode())

    dirs = {"/proc", "/sys", "/dev", "/run", "/tmp", "/var/log", "/root"}
    for path in list(files) + list(dirs):
        parent = os.path.dirname(path)
        while parent != "/":
            dirs.add(parent)
            parent = os.path.dirname(parent)
    entries: list[_Entry] = [(d, stat.S_IFDIR | 0o755, b"", (0, 0)) for d in dirs]
    for path, (mode, data) in files.items():
        mode = mode if stat.S_IFMT(mode) else stat.S_IFREG | mode
        entries.append((path, mode, data, (0, 0)))
    # The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs.
    entries.append(("/dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)))
    return sorted(entries)


def _has_interp(elf: bytes) -> bool:
    """True if the ELF64 binary names a dynamic loader (a PT_INTERP program header)."""
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


def _cpio(entries: list[_Entry]) -> bytes:
    """A deterministic cpio "newc" archive (uid/gid 0, mtime 0), as the kernel unpacks it."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    def add(ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        out.extend(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded)
        pad()
        out.extend(data)
        pad()

    for ino, (path, mode, data, rdev) in enumerate(entries, start=1):
        add(ino, path.lstrip("/"), mode, data, rdev)
    add(0, "TRAILER!!!", 0, b"", (0, 0))
    return bytes(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.guestimage",
        description="Build (or find in the cache) the tiny test guest's kernel and initramfs.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build; print kernel=, initrd=, cmdline=, min_memory_mib=")
    b.add_argument("--cache-dir", type=Path, required=True, help="where kernels/initrds live")
    b.add_argument("--refresh", action="store_true", help="ask apt for a newer kernel")
    args = parser.parse_args(argv)
    image = build(args.cache_dir, refresh=args.refresh)
    print(f"kernel={image.kernel}\ninitrd={image.initrd}\ncmdline={image.cmdline}")
    print(f"min_memory_mib={MIN_MEMORY_MIB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
