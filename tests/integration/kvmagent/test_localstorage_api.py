"""Local and shared mount point storage over real HTTP: real qcow2 files under a root in
tmp_path; hostile input is a 400 or a failure naming the field, and creates nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from agentlib.agent import Agent
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers import qemu_img
from kvmagent.handlers import localstorage
from kvmagent.handlers.localstorage import STATE_FILE
from tests.fixtures.agents import ServedAgent

pytestmark = pytest.mark.integration

MiB = 1 << 20
SMP = "/sharedmountpointprimarystorage"


def build(base: Path) -> Agent:
    """kvmagent with only the storage handlers (kvmagent.app.build also needs libvirtd):
    its data dir is ``base/data``; it may set up storage under ``base/ps`` and
    ``base/mnt`` (``--storage-roots``)."""
    cfg = KvmAgentConfig(data_dir=base / "data", task_workers=2, callback_retry_seconds=5,
                         storage_roots=[base / "ps", base / "mnt"])
    agent = Agent("kvmagent", cfg)
    localstorage.register(agent, cfg)
    return agent


class Client:
    def __init__(self, served: ServedAgent):
        self.url = served.url

    def raw(self, path: str, body: dict | None = None) -> requests.Response:
        return requests.post(self.url + path, json=body or {}, timeout=30)

    def ok(self, path: str, body: dict | None = None) -> dict:
        r = self.raw(path, body)
        assert r.status_code == 200 and r.json()["success"] is True, (path, r.text)
        return r.json()

    def fails(self, path: str, body: dict) -> str:
        r = self.raw(path, body)
        assert r.status_code == 200 and r.json()["success"] is False, (path, r.text)
        return r.json()["error"]


@pytest.fixture
def served(tmp_path) -> Iterator[ServedAgent]:
    s = ServedAgent(build(tmp_path))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def api(served) -> Client:
    return Client(served)


@pytest.fixture
def root(api, tmp_path) -> Path:
    reply = api.ok("/localstorage/init", {"path": str(tmp_path / "ps")})
    assert reply["totalCapacity"] > 0 and 0 < reply["availableCapacity"] <= reply["totalCapacity"]
    return tmp_path / "ps"


@pytest.fixture(scope="module")
def fixed_root(tmp_path_factory) -> Iterator[tuple[Client, Path]]:
    """One agent and root for the many requests that must change nothing (a served
    agent takes 0.5 s to stop)."""
    base = tmp_path_factory.mktemp("storage")
    s = ServedAgent(build(base))
    try:
        api = Client(s)
        api.ok("/localstorage/init", {"path": str(base / "ps")})
        yield api, base / "ps"
    finally:
        s.close()


def tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def test_local_storage_volume_lifecycle(api, root):
    assert set(api.ok("/localstorage/getphysicalcapacity")) == {
        "success", "error", "totalCapacity", "availableCapacity"}
    cache = root / "imagecache" / "template" / "img" / "img.qcow2"
    api.ok("/localstorage/volume/createempty", {"installUrl": str(cache), "size": 16 * MiB})
    assert qemu_img.info(cache).virtual_size == 16 * MiB

    vol = root / "rootVolumes" / "vol-1" / "vol-1.qcow2"
    reply = api.ok("/localstorage/volume/createvolumefromcache", {
        "templatePathInCache": str(cache), "installUrl": str(vol),
        "volumeUuid": "0123456789abcdef0123456789abcdef"})  # extra ZStack fields are ignored
    assert reply["totalCapacity"] > 0 and reply["availableCapacity"] > 0
    assert [i.filename for i in qemu_img.info(vol).chain] == [str(vol), str(cache)]

    assert api.ok("/volume/resize", {"installPath": str(vol), "size": 32 * MiB})["size"] == (
        32 * MiB)
    error = api.fails("/volume/resize", {"installPath": str(vol), "size": 8 * MiB})
    assert f"refusing to shrink {vol} from {32 * MiB} to {8 * MiB} bytes" in error
    assert qemu_img.info(vol).virtual_size == 32 * MiB

    for _ in range(2):  # deleting twice: both succeed
        assert "availableCapacity" in api.ok("/localstorage/delete", {"path": str(vol)})
    assert not vol.exists() and not vol.parent.exists()


def test_shared_mount_point_volume_lifecycle(api, tmp_path):
    mnt = tmp_path / "mnt"
    error = api.fails(f"{SMP}/connect", {"mountPoint": str(mnt)})
    assert error.startswith(f"mountPoint: shared mount point {mnt} does not exist")
    assert not mnt.exists()
    mnt.mkdir()
    assert api.ok(f"{SMP}/connect", {"mountPoint": str(mnt),
                                     "uuid": "0123456789abcdef0123456789abcdef"})[
        "totalCapacity"] > 0
    assert api.ok(f"{SMP}/getcapacity", {"mountPoint": str(mnt)})["availableCapacity"] > 0

    cache = mnt / "imagecache" / "img.qcow2"
    api.ok(f"{SMP}/createemptyvolume", {"installPath": str(cache), "size": 8 * MiB})
    vol = mnt / "rootVolumes" / "v.qcow2"
    api.ok(f"{SMP}/createrootvolume", {"templatePathInCache": str(cache),
                                       "installPath": str(vol), "mountPoint": str(mnt)})
    assert qemu_img.info(vol).backing_file == str(cache)
    data = mnt / "dataVolumes" / "d.qcow2"
    api.ok(f"{SMP}/volume/createempty", {"installPath": str(data), "size": MiB})  # ZStack's name
    assert api.ok("/volume/resize", {"installPath": str(data), "size": 2 * MiB})["size"] == 2 * MiB

    error = api.fails(f"{SMP}/createemptyvolume", {"installPath": str(data), "size": MiB,
                                                   "mountPoint": str(tmp_path)})
    assert error.startswith(f"mountPoint: {tmp_path} is not a shared mount point of this host")
    api.ok(f"{SMP}/delete", {"path": str(vol), "mountPoint": str(mnt)})
    api.ok(f"{SMP}/bits/delete", {"path": str(data)})
    api.ok(f"{SMP}/delete", {"path": str(data)})
    assert tree(mnt) == {"imagecache", "imagecache/img.qcow2"}


def test_storage_roots_survive_an_agent_restart(served, api, root, tmp_path):
    vol = root / "v.qcow2"
    api.ok("/localstorage/volume/createempty", {"installUrl": str(vol), "size": MiB})
    served.close()
    again = ServedAgent(build(tmp_path))
    try:
        api2 = Client(again)
        assert api2.ok("/localstorage/getphysicalcapacity")["totalCapacity"] > 0
        error = api2.fails("/localstorage/delete", {"path": str(tmp_path / "elsewhere.qcow2")})
        assert f"local storage {root}" in error
        api2.ok("/localstorage/delete", {"path": str(vol)})
    finally:
        again.close()
    assert not vol.exists()


def test_concurrent_creates_of_one_volume_make_one_file(api, root):
    vol = root / "v" / "v.qcow2"
    body = {"installUrl": str(vol), "size": 4 * MiB}
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: api.raw("/localstorage/volume/createempty", body),
                                range(16)))
    assert all(r.json()["success"] for r in replies), [r.text for r in replies]
    assert tree(root) == {"v", "v/v.qcow2"}


@pytest.mark.parametrize("path, body, field", [
    ("/localstorage/volume/createempty", {"installUrl": "{root}/../x.qcow2", "size": MiB},
     "installUrl: path must not contain '..'"),
    ("/localstorage/volume/createempty", {"installUrl": "{root}/a\nb.qcow2", "size": MiB},
     "installUrl: path must not contain NUL or newline"),
    ("/localstorage/volume/createempty", {"installUrl": "{root}/v.qcow2", "size": -1},
     "size: Input should be greater than 0"),
    ("/localstorage/volume/createempty", {"installUrl": "{root}/v.qcow2", "size": "1M"},
     "size: Input should be a valid integer"),
    ("/localstorage/volume/createempty", {"installUrl": "{root}/v.qcow2"},
     "size: Field required"),
    ("/localstorage/volume/createempty", {"size": MiB}, "installUrl: Field required"),
    ("/localstorage/volume/createempty", {"installUrl": "v.qcow2", "size": MiB},
     "installUrl: path must be absolute"),
    ("/localstorage/volume/createvolumefromcache", {"installUrl": "{root}/v.qcow2"},
     "templatePathInCache: Field required"),
    ("/localstorage/delete", {"path": "{root}/../../victim"}, "path: path must not"),
    ("/localstorage/init", {"path": "/tmp/a\n"}, "path: path must not contain NUL"),
    ("/volume/resize", {"installPath": "{root}/v.qcow2", "size": 0},
     "size: Input should be greater than 0"),
    (f"{SMP}/connect", {}, "mountPoint: Field required"),
    (f"{SMP}/createemptyvolume", {"installPath": "{root}/v.qcow2", "size": MiB,
                                  "mountPoint": "../mnt"}, "mountPoint: path must be absolute"),
])
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(fixed_root, path, body, field):
    api, root = fixed_root
    before = tree(root.parent)
    body = {k: v.format(root=root) if isinstance(v, str) else v for k, v in body.items()}
    r = api.raw(path, body)
    assert r.status_code == 400 and r.json()["success"] is False, r.text
    assert field in r.json()["error"]
    assert tree(root.parent) == before


def test_paths_outside_the_root_fail_naming_the_field_and_the_root(api, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.qcow2").write_text("not yours")
    (root / "escape").symlink_to(outside)
    cache = root / "cache.qcow2"
    api.ok("/localstorage/volume/createempty", {"installUrl": str(cache), "size": MiB})
    before = tree(tmp_path)
    cases = [
        ("/localstorage/volume/createempty", {"installUrl": str(outside / "v.qcow2"),
                                              "size": MiB}, "installUrl"),
        ("/localstorage/volume/createempty", {"installUrl": str(root / "escape" / "v.qcow2"),
                                              "size": MiB}, "installUrl"),
        ("/localstorage/volume/createvolumefromcache", {
            "templatePathInCache": str(outside / "victim.qcow2"),
            "installUrl": str(root / "v.qcow2")}, "templatePathInCache"),
        ("/localstorage/delete", {"path": str(root / "escape" / "victim.qcow2")}, "path"),
        ("/localstorage/delete", {"path": str(outside / "victim.qcow2")}, "path"),
        ("/volume/resize", {"installPath": str(outside / "victim.qcow2"), "size": MiB},
         "installPath"),
        (f"{SMP}/createemptyvolume", {"installPath": str(root / "v.qcow2"), "size": MiB},
         "installPath"),  # local storage is not a shared mount point
    ]
    for path, body, field in cases:
        error = api.fails(path, body)
        assert error.startswith(f"{field}: "), (path, error)
        assert "outside" in error or "no file storage" in error, (path, error)
        assert str(root) in error or "/sharedmountpointprimarystorage/connect" in error
    assert tree(tmp_path) == before
    assert (outside / "victim.qcow2").read_text() == "not yours"


def test_openapi_lists_the_storage_endpoints(served):
    doc = requests.get(served.url + "/openapi.json", timeout=5).json()
    assert {"/localstorage/init", "/localstorage/getphysicalcapacity",
            "/localstorage/volume/createempty", "/localstorage/volume/createvolumefromcache",
            "/localstorage/delete", "/volume/resize", f"{SMP}/connect", f"{SMP}/getcapacity",
            f"{SMP}/createrootvolume", f"{SMP}/createemptyvolume", f"{SMP}/delete"} <= set(
        doc["paths"])


def _hostile_roots(base: Path) -> dict[str, Path]:
    """Roots a command must not set up: system directories, the data dir, a symlink
    (inside an allowed root) to /etc, a directory outside ``--storage-roots``."""
    (base / "ps").mkdir(exist_ok=True)
    link = base / "ps" / "etc-link"
    if not link.is_symlink():
        link.symlink_to("/etc")
    return {"/etc": Path("/etc"), "/root": Path("/root"), "/usr/bin": Path("/usr/bin"),
            "/dev": Path("/dev"), "/": Path("/"), "/var/lib": Path("/var/lib"),
            "cron": Path("/etc/cron.d"), "data dir": base / "data",
            "in data dir": base / "data" / "ps", "symlink": link,
            "not allowed": base / "elsewhere" / "ps"}


@pytest.mark.parametrize("path, field", [("/localstorage/init", "path"),
                                         (f"{SMP}/connect", "mountPoint")])
def test_a_root_outside_storage_roots_is_a_400_and_serves_nothing(served, api, tmp_path,
                                                                  etc_decoy, path, field):
    roots = _hostile_roots(tmp_path)
    before = tree(tmp_path), sorted(os.listdir("/etc"))
    for what, root in roots.items():
        r = api.raw(path, {field: str(root)})
        assert r.status_code == 400 and r.json()["success"] is False, (what, r.text)
        assert r.json()["error"].startswith(f"{field}: {root} "), (what, r.text)
    assert (tree(tmp_path), sorted(os.listdir("/etc"))) == before
    assert not (tmp_path / "data" / STATE_FILE).exists()  # no root was recorded
    # so no file outside an allowed root can be named for deletion
    r = api.raw("/localstorage/delete", {"path": str(etc_decoy)})
    assert r.json()["success"] is False and r.json()["error"].startswith("path: ")
    assert etc_decoy.exists()


def test_an_allowed_root_still_serves_and_etc_stays_out_of_reach(api, root, etc_decoy):
    error = api.fails("/localstorage/delete", {"path": str(etc_decoy)})
    assert error.startswith(f"path: {etc_decoy} is outside every storage root")
    assert etc_decoy.exists()


def test_a_root_recorded_by_an_older_agent_in_a_system_dir_is_not_served(tmp_path,
                                                                          etc_decoy):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / STATE_FILE).write_text(json.dumps({"localStorage": ["/etc"]}))
    s = ServedAgent(build(tmp_path))
    try:
        r = Client(s).raw("/localstorage/delete", {"path": str(etc_decoy)})
        assert r.json()["success"] is False and "no file storage" in r.json()["error"]
    finally:
        s.close()
    assert etc_decoy.exists()


LONG = "x" * 300  # a file name over NAME_MAX (255 bytes)


@pytest.mark.parametrize("path, body, field", [
    ("/localstorage/init", {"path": f"/tmp/{LONG}"}, "path"),
    ("/localstorage/getphysicalcapacity", {"storagePath": f"/tmp/{LONG}"}, "storagePath"),
    ("/localstorage/volume/createempty", {"installUrl": "{root}/" + LONG, "size": MiB},
     "installUrl"),
    ("/localstorage/volume/createvolumefromcache", {
        "installUrl": "{root}/v.qcow2", "templatePathInCache": "{root}/" + LONG},
     "templatePathInCache"),
    ("/localstorage/delete", {"path": "{root}/" + LONG}, "path"),
    ("/volume/resize", {"installPath": "{root}/" + LONG, "size": MiB}, "installPath"),
    (f"{SMP}/connect", {"mountPoint": f"/tmp/{LONG}"}, "mountPoint"),
    (f"{SMP}/getcapacity", {"mountPoint": f"/tmp/{LONG}"}, "mountPoint"),
    (f"{SMP}/createemptyvolume", {"installPath": "{root}/" + LONG, "size": MiB},
     "installPath"),
    ("/localstorage/delete", {"path": "/" + "d/" * 2100}, "path"),  # over PATH_MAX
])
def test_a_name_over_name_max_is_a_400_naming_the_field(fixed_root, path, body, field):
    api, root = fixed_root
    before = tree(root.parent)
    body = {k: v.format(root=root) if isinstance(v, str) else v for k, v in body.items()}
    r = api.raw(path, body)
    assert r.status_code == 400 and r.json()["error"].startswith(f"{field}: "), r.text
    assert tree(root.parent) == before
