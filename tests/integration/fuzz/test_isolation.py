"""The isolated root the fuzzer's agents run in keeps every change inside: files the
agent writes (its data, root's authorized_keys) and files deleted next to it exist only
in the overlay; it cannot see the machine's processes nor reach the root namespace but
through the ports the test allows."""

from __future__ import annotations

import socket
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from tests.fixtures.isolated import INSIDE_DATA

pytestmark = pytest.mark.integration

def test_agent_writes_and_deletes_stay_inside(isolated_agent_factory):
    real_dir = Path(tempfile.mkdtemp(prefix="zfiso-", dir="/var/tmp"))
    sentinel = real_dir / "keep-me"
    sentinel.write_text("real")
    etc_file = Path("/etc") / f"zfleet-isolated-{uuid.uuid4().hex}"
    keys = Path("/root/.ssh/authorized_keys")
    keys_before = keys.read_bytes() if keys.exists() else None
    try:
        agent = isolated_agent_factory("kvmagent")
        root = agent.root
        # the agent writes: a key pair in its data dir, then root's authorized_keys
        public = requests.post(agent.url + "/localstorage/sshkey", json={}, timeout=30)
        assert public.status_code == 200 and public.json()["success"], public.text
        added = requests.post(agent.url + "/localstorage/authorizekey", timeout=30,
                              json={"publicKey": public.json()["publicKey"]})
        assert added.status_code == 200 and added.json()["success"], added.text
        assert public.json()["publicKey"] in root.inside(keys).read_text()
        assert (keys.read_bytes() if keys.exists() else None) == keys_before
        assert root.inside(agent.data_dir).is_dir() and not INSIDE_DATA.exists()
        # a process next to it deletes a real file and creates one in /etc
        root.run(["rm", str(sentinel)])
        root.run(["touch", str(etc_file)])
        assert not root.inside(sentinel).exists() and root.inside(etc_file).exists()
        assert sentinel.read_text() == "real" and not etc_file.exists()
    finally:
        sentinel.unlink(missing_ok=True)
        real_dir.rmdir()
        etc_file.unlink(missing_ok=True)  # only if isolation failed


def test_agent_sees_only_its_processes_and_allowed_ports(isolated_agent_factory):
    agent = isolated_agent_factory("vragent")
    root = agent.root
    pids = [p for p in root.run(["ls", "/proc"]).stdout.split() if p.isdigit()]
    assert len(pids) < 20, pids  # subreaper, sleep, gunicorn and its worker, ls
    with socket.create_server((root.outer_ip, 0)) as other:  # a root-namespace service
        probe = ("import socket,sys; socket.create_connection((sys.argv[1], "
                 "int(sys.argv[2])), 2)")
        blocked = root.run(["python3", "-c", probe, root.outer_ip,
                            str(other.getsockname()[1])], check=False)
        allowed = root.run(["python3", "-c", probe, root.outer_ip,
                            str(agent.receiver.port)], check=False)
    assert blocked.rc != 0 and "timed out" in blocked.stderr, blocked
    assert allowed.rc == 0, allowed
