"""Fill a new file while hashing what goes in: one pass over the bytes.

Image transfers (sftpbsagent downloads, kvmagent pulls) must report an md5 of what they
stored and must not be much slower than a plain ``curl -o`` or ``scp``. So the md5 runs
in its own thread (hashlib releases the GIL: it overlaps the network and the disk on
another core), and write-back of what is written starts early (``POSIX_FADV_DONTNEED``
every :data:`WRITEBACK` bytes: it also keeps a huge image from crowding the page
cache), so the final ``fsync`` that makes the file durable before it is renamed into
place has little left to do.

Two ways in: :func:`write_hashed` writes chunks this process has (an HTTP body);
:func:`fill_hashed` lets another process write the file (ssh's stdout) and hashes it
from the page cache right behind the writer.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from agentlib.progress import Progress

WRITEBACK = 64 << 20
_QUEUE = 8  # chunks in flight to the hasher: bounds memory at a few chunk sizes


class _Hasher(threading.Thread):
    def __init__(self, algorithm: str):
        super().__init__(name="hasher", daemon=True)
        self.hash = hashlib.new(algorithm)
        self.queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE)

    def run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            self.hash.update(chunk)


def write_hashed(chunks: Iterable[bytes], path: Path, *, algorithm: str | None = "md5",
                 progress: Progress | None = None,
                 check_cancelled: Callable[[], None] = lambda: None) -> tuple[str, int]:
    """Write ``chunks`` to the new file ``path`` (it must not exist) and fsync it;
    returns (hex digest, size); ``algorithm`` None skips the hash (digest ""). Errors
    (ENOSPC included) propagate as they are; the caller removes ``path``."""
    hasher = _Hasher(algorithm) if algorithm else None
    if hasher is not None:
        hasher.start()
    size = flushed = 0
    try:
        with open(path, "xb") as out:
            fd = out.fileno()
            for chunk in chunks:
                check_cancelled()
                if hasher is not None:
                    hasher.queue.put(chunk)
                out.write(chunk)
                size += len(chunk)
                if progress is not None:
                    progress.add(len(chunk))
                if size - flushed >= WRITEBACK:
                    out.flush()
                    os.posix_fadvise(fd, flushed, size - flushed, os.POSIX_FADV_DONTNEED)
                    flushed = size
            out.flush()
            os.fsync(fd)
    finally:
        if hasher is not None:
            hasher.queue.put(None)
            hasher.join()
    return (hasher.hash.hexdigest() if hasher is not None else ""), size


class _Follower(threading.Thread):
    """Hashes a file another process is writing, reading right behind the writer."""

    def __init__(self, path: Path, algorithm: str):
        super().__init__(name="hash-follower", daemon=True)
        self.hash = hashlib.new(algorithm)
        self.file = open(path, "rb")  # closed at the end of run()
        self.writer_done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        fd, done = self.file.fileno(), 0
        try:
            with self.file:
                while True:
                    last = self.writer_done.is_set()  # before the read: no byte missed
                    data = self.file.read(4 << 20)
                    if data:
                        self.hash.update(data)
                        os.posix_fadvise(fd, done, len(data), os.POSIX_FADV_DONTNEED)
                        done += len(data)
                    elif last:
                        return
                    else:
                        time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc


def fill_hashed(fill: Callable[[int, Callable[[], None]], None], path: Path, *,
                algorithm: str | None = "md5", progress: Progress | None = None,
                check_cancelled: Callable[[], None] = lambda: None) -> tuple[str, int]:
    """Create ``path`` and let ``fill(fd, tick)`` write it (e.g. a child process with
    ``fd`` as its stdout; ``tick()`` must be called now and then: it reports progress and
    raises once cancelled); the file is hashed behind the writer and fsynced. Returns
    (hex digest, size); ``algorithm`` None skips the hash (digest "")."""
    with open(path, "xb") as out:
        fd = out.fileno()
        follower = _Follower(path, algorithm) if algorithm else None
        if follower is not None:
            follower.start()
        seen = flushed = 0

        def tick() -> None:
            nonlocal seen, flushed
            check_cancelled()
            size = os.fstat(fd).st_size
            if progress is not None:
                progress.add(size - seen)
            seen = size
            if follower is None and size - flushed >= WRITEBACK:
                os.posix_fadvise(fd, flushed, size - flushed, os.POSIX_FADV_DONTNEED)
                flushed = size

        try:
            fill(fd, tick)
            tick()
        finally:
            if follower is not None:
                follower.writer_done.set()
                follower.join()
        if follower is not None and follower.error is not None:
            raise follower.error
        os.fsync(fd)
    return (follower.hash.hexdigest() if follower is not None else ""), seen
