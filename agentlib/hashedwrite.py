"""Write a stream of chunks to a new file, hashing them on the way: one pass over the bytes.

Image transfers (sftpbsagent downloads, kvmagent pulls) must report an md5 of what they
stored and must not be much slower than a plain ``curl -o`` or ``scp``. So the md5 runs
in its own thread (hashlib releases the GIL: it overlaps the network and the disk on
another core), and write-back of what is written starts early (``POSIX_FADV_DONTNEED``
every :data:`WRITEBACK` bytes: it also keeps a huge image from crowding the page
cache), so the final ``fsync`` that makes the file durable before it is renamed into
place has little left to do.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
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
