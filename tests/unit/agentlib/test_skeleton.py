"""The skeleton agents (vragent, consoleproxy): readiness and liveness, nothing else."""

import pytest

from agentlib.config import AgentConfig
from consoleproxy import app as consoleproxy
from vragent import app as vragent


@pytest.mark.parametrize("module, prefix, port", [(vragent, "", 7272),
                                                  (consoleproxy, "/console", 7758)])
def test_a_skeleton_answers_echo_and_ping_under_its_prefix(module, prefix, port):
    assert module.skeleton.port == port
    agent = module.build(AgentConfig())
    try:
        client = agent.app.test_client()
        for path in (f"{prefix}/echo", f"{prefix}/ping"):
            r = client.post(path, json={})
            assert r.status_code == 200 and r.get_json() == {"success": True, "error": ""}
        paths = set(client.get("/openapi.json").get_json()["paths"])
        assert paths == {f"{prefix}/echo", f"{prefix}/ping", "/job/cancel"}
    finally:
        agent.close()
