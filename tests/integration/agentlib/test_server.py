"""Every agent's console script serves under gunicorn; kvmagent keeps its identity across a
restart."""

import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from devcluster import procs

pytestmark = pytest.mark.integration

AGENTS = {
    "kvmagent": ["/host/echo", "/host/ping"],
    "cephagent": ["/ceph/primarystorage/echo", "/ceph/backupstorage/echo"],  # ping: a cluster
    "sftpbsagent": ["/sftpbackupstorage/echo", "/sftpbackupstorage/ping"],
    "vragent": ["/echo", "/ping"],
    "consoleproxy": ["/console/echo", "/console/ping"],
}


def start_agent(name: str, tmp_path: Path, *extra: str) -> tuple[procs.Proc, str]:
    port = procs.free_port()
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    proc = procs.spawn(name, [exe, "--host", "127.0.0.1", "--port", str(port),
                              "--data-dir", str(tmp_path / name), *extra],
                       tmp_path / f"{name}.log")
    url = f"http://127.0.0.1:{port}"
    procs.wait_for(lambda: requests.get(url + "/openapi.json", timeout=1).ok, 15,
                   f"{name} on port {port}")
    return proc, url


@pytest.mark.parametrize("name", AGENTS)
def test_agent_serves_its_endpoints_and_openapi_under_gunicorn(name, tmp_path):
    proc, url = start_agent(name, tmp_path)
    try:
        for path in AGENTS[name]:
            r = requests.post(url + path, timeout=5)
            assert r.status_code == 200 and r.json()["success"] is True, (path, r.text)
        doc = requests.get(url + "/openapi.json", timeout=5).json()
        assert set(AGENTS[name]) <= set(doc["paths"])
        # gunicorn: a master and exactly one worker, so in-process locks cover the host
        assert len(psutil.Process(proc.pid).children()) == 1
    finally:
        procs.stop(proc)
    assert not proc.alive()


def test_kvmagent_identity_survives_a_restart(tmp_path):
    host_uuid = "0123456789abcdef0123456789abcdef"
    proc, url = start_agent("kvmagent", tmp_path)
    try:
        r = requests.post(url + "/host/connect", timeout=5, json={
            "hostUuid": host_uuid, "sendCommandUrl": "http://127.0.0.1:9/report"})
        assert r.json() == {"success": True, "error": ""}
    finally:
        procs.stop(proc)
    proc, url = start_agent("kvmagent", tmp_path)
    try:
        assert requests.post(url + "/host/ping", timeout=5).json()["hostUuid"] == host_uuid
    finally:
        procs.stop(proc)


def test_foreground_mode_and_help(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kvmagent", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--data-dir" in out and "ZFLEET_KVMAGENT_" in out
    proc, url = start_agent("vragent", tmp_path, "--foreground")
    try:
        assert requests.post(url + "/ping", timeout=5).json()["success"] is True
    finally:
        procs.stop(proc)
