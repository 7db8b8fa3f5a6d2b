"""The storage-root allow-list both kvmagent and sftpbsagent use (agentlib.storageroot),
and the kernel's path limits in the path types."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from agentlib.storageroot import allowed_root, check_roots
from agentlib.types import AbsPath, VolumePath


@pytest.fixture
def layout(tmp_path) -> tuple[list[Path], Path]:
    (tmp_path / "ps").mkdir()
    (tmp_path / "ps" / "etc").symlink_to("/etc")
    return [tmp_path / "ps"], tmp_path / "data"


@pytest.mark.parametrize("path, said", [
    ("/", "system directory"), ("/etc", "system directory"),
    ("/etc/cron.d", "system directory"), ("/root/.ssh", "system directory"),
    ("/usr/bin", "system directory"), ("/dev/shm", "system directory"),
    ("/proc/self", "system directory"), ("/run/x", "system directory"),
    ("/var/lib", "system directory"), ("{tmp}/ps/etc", "resolves to /etc"),
    ("{tmp}/data", "data dir"), ("{tmp}/data/ps", "data dir"), ("{tmp}", "data dir"),
    ("{tmp}/elsewhere", "not inside a configured storage root"),
    ("/var/lib/other", "not inside a configured storage root"),
])
def test_allowed_root_refuses(layout, tmp_path, path, said):
    roots, data = layout
    with pytest.raises(ValueError, match=said):
        allowed_root(path.format(tmp=tmp_path), roots, data)


def test_allowed_root_takes_a_root_or_a_directory_inside_one(layout):
    roots, data = layout
    assert allowed_root(roots[0], roots, data) == roots[0]
    assert allowed_root(roots[0] / "a" / "b", roots, data) == roots[0] / "a" / "b"


@pytest.mark.parametrize("roots, said", [
    (["/etc"], "system directory"), (["/var/lib"], "system directory"),
    (["/"], "system directory"), (["{tmp}"], "data dir"), (["rel"], "not an absolute"),
])
def test_check_roots_refuses_what_no_command_may_get(tmp_path, roots, said):
    with pytest.raises(ValueError, match=said):
        check_roots([Path(r.format(tmp=tmp_path)) for r in roots], tmp_path / "data")
    check_roots([Path("/var/lib/zfleet-storage"), Path("/zstack_ps")], tmp_path / "data")


@pytest.mark.parametrize("typ", [AbsPath, VolumePath])
def test_paths_beyond_the_kernel_limits_are_refused(typ):
    adapter = TypeAdapter(typ)
    assert adapter.validate_python("/a/" + "x" * 255)
    assert adapter.validate_python("/" + "é" * 127)  # 254 bytes (2 a character)
    for bad in ("/a/" + "x" * 256, "/" + "é" * 128, "/" + "d/" * 2048):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
