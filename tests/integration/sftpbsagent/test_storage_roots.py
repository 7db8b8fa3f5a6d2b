"""sftpbsagent's storage must lie inside ``--storage-roots``: never a system directory
nor its own data dir (its identity and ssh key), which ``garbage`` would list and, with
``remove``, delete. Paths over the kernel's limits are a 400, not a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sftpbsagent.app import build
from sftpbsagent.config import SftpBsAgentConfig
from tests.fixtures.agents import ServedAgent

pytestmark = pytest.mark.integration

P = "/sftpbackupstorage"
LONG = "x" * 300  # a file name over NAME_MAX (255 bytes)


def tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def test_connect_refuses_system_dirs_its_data_dir_and_roots_not_allowed(sftpbs, tmp_path):
    sftpbs.call(f"{P}/sshkey")  # the key garbage once deleted
    link = tmp_path / "etc-link"
    link.symlink_to("/etc")
    before = tree(tmp_path), tree(sftpbs.data_dir), sorted(os.listdir("/etc"))
    for root in ("/etc", "/root", "/usr/bin", "/dev", "/", "/var/lib", sftpbs.data_dir,
                 sftpbs.data_dir / "ssh", link, "/srv/elsewhere"):
        r = sftpbs.post(f"{P}/connect", {"storagePath": str(root)})
        assert r.status_code == 400 and r.json()["success"] is False, (root, r.text)
        assert r.json()["error"].startswith(f"storagePath: {root} "), r.text
    assert (tree(tmp_path), tree(sftpbs.data_dir), sorted(os.listdir("/etc"))) == before
    assert sftpbs.call(f"{P}/ping")["storagePath"] == str(sftpbs.root)

    # garbage walks the connected storage only: nothing of the data dir is listed or removed
    reply = sftpbs.call(f"{P}/garbage", {"installPaths": [], "remove": True})
    assert reply["success"] and all(p.startswith(f"{sftpbs.root}/") for p in reply["garbage"])
    assert tree(sftpbs.data_dir) == before[1]


def test_a_storage_kept_by_an_older_agent_in_its_data_dir_is_not_served(tmp_path):
    data = tmp_path / "data"
    (data / "ssh").mkdir(parents=True)
    (data / "ssh" / "id_ed25519").write_text("secret")
    (data / "identity.json").write_text(json.dumps({"storagePath": str(data)}))
    cfg = SftpBsAgentConfig(data_dir=data, storage_roots=[tmp_path / "bs"])
    served = ServedAgent(build(cfg))
    try:
        r = requests.post(f"{served.url}{P}/garbage", json={"remove": True}, timeout=30)
        assert r.json()["success"] is False and "storagePath" in r.json()["error"], r.text
    finally:
        served.close()
    assert (data / "ssh" / "id_ed25519").read_text() == "secret"


@pytest.mark.parametrize("path, body, field", [
    (f"{P}/connect", {"storagePath": f"/tmp/{LONG}"}, "storagePath"),
    (f"{P}/delete", {"installPath": "{root}/" + LONG}, "installPath"),
    (f"{P}/getimagesize", {"installPath": "{root}/" + LONG}, "installPath"),
    (f"{P}/gethash", {"path": "{root}/" + LONG}, "path"),
    (f"{P}/garbage", {"installPaths": ["{root}/" + LONG]}, "installPaths.0"),
])
def test_a_name_over_name_max_is_a_400_naming_the_field(sftpbs, path, body, field):
    before = tree(sftpbs.root)
    body = {k: v.format(root=sftpbs.root) if isinstance(v, str) else
            [x.format(root=sftpbs.root) for x in v] for k, v in body.items()}
    r = sftpbs.post(path, body)
    assert r.status_code == 400 and r.json()["error"].startswith(f"{field}: "), r.text
    assert tree(sftpbs.root) == before


@pytest.mark.parametrize("agent", ["sftpbsagent", "kvmagent"])
def test_a_system_dir_in_storage_roots_stops_the_agent_at_startup(agent, tmp_path):
    exe = Path(sys.executable).parent / agent
    for roots, said in [("/srv/ok,/etc", "/etc is a system directory"),
                        (str(tmp_path), "holds or is inside the agent's data dir")]:
        out = subprocess.run([exe, "--data-dir", str(tmp_path / "data"), "--storage-roots",
                              roots], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "storage_roots" in out.stderr and said in out.stderr, \
            out.stderr
