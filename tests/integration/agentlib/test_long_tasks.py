"""Long async commands cannot starve short ones (issue 14, finding 5): with eight host
scans running on kvmagent (as many as its task workers), a /vm/destroy still calls back
before any of them; a scan window beyond the bound is a 400."""

from __future__ import annotations

import uuid

import pytest
import requests

from agentlib.receiver import CallbackReceiver
from devcluster import procs
from tests.integration.agentlib.test_server import start_agent

pytestmark = pytest.mark.integration

SCANS = 8


def scan(window: float) -> dict:
    """A scan of a host whose Ceph mon nobody answers: it watches for the whole window."""
    return {"pool": "rbd", "monHosts": [f"127.0.0.1:{procs.free_port()}"],
            "userKey": "AQBJzLtkAAAAABAAhKQEYLDPWjzfH0fYhwCwgQ==",
            "targetHostUuid": uuid.uuid4().hex, "targetIp": "127.0.0.1",
            "targetPort": procs.free_port(), "window": window, "interval": 1.0}


def post(url: str, path: str, body: dict, taskuuid: str, receiver: CallbackReceiver):
    return requests.post(url + path, json=body, timeout=10, headers={
        "taskuuid": taskuuid, "callbackurl": receiver.url})


def test_short_command_is_not_queued_behind_long_scans(tmp_path):
    proc, url = start_agent("kvmagent", tmp_path, "--libvirt-uri", "test:///default",
                            "--task-workers", str(SCANS))
    scans = [uuid.uuid4().hex for _ in range(SCANS)]
    try:
        with CallbackReceiver() as receiver:
            for t in scans:
                assert post(url, "/ha/scanhost", scan(60), t, receiver).json()["success"]
            destroy = uuid.uuid4().hex
            ack = post(url, "/vm/destroy", {"uuid": uuid.uuid4().hex}, destroy, receiver)
            assert ack.json()["status"] == "accepted"
            [done] = receiver.wait(taskuuid=destroy, timeout=120)
            assert done.body["success"] is True, done.body
            called_back = [r.headers["taskuuid"] for r in receiver.received]
            assert not set(scans) & set(called_back), "destroy waited for a scan to end"
            for t in scans:  # no need to watch them to their end
                requests.post(url + "/job/cancel", json={"taskUuid": t}, timeout=10)

            too_long = post(url, "/ha/scanhost", scan(601), uuid.uuid4().hex, receiver)
            assert too_long.status_code == 400, too_long.text
            assert too_long.json()["error"].startswith("window")
    finally:
        procs.stop(proc)
