"""Download an image from a URL into an RBD image.

Raw images stream straight into librbd: a window of asynchronous 4 MiB writes keeps the
OSDs busy while the next chunk arrives, and all-zero chunks are skipped (the image stays
thin, as ``rbd import`` leaves it). A qcow2 image (magic ``QFI\\xfb``) cannot be written
as it arrives: it goes to a temporary file, is checked (no backing or external data file:
it would make qemu-img read host files), and ``qemu-img convert`` writes it as raw
through its rbd driver.

Everything is written under ``<image>.zfleet-tmp`` and renamed at the end, so a failed or
cancelled download leaves no half image; the URL, md5 and sizes are kept in the image's
metadata, so repeating a finished download answers at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import rbd

from agentlib import shell
from agentlib.progress import Progress
from agentlib.urlfetch import FetchError, open_url, redact
from cephagent.drivers.cluster import CephClient, CephError
from cephagent.drivers.images import RbdImages
from cephagent.models.paths import TMP_SUFFIX, RbdPath

log = logging.getLogger(__name__)

QCOW2_MAGIC = b"QFI\xfb"
CHUNK = 4 << 20  # = the RBD object size: a skipped zero chunk is a whole unallocated object
IN_FLIGHT = 16  # concurrent writes (``rbd import`` uses rbd_concurrent_management_ops=10)
META = "zfleet.download"  # image metadata key holding the facts of a finished download


@dataclass(frozen=True)
class Downloaded:
    size: int  # virtual size of the image
    actual_size: int  # bytes downloaded
    md5: str
    format: str  # what the URL served: raw or qcow2


class DownloadError(CephError):
    pass


class ImageDownloader:
    def __init__(self, client: CephClient, images: RbdImages, tmp_dir: Path,
                 file_roots: Sequence[Path] = ()):
        self.client = client
        self.images = images
        self.tmp_dir = Path(tmp_dir)
        self.file_roots = list(file_roots)

    def download(self, url: str, dst: RbdPath, progress: Progress,
                 check_cancelled: Callable[[], None] = lambda: None) -> Downloaded:
        done = self.finished(dst, url)
        if done is not None:
            log.info("%s already holds %s", dst, redact(url))
            return done
        tmp = RbdPath(dst.pool, dst.image + TMP_SUFFIX)
        self.images.delete(tmp)  # what an interrupted download left
        try:
            with open_url(url, file_roots=self.file_roots) as stream:
                progress.total = stream.size
                chunks = iter(stream.chunks(CHUNK))
                first = next(chunks, b"")
                body = _prepend(first, chunks)
                if first.startswith(QCOW2_MAGIC):
                    result = self._qcow2(body, tmp, progress, check_cancelled)
                else:
                    result = self._raw(body, stream.size, tmp, progress, check_cancelled)
            with self.images.image(tmp) as img:
                img.metadata_set(META, json.dumps({"url": redact(url), **result.__dict__}))
            self.images.rename(tmp, dst)
        except FetchError as exc:
            self.images.discard(tmp)
            raise DownloadError(f"download to {dst}: {exc}") from None
        except BaseException:
            self.images.discard(tmp)
            raise
        progress.done()
        log.info("downloaded %s into %s: %s, %d bytes, md5 %s", redact(url), dst,
                 result.format, result.actual_size, result.md5)
        return result

    def finished(self, dst: RbdPath, url: str) -> Downloaded | None:
        """The facts of an earlier download of ``url`` into ``dst``; None if there was
        none. ``dst`` holding anything else is an error (it is never overwritten)."""
        if not self.images.exists(dst):
            return None
        with self.images.image(dst, read_only=True) as img:
            try:
                facts = json.loads(img.metadata_get(META))
            except (rbd.ImageNotFound, KeyError, ValueError):
                facts = {}
        if facts.get("url") != redact(url):
            raise DownloadError(f"{dst} already exists and was not downloaded from "
                                f"{redact(url)}: delete it first or choose another name")
        return Downloaded(facts["size"], facts["actual_size"], facts["md5"], facts["format"])

    # -- raw: librbd writes --------------------------------------------------------

    def _raw(self, body: Iterable[bytes], size: int | None, tmp: RbdPath,
             progress: Progress, check_cancelled: Callable[[], None]) -> Downloaded:
        capacity = size if size is not None else 1 << 30
        self.images.create_empty(tmp, capacity)
        offset = 0
        with _Md5() as md5, self.images.image(tmp) as img, \
                self.client.guard(f"write {tmp}"):
            writes = _WriteWindow(img, IN_FLIGHT)
            try:
                for chunk in _aligned(body, CHUNK):
                    check_cancelled()
                    md5.update(chunk)
                    end = offset + len(chunk)
                    if end > capacity:  # size unknown up front: grow by doubling
                        writes.drain()
                        capacity = max(end, capacity * 2)
                        img.resize(capacity)
                    if not _zero(chunk):
                        writes.write(chunk, offset)
                    offset = end
                    progress.add(len(chunk))
            finally:
                writes.wait()  # never close the image under writes in flight
            writes.drain()
            digest = md5.hexdigest()
            img.flush()
            if capacity != offset:
                img.resize(offset)
        return Downloaded(offset, offset, digest, "raw")

    # -- qcow2: a temporary file, then qemu-img convert ----------------------------

    def _qcow2(self, body: Iterable[bytes], tmp: RbdPath, progress: Progress,
               check_cancelled: Callable[[], None]) -> Downloaded:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        with _Md5() as md5, tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="download-",
                                                        suffix=".qcow2") as f:
            for chunk in body:
                check_cancelled()
                md5.update(chunk)
                f.write(chunk)
                progress.add(len(chunk))
            f.flush()
            digest = md5.hexdigest()
            downloaded = f.tell()
            virtual = self._check_qcow2(Path(f.name))
            progress.set_stage("convert")
            check_cancelled()
            try:
                shell.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", f.name,
                           self._qemu_target(tmp)], timeout=None)
            except shell.CommandFailed as exc:
                raise DownloadError(f"converting the qcow2 image to raw in {tmp}: {exc}"
                                    ) from None
            check_cancelled()  # a cancel during the conversion takes effect here
        return Downloaded(virtual, downloaded, digest, "qcow2")

    def _check_qcow2(self, path: Path) -> int:
        """The virtual size; refuse images qemu-img would make read other files."""
        try:
            info = json.loads(shell.run(["qemu-img", "info", "--output=json", "-f", "qcow2",
                                         path]).stdout)
        except shell.CommandFailed as exc:
            raise DownloadError(f"not a valid qcow2 image: {exc}") from None
        if info.get("backing-filename") or info.get("format-specific", {}).get(
                "data", {}).get("data-file"):
            raise DownloadError("qcow2 images with a backing file or an external data file "
                                "are refused (they would read files on the agent's host)")
        return int(info["virtual-size"])

    def _qemu_target(self, tmp: RbdPath) -> str:
        """qemu's rbd filename; its options become client settings (':' is escaped)."""
        def esc(v: object) -> str:
            return str(v).replace("\\", "\\\\").replace(":", "\\:")

        t = esc(self.client.timeout)
        return (f"rbd:{tmp.pool}/{tmp.image}:id={esc(self.client.user)}"
                f":conf={esc(self.client.conf_path)}"
                f":client_mount_timeout={t}:rados_mon_op_timeout={t}")


class _WriteWindow:
    """At most ``depth`` librbd writes in flight; the first failure is raised."""

    def __init__(self, img: rbd.Image, depth: int):
        self.img = img
        self.slots = threading.Semaphore(depth)
        self.depth = depth
        self.error: str | None = None

    def write(self, data: bytes, offset: int) -> None:
        self.slots.acquire()
        self._raise()

        def done(completion: rbd.Completion) -> None:
            rc = completion.get_return_value()
            if rc < 0 and self.error is None:
                self.error = f"write of {len(data)} bytes at offset {offset} failed: rc={rc}"
            self.slots.release()

        self.img.aio_write(data, offset, done)

    def wait(self) -> None:
        for _ in range(self.depth):
            self.slots.acquire()
        for _ in range(self.depth):
            self.slots.release()

    def drain(self) -> None:
        """Wait for every write in flight; raise if one failed."""
        self.wait()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise DownloadError(self.error)


class _Md5:
    """md5 in a thread of its own: hashing (~550 MiB/s here) would otherwise cost as much
    as the writes; hashlib releases the GIL, so it runs beside them."""

    def __init__(self, depth: int = 8):
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="md5", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._md5.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def hexdigest(self) -> str:
        """The digest of everything given; ends the thread."""
        self.close()
        return self._md5.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> _Md5:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _zero(chunk: bytes) -> bool:
    """All zero bytes? Data usually shows in the first bytes, so only look further if not."""
    return chunk[:64].count(0) == len(chunk[:64]) and chunk.count(0) == len(chunk)


def _aligned(body: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut ``body`` into ``size``-byte pieces (the last may be shorter): a network read
    returns what has arrived (~64 KiB over HTTP), but a zero piece is only skipped if it
    is a whole object. Pieces are joined once, not appended byte by byte."""
    parts: list[bytes] = []
    have = 0
    for chunk in body:
        if not parts and len(chunk) == size:
            yield chunk
            continue
        parts.append(chunk)
        have += len(chunk)
        if have < size:
            continue
        data = b"".join(parts)
        whole = have - have % size
        if whole == have == size:
            yield data
            parts, have = [], 0
            continue
        for off in range(0, whole, size):
            yield data[off:off + size]
        parts = [data[whole:]] if whole < have else []
        have -= whole
    if parts:
        yield b"".join(parts)


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    if first:
        yield first
    yield from rest
