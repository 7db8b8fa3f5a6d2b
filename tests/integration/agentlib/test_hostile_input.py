"""Hostile requests against real agents under gunicorn (issue 14, findings 4, 7b, 9, 10):
callbacks into the agent itself, undeliverable callback URLs, loose values, a malformed
chunked body, other methods, and what the OpenAPI document promises."""

from __future__ import annotations

import json
import re
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from openapi_spec_validator import validate

from agentlib.receiver import CallbackReceiver
from devcluster import procs
from tests.integration.agentlib.test_server import AGENTS, start_agent

pytestmark = pytest.mark.integration

UUID_PATTERN = "^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$"
CONNECT = {  # agent -> (path, a body that is valid but for sendCommandUrl)
    "kvmagent": ("/host/connect", {"hostUuid": "0123456789abcdef0123456789abcdef"}),
    "cephagent": ("/ceph/primarystorage/connect", {}),
    "sftpbsagent": ("/sftpbackupstorage/connect", {"storagePath": "/tmp/zfleet-bs"}),
}


@pytest.fixture(scope="module", params=list(AGENTS))
def served(request, tmp_path_factory):
    """(name, url) of an agent under gunicorn, once for this module's tests."""
    proc, url = start_agent(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield request.param, url
    finally:
        procs.stop(proc)


@pytest.fixture(scope="module")
def kvmagent(tmp_path_factory):
    proc, url = start_agent("kvmagent", tmp_path_factory.mktemp("kvmagent"))
    try:
        yield url
    finally:
        procs.stop(proc)


def _raw(url: str, request: bytes) -> tuple[bytes, bytes]:
    """Send ``request`` as is; the reply's head and body, read until the agent closes the
    connection (a socket timeout fails the test)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_malformed_chunked_body_is_a_400_naming_the_body(served):
    name, url = served
    path = AGENTS[name][0]
    head, body = _raw(url, f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: "
                      "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "zz\r\n{}\r\n0\r\n\r\n".encode())
    assert head.startswith(b"HTTP/1.1 400 "), head  # and the agent closed the connection
    reply = json.loads(body)
    assert reply["success"] is False and reply["error"].startswith("body: ")
    assert requests.post(url + path, timeout=5).json()["success"] is True


def test_other_methods_are_a_405_with_allow(served):
    name, url = served
    r = requests.get(url + AGENTS[name][0], timeout=5)
    assert r.status_code == 405 and r.json()["success"] is False
    assert "POST" in r.headers["Allow"]


def test_openapi_is_valid_and_states_patterns_and_required_bodies(served):
    name, url = served
    doc = requests.get(url + "/openapi.json", timeout=5).json()
    validate(doc)
    for path, item in doc["paths"].items():
        op = item["post"]
        assert op["requestBody"]["required"] is True, path
        assert "ErrorReply" in json.dumps(op["responses"]["400"]), path
    text = json.dumps(doc)
    if name in ("kvmagent", "cephagent", "sftpbsagent"):
        assert json.dumps(UUID_PATTERN) in text
    if name in ("kvmagent", "sftpbsagent"):  # absolute paths
        assert '"pattern": "^(?:(?!' in text
    if name == "kvmagent":
        assert '"format": "ipv4"' in text and "[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}" in text


def _async(url: str, path: str, body: dict | bytes, taskuuid: str,
           callback: str) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + path, data=data, timeout=10, headers={
        "Content-Type": "application/json", "taskuuid": taskuuid, "callbackurl": callback})


def test_callback_into_the_agent_itself_is_refused_and_nothing_runs(kvmagent):
    port = urlsplit(kvmagent).port
    destroy = {"uuid": uuid.uuid4().hex}
    with CallbackReceiver() as receiver:
        for own in (f"http://127.0.0.1:{port}/flatnetworkprovider/dhcp/connect",
                    f"http://localhost:{port}/host/connect",
                    f"http://127.0.0.2:{port}/x", f"http://[::1]:{port}/x"):
            task = uuid.uuid4().hex
            r = _async(kvmagent, "/vm/destroy", destroy, task, own)
            assert r.status_code == 400, (own, r.text)
            assert r.json()["error"].startswith("callbackurl: ") and "itself" in r.text
            # the refused command was never taken: the same taskuuid is new to the agent
            again = _async(kvmagent, "/vm/destroy", destroy, task, receiver.url)
            assert again.json()["status"] == "accepted", again.text
            receiver.wait(taskuuid=task, timeout=30)


@pytest.mark.parametrize("callback", ["http://[::1", "http://127.0.0.1:99999/cb", "abc",
                                      "http://127.0.0.1:0/cb", "gopher://127.0.0.1/cb"])
def test_undeliverable_callbackurl_is_a_400(kvmagent, callback):
    r = _async(kvmagent, "/vm/destroy", {"uuid": uuid.uuid4().hex}, uuid.uuid4().hex, callback)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("callbackurl: ")


@pytest.mark.parametrize("path, body, field", [
    ("/vm/stop", b'{"uuid": "0123456789abcdef0123456789abcdef", "timeout": 1e999}', "timeout"),
    ("/vm/stop", {"uuid": "0123456789abcdef0123456789abcdef", "timeout": 10**9}, "timeout"),
    ("/flatnetworkprovider/dhcp/batchApply", {"dhcp": [], "rebuild": 0}, "rebuild"),
    ("/flatnetworkprovider/userdata/batchapply", {"userdata": [], "rebuild": "yes"},
     "rebuild"),
    ("/flatnetworkprovider/userdata/apply", {"userdata": {
        "bridgeName": "br0", "namespaceName": "ns1", "vmIp": "10.0.0.5",
        "metadata": {"vmUuid": "vm1"}, "port": 99999}}, "userdata.port"),
])
def test_loose_values_are_a_400_naming_the_field(kvmagent, path, body, field):
    with CallbackReceiver() as receiver:
        r = _async(kvmagent, path, body, uuid.uuid4().hex, receiver.url)
    assert r.status_code == 400, r.text
    assert re.match(rf"{re.escape(field)}: ", r.json()["error"]), r.text


@pytest.mark.parametrize("name", list(CONNECT))
def test_send_command_url_is_checked_and_nothing_changes(name, tmp_path):
    proc, url = start_agent(name, tmp_path)
    path, body = CONNECT[name]
    try:
        for bad in (url + "/x", "http://[::1", "http://127.0.0.1:99999/r", "abc"):
            r = requests.post(url + path, json={**body, "sendCommandUrl": bad}, timeout=10)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"].startswith("sendCommandUrl: "), r.text
    finally:
        procs.stop(proc)
    identity = tmp_path / name / "identity.json"
    assert not identity.exists() or "sendCommandUrl" not in identity.read_text()
