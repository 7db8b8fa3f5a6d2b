"""write_hashed: the file and the digest are of the same bytes, in one pass."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from agentlib.errors import Cancelled
from agentlib.hashedwrite import WRITEBACK, fill_hashed, write_hashed
from agentlib.progress import ProgressBoard


def test_file_digest_and_size_match_the_stream(tmp_path):
    chunks = [os.urandom(n) for n in (1, 4 << 20, 12345, WRITEBACK, 0, 7)]
    board = ProgressBoard()
    digest, size = write_hashed(iter(chunks), tmp_path / "out",
                                progress=board.start("r", None, every=60))
    data = b"".join(chunks)
    assert (digest, size) == (hashlib.md5(data).hexdigest(), len(data))
    assert (tmp_path / "out").read_bytes() == data
    assert board.get("r")["bytesDone"] == len(data)
    sha, _ = write_hashed(iter(chunks), tmp_path / "sha", algorithm="sha256")
    assert sha == hashlib.sha256(data).hexdigest()
    assert write_hashed(iter(chunks), tmp_path / "plain", algorithm=None) == ("", len(data))
    assert (tmp_path / "plain").read_bytes() == data


def test_an_existing_file_is_never_overwritten(tmp_path):
    (tmp_path / "out").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        write_hashed(iter([b"new"]), tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"keep"


def test_cancel_stops_between_chunks(tmp_path):
    seen = []

    def chunks():
        for i in range(100):
            seen.append(i)
            yield b"x" * 1000

    def check():
        if len(seen) > 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        write_hashed(chunks(), tmp_path / "out", check_cancelled=check)
    assert len(seen) == 4 and (tmp_path / "out").stat().st_size == 3000


WRITER = ("import os, sys, time\n"
          "for i in range(int(sys.argv[1])):\n"
          "    os.write(1, bytes([i % 256]) * 300000); time.sleep(0.02)\n")


def _child_fill(parts: int):
    """A fill that runs a child process writing ``parts`` pieces to the file."""
    def fill(fd, tick):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(parts)], stdout=fd)
        try:
            while proc.poll() is None:
                tick()
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait()
    return fill


def test_fill_hashed_hashes_what_another_process_wrote(tmp_path):
    expected = b"".join(bytes([i % 256]) * 300000 for i in range(20))
    board = ProgressBoard()
    digest, size = fill_hashed(_child_fill(20), tmp_path / "out",
                               progress=board.start("r", None, every=60))
    assert (digest, size) == (hashlib.md5(expected).hexdigest(), len(expected))
    assert (tmp_path / "out").read_bytes() == expected
    assert board.get("r")["bytesDone"] == len(expected)
    assert fill_hashed(_child_fill(3), tmp_path / "plain", algorithm=None) == ("", 900000)


def test_fill_hashed_cancel_stops_the_writer(tmp_path):
    started = time.monotonic()

    def check():
        if time.monotonic() - started > 0.1:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        fill_hashed(_child_fill(1000), tmp_path / "out", check_cancelled=check)
    assert time.monotonic() - started < 5  # not the 20 s the writer would take
