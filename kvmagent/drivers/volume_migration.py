"""Copy local storage volumes, with their backing chains, to another host over ssh.

ZStack's external snapshots and image cache are backing files of a volume, so a volume
moves with its whole chain ("snapshots are migrated with the volume"). Each file goes
to a temporary name on the destination and is compared by sha256 with the source; its
backing reference is then pointed at the destination's copy (``qemu-img rebase -u``:
only the header changes). Only when every file is there and verified are they renamed
into place, base first, and the destination's chain is read back with qemu-img. Any
failure removes every file and directory the migration made there; the source is never
changed. A base file already on the destination with the same bytes (an image cache
shared by several volumes) is reused, not copied; anything else in the way is refused.

ZStack's rules are checked against libvirt first: a root volume moves only
while its VM is stopped, a data volume only while no VM has it attached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import libvirt

from agentlib.errors import AgentError
from agentlib.ssh import Remote, SshError
from kvmagent.drivers import qemu_img
from kvmagent.drivers.filestorage import FileStorage

log = logging.getLogger(__name__)

MIB = 1 << 20
_CHUNK = 4 * MIB


class MigrationError(AgentError):
    """A volume cannot be, or was not, migrated; nothing is left on the destination."""


@dataclass
class ChainFile:
    """One file of a volume's chain and where it goes."""

    src: Path
    dst: PurePosixPath
    dst_root: PurePosixPath
    format: str
    virtual_size: int
    backing_dst: PurePosixPath | None
    backing_format: str | None
    size: int
    sha256: str = ""
    seconds: float = 0.0
    reused: bool = False
    tmp: PurePosixPath | None = None


@dataclass(frozen=True)
class Volume:
    """A volume to move: its real path in its storage, and where to."""

    storage: FileStorage
    top: Path
    dst_root: PurePosixPath
    dst_top: PurePosixPath | None = None


@dataclass
class Plan:
    files: list[ChainFile]
    """Every file to move, each after its backing file."""
    chains: list[list[ChainFile]] = field(default_factory=list)
    """Per volume: its chain, top first."""


def plan(volumes: list[Volume]) -> Plan:
    """The files of every volume's chain and their destination paths: the same path
    relative to the destination root (the volume's own file may be given another)."""
    files: dict[Path, ChainFile] = {}
    chains = []
    for vol in volumes:
        layers = vol.storage.info(vol.top).chain  # refuses backing files outside the root
        srcs = [Path(os.path.realpath(layer.filename)) for layer in layers]
        dsts = [vol.dst_root / p.relative_to(vol.storage.real_root) for p in srcs]
        if vol.dst_top is not None:
            dsts[0] = vol.dst_top
        chain = []
        for i, layer in enumerate(layers):
            below = layers[i + 1] if i + 1 < len(layers) else None
            if below is not None and layer.format != "qcow2":
                raise MigrationError(f"{srcs[i]} is {layer.format} with a backing file: only "
                                     "qcow2 files with backing files can be migrated")
            chain.append(ChainFile(
                src=srcs[i], dst=dsts[i], dst_root=vol.dst_root, format=layer.format,
                virtual_size=layer.virtual_size, backing_dst=dsts[i + 1] if below else None,
                backing_format=below.format if below else None, size=srcs[i].stat().st_size,
            ))
        for f in reversed(chain):
            known = files.setdefault(f.src, f)
            if known.dst != f.dst:
                raise MigrationError(f"{f.src} would go to both {known.dst} and {f.dst}")
        chains.append([files[f.src] for f in chain])
    ordered = list(files.values())
    dsts = [str(f.dst) for f in ordered]
    for path in [str(f.src) for f in ordered] + dsts:
        if "\n" in path or "\x00" in path:
            raise MigrationError(f"refusing a path with a newline or NUL: {path!r}")
    if len(set(dsts)) != len(dsts):
        raise MigrationError(f"two files would go to the same destination path: {dsts}")
    return Plan(ordered, chains)


def refuse_in_use(conn: libvirt.virConnect, tops: list[Path], vm_uuid: str | None,
                  volume_type: str | None) -> None:
    """ZStack's rules: a root volume's VM must be stopped; a data volume detached.
    Any volume a running domain has as a disk, or any process writes, is refused."""
    try:
        if vm_uuid and volume_type == "root":
            dom = _lookup(conn, vm_uuid)
            if dom is not None and dom.isActive():
                raise MigrationError(f"cannot migrate the root volume of VM {vm_uuid}: the VM "
                                     "is running; stop it first")
        users: dict[str, str] = {}
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            for source in ET.fromstring(dom.XMLDesc(0)).findall("./devices/disk/source[@file]"):
                users.setdefault(os.path.realpath(source.get("file")), dom.name())
    except libvirt.libvirtError as exc:
        raise MigrationError(f"cannot tell from libvirt whether the volume is in use: {exc}"
                             ) from None
    for top in tops:
        vm = users.get(str(top))
        if vm is not None:
            raise MigrationError({
                "root": f"cannot migrate root volume {top}: VM {vm} is running on it; stop "
                        "the VM first",
                "data": f"cannot migrate data volume {top}: it is attached to running VM "
                        f"{vm}; detach it first",
            }.get(volume_type or "", f"cannot migrate volume {top}: running VM {vm} uses it "
                                     "(stop the VM for a root volume, detach a data volume)"))
        if qemu_img.in_use(top):
            raise MigrationError(f"cannot migrate volume {top}: a process holds its write "
                                 "lock (a VM or qemu-io is using it)")


class VolumeMigration:
    """One run of :meth:`run`: copy, verify, rebase, rename, check; or leave nothing."""

    def __init__(self, remote: Remote, the_plan: Plan, check_cancelled: Callable[[], None]):
        self.remote = remote
        self.plan = the_plan
        self.check_cancelled = check_cancelled
        self._token = secrets.token_hex(4)
        self._made_dirs: list[PurePosixPath] = []
        self._placed: list[PurePosixPath] = []  # may exist at their final path (renamed)

    @property
    def copied(self) -> list[ChainFile]:
        return [f for f in self.plan.files if not f.reused]

    def run(self) -> None:
        started = time.monotonic()
        with self.remote.connection():
            self._steps()
        copied = sum(f.size for f in self.copied)
        log.info("migrated %d file(s) to %s (%d reused): %d bytes in %.2fs", len(self.copied),
                 self.remote, len(self.plan.files) - len(self.copied), copied,
                 time.monotonic() - started)

    def _steps(self) -> None:
        try:
            self._prepare()
            for f in self.copied:
                self.check_cancelled()
                self._copy(f)
            self.check_cancelled()
            self._verify()
            self._rebase()
            self._rename()
            self._check_chains()
        except BaseException as exc:
            leftovers = self._rollback()
            if leftovers and isinstance(exc, AgentError):
                raise type(exc)(f"{exc}; cleaning up on {self.remote} failed too, left there: "
                                f"{leftovers}") from None
            raise

    # -- steps --------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Destination roots must exist; files must not, unless an identical base
        file; the missing directories are made (and remembered for the rollback)."""
        roots = sorted({f.dst_root for f in self.plan.files})
        dirs = sorted({d for f in self.plan.files for d in _dirs_below(f.dst, f.dst_root)},
                      key=lambda d: len(d.parts))
        files = [f.dst for f in self.plan.files]
        kinds, free = _probe(self.remote, [*roots, *dirs, *files])
        for root in roots:
            if kinds[root] != "d":
                raise MigrationError(f"destination storage root {root} does not exist on "
                                     f"{self.remote.ip}: /localstorage/init it there first")
        for f in self.plan.files:
            if kinds[f.dst] == "-":
                continue
            if kinds[f.dst] == "f" and f.backing_dst is None and self._same_bytes(f):
                f.reused = True
                log.info("%s is already on %s with the same bytes: reused", f.dst,
                         self.remote.ip)
                continue
            raise MigrationError(f"{f.dst} already exists on {self.remote.ip} (and is not an "
                                 f"identical copy of {f.src}): refusing to overwrite it")
        for root in roots:
            needed = sum(f.size for f in self.copied if f.dst_root == root)
            if needed > free[root]:  # through SFTP, a full disk mid-copy reads as "Failure"
                raise MigrationError(f"not enough space on {self.remote.ip} under {root}: "
                                     f"{needed} bytes to copy, {free[root]} bytes free")
        missing = [d for d in dirs if kinds[d] == "-"]
        for d in missing:
            if kinds[d.parent] == "f":
                raise MigrationError(f"{d.parent} on {self.remote.ip} is a file, not a "
                                     "directory")
        if missing:
            self._made_dirs = missing
            self.remote.run(["mkdir", "-m", "755", "--", *missing])

    def _same_bytes(self, f: ChainFile) -> bool:
        f.sha256 = f.sha256 or _sha256(f.src)
        return _remote_sha256(self.remote, [f.dst])[0] == f.sha256

    def _copy(self, f: ChainFile) -> None:
        f.tmp = f.dst.with_name(f".{f.dst.name}.{self._token}.migrating")
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:  # hash while scp reads: the file is read once
            digest = pool.submit(_sha256, f.src)
            self.remote.upload(f.src, str(f.tmp))
            f.sha256 = digest.result()
        f.seconds = time.monotonic() - started
        log.info("copied %s to %s:%s: %d bytes in %.2fs (%.1f MiB/s)", f.src, self.remote.ip,
                 f.tmp, f.size, f.seconds, f.size / MIB / max(f.seconds, 1e-6))

    def _verify(self) -> None:
        copied = self.copied
        if not copied:
            return
        theirs = _remote_sha256(self.remote, [f.tmp for f in copied])
        for f, sha in zip(copied, theirs, strict=True):
            if sha != f.sha256:
                raise MigrationError(f"{f.src} arrived damaged at {self.remote.ip}:{f.dst}: "
                                     f"sha256 {sha} there, {f.sha256} here")

    def _rebase(self) -> None:
        """Point each copied overlay at its backing file's final path there."""
        cmds = [[qemu_img.QEMU_IMG, "rebase", "-q", "-u", "-f", "qcow2", "-b", f.backing_dst,
                 "-F", f.backing_format, f.tmp] for f in self.copied if f.backing_dst]
        if cmds:
            self.remote.run_many(cmds)

    def _rename(self) -> None:
        self._placed = [f.dst for f in self.copied]
        cmds = [["mv", "-T", "--", f.tmp, f.dst] for f in self.copied]
        if cmds:
            self.remote.run_many(cmds)

    def _check_chains(self) -> None:
        """Read each volume's chain back on the destination: the files, in order, with the
        source's formats and sizes, all at their destination paths."""
        for chain in self.plan.chains:
            top = chain[0].dst
            res = self.remote.run([qemu_img.QEMU_IMG, "info", "--output=json",
                                   "--backing-chain", "-U", top])
            got = [(layer["filename"], layer["format"], layer["virtual-size"])
                   for layer in json.loads(res.stdout)]
            want = [(str(f.dst), f.format, f.virtual_size) for f in chain]
            if got != want:
                raise MigrationError(f"the chain of {top} on {self.remote.ip} is not the one "
                                     f"copied: {got} instead of {want}")

    def _rollback(self) -> str:
        """Remove what this migration made there; '' or what could not be removed."""
        files = [f.tmp for f in self.copied if f.tmp] + self._placed
        cmds = []
        if files:
            cmds.append(["rm", "-f", "--", *files])
        if self._made_dirs:
            cmds.append(["rmdir", "--ignore-fail-on-non-empty", "--",
                         *reversed(self._made_dirs)])
        if not cmds:
            return ""
        try:
            self.remote.run_many(cmds)
        except SshError as exc:
            log.error("cleaning up a failed migration on %s failed: %s", self.remote, exc)
            return ", ".join(str(p) for p in [*files, *self._made_dirs])
        log.info("removed from %s what the failed migration made: %s", self.remote.ip,
                 ", ".join(str(p) for p in [*files, *self._made_dirs]))
        return ""


_PROBE = ('for p; do if [ -d "$p" ]; then echo d $(stat -f -c "%a %S" -- "$p"); '
          'elif [ -e "$p" ] || [ -L "$p" ]; then echo f; else echo -; fi; done')
_SHA256 = ('if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$@"; '
           'else sha256sum -- "$@"; fi')
"""openssl hashes ~4x faster than coreutils 9.1 (SHA-NI); sha256sum where it is missing."""


def _probe(remote: Remote, paths: list[PurePosixPath]
           ) -> tuple[dict[PurePosixPath, str], dict[PurePosixPath, int]]:
    """What each path is on the remote host ("d" directory, "f" other, "-" nothing), and
    the bytes free under each directory."""
    out = remote.run(["sh", "-c", _PROBE, "sh", *paths]).stdout.splitlines()
    if len(out) != len(paths):
        raise MigrationError(f"unexpected answer from {remote} probing paths: {out!r}")
    kinds, free = {}, {}
    for path, line in zip(paths, out, strict=True):
        kind, *space = line.split()
        kinds[path] = kind
        if kind == "d":
            blocks, block_size = map(int, space)
            free[path] = blocks * block_size
    return kinds, free


def _dirs_below(path: PurePosixPath, root: PurePosixPath) -> list[PurePosixPath]:
    """The directories between ``root`` (excluded) and ``path``'s parent."""
    return [d for d in path.parents if d.is_relative_to(root) and d != root]


def _remote_sha256(remote: Remote, paths: list[PurePosixPath]) -> list[str]:
    res = remote.run(["sh", "-c", _SHA256, "sh", *paths], timeout=None)
    sums = [line.lstrip("\\")[:64] for line in res.stdout.splitlines()]
    if len(sums) != len(paths):
        raise MigrationError(f"unexpected sha256sum answer from {remote}: {res.stdout!r}")
    return sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
