"""Images between this host's storage and an SFTP backup storage, over ssh.

Pull (image cache <- backup storage): ``cat`` on the backup storage over ssh, ssh's
stdout being a temporary file next to the cache path (the bytes do not pass through
the agent: as fast as scp); when the command gives an md5 to check, the file is
md5-summed right behind the writer (it costs as much CPU as ssh itself, so only then).
It is checked against the expected md5/size and by qemu-img,
then renamed into place read-only (a cached image is a backing file: nothing may
write it). An image already in the cache is reused; a failure or cancel leaves nothing.

Push (volume -> backup storage): a volume with a backing chain is first flattened into
one standalone qcow2 (a backup storage image must stand alone), copied to a temporary
name there (scp over SFTP), verified by md5 on both sides and only then renamed into
place; a failure removes the temporary file there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentlib.errors import AgentError
from agentlib.hashedwrite import fill_hashed
from agentlib.progress import Progress
from agentlib.ssh import Remote
from kvmagent.drivers import qemu_img
from kvmagent.drivers.filestorage import FileStorage

log = logging.getLogger(__name__)



class TransferError(AgentError):
    """An image transfer failed; nothing was left behind."""


@dataclass(frozen=True)
class Transferred:
    md5: str
    actual_size: int
    virtual_size: int
    format: str
    reused: bool = False


def pull(remote: Remote, src: str, storage: FileStorage, target: Path, progress: Progress,
         check_cancelled: Callable[[], None], md5: str | None = None,
         size: int | None = None) -> Transferred:
    """Copy ``src`` on ``remote`` to ``target`` (inside ``storage``); see the module doc."""
    if target.exists():
        got = storage.info(target)
        actual = target.stat().st_size
        if size is not None and actual != size:
            raise TransferError(f"{target} is already in the cache but has {actual} bytes, "
                                f"not {size}: delete it first")
        log.info("%s is already cached: reused", target)
        return Transferred(md5 or "", actual, got.virtual_size, got.format, reused=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.pull")
    started = time.monotonic()
    with storage.new_parents(target.parent):
        try:
            digest, actual = _stream(remote, src, tmp, progress, check_cancelled,
                                     hashed=md5 is not None)
            if size is not None and actual != size:
                raise TransferError(f"{remote}:{src} arrived with {actual} bytes, "
                                    f"expected {size}")
            if md5 is not None and digest != md5:
                raise TransferError(f"{remote}:{src} arrived damaged: md5 {digest}, "
                                    f"expected {md5}")
            progress.set_stage("inspect")
            got = storage.info(tmp)  # refuses backing files outside the storage root
            os.chmod(tmp, 0o444)
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    progress.done()
    seconds = time.monotonic() - started
    log.info("pulled %s:%s to %s: %d bytes in %.1fs (%.1f MiB/s)", remote, src, target,
             actual, seconds, actual / max(seconds, 1e-6) / 2**20)
    return Transferred(digest, actual, got.virtual_size, got.format)


def _stream(remote: Remote, src: str, tmp: Path, progress: Progress,
            check_cancelled: Callable[[], None], hashed: bool) -> tuple[str, int]:
    return fill_hashed(lambda fd, tick: remote.copy_to(src, fd, tick), tmp,
                       algorithm="md5" if hashed else None, progress=progress,
                       check_cancelled=check_cancelled)


def push(remote: Remote, storage: FileStorage, volume: Path, dst: str,
         check_cancelled: Callable[[], None]) -> Transferred:
    """Copy ``volume`` (flattened if need be) to ``dst`` on ``remote``; an identical
    image already at ``dst`` is success."""
    if qemu_img.in_use(volume):
        raise TransferError(f"cannot upload {volume}: it is in use (a running VM holds it); "
                            "stop the VM first")
    info = storage.info(volume)
    flat = None
    if info.backing is not None:
        flat = volume.with_name(f".{volume.name}.{secrets.token_hex(4)}.flat")
        try:
            qemu_img.convert(volume, flat, "qcow2")
        except BaseException:
            flat.unlink(missing_ok=True)
            raise
    try:
        check_cancelled()
        return _push_file(remote, flat or volume, PurePosixPath(dst), check_cancelled)
    finally:
        if flat is not None:
            flat.unlink(missing_ok=True)


def _push_file(remote: Remote, src: Path, dst: PurePosixPath,
               check_cancelled: Callable[[], None]) -> Transferred:
    got = qemu_img.info(src)
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.upload")
    with remote.connection(), ThreadPoolExecutor(1) as pool:
        local_md5 = pool.submit(_md5, src)  # hashed while scp copies
        existing = remote.run(["sh", "-c", 'if [ -e "$1" ]; then md5sum -- "$1"; fi',
                               "sh", dst]).stdout.split()
        if existing:
            if existing[0] != local_md5.result():
                raise TransferError(f"{dst} already exists on {remote.ip} with other bytes: "
                                    "refusing to overwrite it")
            return Transferred(existing[0], src.stat().st_size, got.virtual_size, got.format,
                               reused=True)
        remote.run(["mkdir", "-p", "--", dst.parent])
        try:
            remote.upload(src, str(tmp))
            check_cancelled()
            theirs = remote.run(["md5sum", "--", tmp], timeout=None).stdout.split()[0]
            if theirs != local_md5.result():
                raise TransferError(f"{src} arrived damaged at {remote.ip}:{dst}: md5 "
                                    f"{theirs} there, {local_md5.result()} here")
            remote.run_many([["chmod", "0444", "--", tmp], ["mv", "-T", "--", tmp, dst]])
        except BaseException:
            remote.run(["rm", "-f", "--", tmp], check=False)
            raise
    log.info("uploaded %s to %s:%s (%d bytes, md5 %s)", src, remote, dst,
             src.stat().st_size, theirs)
    return Transferred(theirs, src.stat().st_size, got.virtual_size, got.format)


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()
