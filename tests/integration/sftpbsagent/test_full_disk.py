"""A full disk (a real 2 MiB tmpfs) under the sftpbsagent: a clear error, nothing left."""

from __future__ import annotations

import pytest

from agentlib import shell

pytestmark = pytest.mark.integration

P = "/sftpbackupstorage"


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(sftpbs, image_server, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    shell.run(["mount", "-t", "tmpfs", "-o", "size=2m", "zfleet-test", str(small)])
    try:
        assert sftpbs.call(f"{P}/connect", {"storagePath": str(small)})["success"]
        for query in ("", "?chunked=1"):  # length known up front, and not
            reply = sftpbs.download(f"{image_server.url}/image.qcow2{query}",
                                    small / "d" / "image.qcow2")
            assert not reply["success"] and "no space left" in reply["error"], reply
            assert list(small.iterdir()) == []
    finally:
        shell.run(["umount", str(small)])
