"""write_hashed: the file and the digest are of the same bytes, in one pass."""

import hashlib
import os

import pytest

from agentlib.errors import Cancelled
from agentlib.hashedwrite import WRITEBACK, write_hashed
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
