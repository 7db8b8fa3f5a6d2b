"""Callback and report URLs must be deliverable and must not reach the agent itself."""

import socket

import psutil
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from agentlib.callbackurl import CallbackUrl, Listen, check
from tests.fixtures.agents import build_demo_agent

ON_LOOPBACK = Listen("127.0.0.1", 7070)
EVERYWHERE = Listen("0.0.0.0", 7070)


def _an_interface_address() -> str:
    """A non-loopback IPv4 address of this namespace, or 127.0.0.1 when there is none."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return "127.0.0.1"


@pytest.mark.parametrize("url", [
    "", "abc", "ftp://127.0.0.1/x", "file:///etc/passwd", "http://", "http://:80/x",
    "http://[::1", "http://127.0.0.1:99999/cb", "http://127.0.0.1:0/cb",
    "http://127.0.0.1:80x/cb", "http://bad_host!/cb", "http://a b/cb", "http://x/\ncb",
])
def test_undeliverable_urls_are_refused(url):
    with pytest.raises(ValueError):
        check(url, ON_LOOPBACK)


@pytest.mark.parametrize("url, listen", [
    ("http://127.0.0.1:7070/flatnetworkprovider/dhcp/connect", ON_LOOPBACK),
    ("http://127.0.0.9:7070/x", ON_LOOPBACK),  # any loopback address on the agent's port
    ("http://localhost:7070/x", ON_LOOPBACK),
    ("http://[::1]:7070/x", ON_LOOPBACK),
    ("http://[::ffff:127.0.0.1]:7070/x", ON_LOOPBACK),
    ("http://0.0.0.0:7070/x", ON_LOOPBACK),
    (f"http://{_an_interface_address()}:7070/x", EVERYWHERE),
    (f"http://{_an_interface_address()}/x", Listen("0.0.0.0", 80)),  # the scheme's port
    ("https://10.9.8.7/x", Listen("10.9.8.7", 443)),
])
def test_urls_reaching_the_agent_itself_are_refused(url, listen):
    with pytest.raises(ValueError, match="agent itself"):
        check(url, listen)


@pytest.mark.parametrize("url, listen", [
    ("http://127.0.0.1:8080/callback", ON_LOOPBACK),  # another port on loopback
    ("http://10.0.0.5:7070/callback", ON_LOOPBACK),  # another host, same port
    ("https://coordinator.example/x", Listen("0.0.0.0", 7070)),  # not resolved: port 443
    ("http://[fd00::1]:9000/cb", EVERYWHERE),
    ("http://127.0.0.1/cb", None),
])
def test_deliverable_urls_elsewhere_are_accepted(url, listen):
    assert check(url, listen) == url


class _Connect(BaseModel):
    send_command_url: CallbackUrl


def test_callback_url_type_uses_the_listen_address_from_the_context():
    url = "http://127.0.0.1:7070/report"
    assert _Connect.model_validate({"send_command_url": url}).send_command_url == url
    with pytest.raises(ValidationError, match="agent itself"):
        _Connect.model_validate({"send_command_url": url}, context={"listen": ON_LOOPBACK})
    with pytest.raises(ValidationError, match="not a valid URL"):
        TypeAdapter(CallbackUrl).validate_python("http://[::1")


@pytest.fixture
def client():
    agent = build_demo_agent()
    yield agent.app.test_client()
    agent.close()


@pytest.mark.parametrize("callback", [
    "http://[::1", "http://127.0.0.1:99999/cb", "abc",
    "http://localhost/cb",  # the test client's server is localhost:80
])
def test_async_command_with_a_bad_callbackurl_is_a_400_and_never_runs(client, callback):
    r = client.post("/demo/sleep", json={"seconds": 0},
                    headers={"taskuuid": "t-cb", "callbackurl": callback})
    assert r.status_code == 400, r.text
    assert r.get_json()["error"].startswith("callbackurl: ")
    r = client.post("/demo/sleep", json={"seconds": 0},
                    headers={"taskuuid": "t-cb", "callbackurl": "http://127.0.0.1:9/cb"})
    assert r.get_json()["status"] == "accepted"  # the refused one was never registered
