"""The Debian kernel for the test guest: fetched once with apt, cached by package version.

Installing a linux-image package rebuilds an initramfs (~26 s); downloading the .deb and
unpacking it with ``dpkg-deb -x`` takes ~4 s, and the cache makes later builds free. Only
the kernel and the modules the guest needs (plus their dependencies, read from each
module's ``.modinfo``, since the package ships no modules.dep) are kept.

The kernel is kept uncompressed: under TCG the guest spends ~3 s decompressing the xz
payload of vmlinuz, while qemu boots the ELF vmlinux directly through its PVH entry
point (``-kernel`` accepts either). Measured: qemu start -> DHCP lease 5.9 s -> 2.9 s.
"""

from __future__ import annotations

import lzma
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentlib.shell import CommandFailed, run

# Package names of the generic Debian 12 kernel; -rt and -cloud lack drivers we use.
PACKAGE_RE = re.compile(r"^linux-image-6\.1\.0-(\d+)-amd64$")
PACKAGE_GLOB = "linux-image-6.1.0-*-amd64"

# What the guest loads: virtio NICs/disks (virtio-scsi disks too) and the ACPI power
# button with evdev, so busybox acpid sees the button. Dependencies are added.
WANTED_MODULES = (
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "button",
    "evdev",
)


@dataclass(frozen=True)
class Kernel:
    package: str  # e.g. linux-image-6.1.0-56-amd64
    version: str  # package version, e.g. 6.1.192-2
    vmlinux: Path  # uncompressed ELF with a PVH entry point
    modules: tuple[Path, ...]  # .ko files in load order (dependencies first)


def fetch(cache_dir: Path, refresh: bool = False) -> Kernel:
    """The newest cached kernel; ask apt for the newest one if none is cached or ``refresh``.

    Without ``refresh`` no apt call is made once a kernel is cached: builds stay instant,
    offline and reproducible.
    """
    root = cache_dir / "kernel"
    if not refresh:
        cached = _newest_cached(root)
        if cached:
            return cached
    package, version = _newest_available()
    kdir = root / f"{package}_{version}"
    return _load(kdir, package, version) or _unpack(kdir, package, version)


def _newest_cached(root: Path) -> Kernel | None:
    found = []
    for kdir in root.glob("*_*"):
        package, _, version = kdir.name.partition("_")
        m = PACKAGE_RE.match(package)
        if m:
            found.append((int(m.group(1)), kdir, package, version))
    for _, kdir, package, version in sorted(found, reverse=True):
        kernel = _load(kdir, package, version)
        if kernel:
            return kernel
    return None


def _load(kdir: Path, package: str, version: str) -> Kernel | None:
    """The cached kernel in ``kdir``, or None if it is incomplete for WANTED_MODULES."""
    vmlinux = kdir / "vmlinux"
    builtin = kdir / "modules.builtin"
    if not vmlinux.exists() or not builtin.exists():
        return None
    try:
        mods = module_load_order(kdir / "modules", builtin.read_text().split())
    except KeyError:
        return None
    return Kernel(package, version, vmlinux, tuple(mods))


def _newest_available() -> tuple[str, str]:
    """(package, candidate version) of the highest ABI; ``apt-get update`` if lists are empty."""
    found = _candidates()
    if not found:
        run(["apt-get", "update"], timeout=600)
        found = _candidates()
    if not found:
        raise RuntimeError(f"apt knows no package matching {PACKAGE_GLOB}")
    return max(found, key=lambda pv: int(PACKAGE_RE.match(pv[0]).group(1)))


def _candidates() -> list[tuple[str, str]]:
    out = run(["apt-cache", "policy", PACKAGE_GLOB], timeout=120, check=False).stdout
    found, package = [], None
    for line in out.splitlines():
        if not line.startswith(" ") and line.endswith(":"):
            package = line[:-1] if PACKAGE_RE.match(line[:-1]) else None
        elif package and line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version != "(none)":
                found.append((package, version))
    return found


def _unpack(kdir: Path, package: str, version: str) -> Kernel:
    kdir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=kdir.parent, prefix=".unpack-") as tmp:
        work = Path(tmp)
        deb = _download(work, package, version)
        tree = work / "tree"
        run(["dpkg-deb", "-x", deb, tree], timeout=300)
        (moddir,) = (tree / "lib" / "modules").iterdir()
        builtin = _builtin_names(moddir / "modules.builtin")
        by_name = {_mod_name(p): p for p in moddir.rglob("*.ko")}
        staged = work / "staged"
        (staged / "modules").mkdir(parents=True)
        for path in _closure(by_name, builtin):
            shutil.copy2(path, staged / "modules" / path.name)
        vmlinuz = next((tree / "boot").glob("vmlinuz-*")).read_bytes()
        (staged / "vmlinux").write_bytes(extract_vmlinux(vmlinuz))
        (staged / "vmlinuz").write_bytes(vmlinuz)  # for boot loaders (guestdisk)
        (staged / "modules.builtin").write_text("\n".join(sorted(builtin)) + "\n")
        shutil.rmtree(kdir, ignore_errors=True)
        staged.rename(kdir)
    kernel = _load(kdir, package, version)
    if kernel is None:
        raise RuntimeError(f"unpacked {package} {version} into {kdir} but it is incomplete")
    return kernel


def vmlinuz(kernel: Kernel) -> Path:
    """The compressed bzImage of ``kernel``: a boot loader cannot load the ELF vmlinux.

    Unpacking keeps it; a kernel cached before that has none, so the package is
    downloaded again once (~4 s) and only the bzImage is kept.
    """
    path = kernel.vmlinux.parent / "vmlinuz"
    if not path.exists():
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".vmlinuz-") as tmp:
            work = Path(tmp)
            deb = _download(work, kernel.package, kernel.version)
            run(["dpkg-deb", "-x", deb, work / "tree"], timeout=300)
            found = next((work / "tree" / "boot").glob("vmlinuz-*"))
            found.rename(path)
    return path


def _download(work: Path, package: str, version: str) -> Path:
    argv = ["apt-get", "download", f"{package}={version}"]
    try:
        run(argv, timeout=600, cwd=str(work))
    except CommandFailed as exc:
        if "Unable to locate" not in str(exc) and "Can't find a source" not in str(exc):
            raise
        run(["apt-get", "update"], timeout=600)
        run(argv, timeout=600, cwd=str(work))
    (deb,) = work.glob(f"{package}_*.deb")
    return deb


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside an x86 bzImage (its payload, decompressed).

    The boot protocol header says where the payload is (payload_offset/_length at
    0x248, relative to the protected-mode code after the setup sectors).
    """
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start : start + length]
    if not payload.startswith(b"\xfd7zXZ\0"):  # Debian 12 kernels are xz-compressed
        raise RuntimeError(f"bzImage payload is not xz: starts {payload[:6]!r}")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    if not elf.startswith(b"\x7fELF"):
        raise RuntimeError("bzImage payload is not an ELF kernel")
    return elf


def _builtin_names(path: Path) -> set[str]:
    return {_mod_name(Path(line)) for line in path.read_text().split()}


def _mod_name(path: Path) -> str:
    return path.name.removesuffix(".ko").replace("-", "_")


def module_load_order(moddir: Path, builtin: list[str]) -> list[Path]:
    """WANTED_MODULES and their dependencies from ``moddir``, dependencies first.

    Raises KeyError naming a module that is neither in ``moddir`` nor built in.
    """
    by_name = {_mod_name(p): p for p in moddir.glob("*.ko")}
    return _closure(by_name, set(builtin))


def _closure(by_name: dict[str, Path], builtin: set[str]) -> list[Path]:
    order: list[Path] = []

    def visit(name: str) -> None:
        if name in builtin or by_name.get(name) in order:
            return
        path = by_name[name]  # KeyError: neither built in nor available
        for dep in modinfo(path.read_bytes()).get("depends", []):
            visit(dep.replace("-", "_"))
        order.append(path)

    for name in WANTED_MODULES:
        visit(name)
    return order


def modinfo(elf: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` section of a kernel module; ``depends`` split on commas.

    The package ships no modules.dep and the host may lack kmod, so read the ELF here.
    """
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, offset, size = section(i)
        if elf[str_off + name : elf.index(b"\0", str_off + name)] != b".modinfo":
            continue
        for entry in elf[offset : offset + size].split(b"\0"):
            key, sep, value = entry.decode(errors="replace").partition("=")
            if sep:
                values = [v for v in value.split(",") if v] if key == "depends" else [value]
                info.setdefault(key, []).extend(values)
    return info
