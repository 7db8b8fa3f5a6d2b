"""The test guest as a bootable disk image: what a cloud stores as an image and clones.

Direct kernel boot (:mod:`devcluster.guestimage`) needs the kernel on the qemu command
line; a cloud image boots by itself. This disk holds the same guest: Debian's compressed
kernel (a boot loader cannot load the ELF vmlinux direct boot uses), the same initramfs
and command line, so the guest prints the same ZFLEET-* lines on ttyS0.

Layout: an MBR (syslinux's boot code, one active partition at 1 MiB) and a FAT partition
with SYSLINUX, the kernel and the initramfs. It is made without mounting anything or any
loop device: ``sfdisk``, ``mkfs.vfat --offset``, ``mcopy -i FILE@@OFFSET`` and ``syslinux
--offset`` all work on an image file. SYSLINUX rather than GRUB because grub-install
needs a block device, and rather than ext4 + extlinux because extlinux needs a mount.
The partition is just big enough (free space costs nothing: a root volume cloned from
the image can be larger). Raw and qcow2 are cached next to the guest build, named by a
hash of everything they are built from, under the guest build's lock; the same inputs
give the same bytes (fixed ids and file dates), so an image's checksum is stable.

CLI: ``python -m devcluster.guestdisk build --cache-dir DIR [--refresh]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentlib.shell import run
from devcluster import guestimage, guestkernel
from devcluster.kvmhost import GUEST_CACHE

LAYOUT = "mbr-fat-syslinux-2"  # bump when the layout below changes: it is in the cache key
SECTOR = 512
MIB = 1 << 20
PART_START = MIB  # 1 MiB alignment, as partitioning tools default to
SYSLINUX = Path("/usr/bin/syslinux")  # the mtools installer: works on an image file
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
MBR_CODE = 440  # bytes of boot code before the disk signature and partition table
SLACK = MIB  # room in the FAT for its tables, the directory and ldlinux.sys/.c32 (~180 KiB)


@dataclass(frozen=True)
class GuestDisk:
    raw: Path
    qcow2: Path
    size: int  # virtual size of both, bytes
    vmlinuz: Path  # the compressed kernel on the disk, cached (also bootable with -kernel)


def syslinux_cfg(cmdline: str) -> str:
    """Boot the one entry at once; SERIAL puts SYSLINUX's own messages on ttyS0 too."""
    return (
        "SERIAL 0 115200\nDEFAULT guest\nPROMPT 0\nTIMEOUT 0\n"
        f"LABEL guest\n  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND {cmdline}\n"
    )


def build(cache_dir: Path, refresh: bool = False) -> GuestDisk:
    """The bootable disk of the test guest in ``cache_dir``, made only if not cached yet.

    ``refresh`` is passed to :func:`devcluster.guestimage.build` (a newer kernel).
    """
    cache_dir = Path(cache_dir)
    image = guestimage.build(cache_dir, refresh)  # takes and releases the cache lock
    with guestimage.locked_cache(cache_dir):
        kernel = guestkernel.fetch(cache_dir)  # the cached one build() just used: no apt
        if kernel.vmlinux != image.kernel:
            raise RuntimeError(f"kernel changed under us: {kernel.vmlinux} != {image.kernel}")
        vmlinuz = guestkernel.vmlinuz(kernel)
        cfg = syslinux_cfg(image.cmdline)
        size = disk_size(vmlinuz.stat().st_size + image.initrd.stat().st_size + len(cfg))
        key = hashlib.sha256("\0".join([
            LAYOUT, str(size), vmlinuz.parent.name, image.initrd.name, cfg,
            hashlib.sha256(SYSLINUX.read_bytes() + MBR_BIN.read_bytes()).hexdigest(),
        ]).encode()).hexdigest()[:16]  # fmt: skip
        disk = GuestDisk(cache_dir / f"disk-{key}.raw", cache_dir / f"disk-{key}.qcow2", size,
                         vmlinuz)
        if not disk.raw.exists():
            tmp = disk.raw.with_suffix(".raw.tmp")
            _make_raw(tmp, size, vmlinuz, image.initrd, cfg)
            os.replace(tmp, disk.raw)
        if not disk.qcow2.exists():
            tmp = disk.qcow2.with_suffix(".qcow2.tmp")
            run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk.raw, tmp], timeout=60)
            os.replace(tmp, disk.qcow2)
    return disk


def disk_size(content: int) -> int:
    """Bytes of disk for ``content`` bytes of files: 1 MiB before the partition, the
    files plus SLACK, rounded up to whole MiB."""
    return PART_START + -(-(content + SLACK) // MIB) * MIB


def _make_raw(path: Path, size: int, vmlinuz: Path, initrd: Path, cfg: str) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
    start = PART_START // SECTOR
    # type e: FAT16 with LBA; the fixed label-id and volume id keep the bytes reproducible
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path], timeout=30,
        input=f"label: dos\nlabel-id: 0x7a666c74\nstart={start}, type=e, bootable\n")
    # no label: mkfs.vfat would date its directory entry now
    run(["mkfs.vfat", "--offset", start, "-i", "7a666c74", path, (size - PART_START) // 1024],
        timeout=30)
    fat = f"{path}@@{PART_START}"
    # no geometry checks on an image file; files dated 2020-01-01: the same inputs give
    # the same bytes
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "SOURCE_DATE_EPOCH": "1577836800"}
    with tempfile.TemporaryDirectory(prefix="zfleet-disk-") as tmp:
        cfg_file = Path(tmp) / "syslinux.cfg"
        cfg_file.write_text(cfg)
        for src, name in ((vmlinuz, "vmlinuz"), (initrd, "initrd.gz"), (cfg_file, "syslinux.cfg")):
            run(["mcopy", "-i", fat, src, f"::{name}"], env=env, timeout=60)
    run([SYSLINUX, "--install", "--offset", PART_START, path], env=env, timeout=60)
    with open(path, "r+b") as f:  # the MBR's boot code jumps to the active partition
        f.write(MBR_BIN.read_bytes()[:MBR_CODE])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.guestdisk",
        description="Build (or find in the cache) the test guest as a bootable disk image "
        "(raw and qcow2: MBR, FAT, SYSLINUX, the guest's kernel and initramfs).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build; print raw=, qcow2=, size=, vmlinuz=")
    b.add_argument("--cache-dir", type=Path, default=GUEST_CACHE,
                   help="where the guest build lives (default: %(default)s)")
    b.add_argument("--refresh", action="store_true", help="ask apt for a newer kernel")
    args = parser.parse_args(argv)
    disk = build(args.cache_dir, refresh=args.refresh)
    print(f"raw={disk.raw}\nqcow2={disk.qcow2}\nsize={disk.size}\nvmlinuz={disk.vmlinuz}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
