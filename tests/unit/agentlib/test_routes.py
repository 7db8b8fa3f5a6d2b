"""Module-level handlers declared on a Routes and served by Agent.include: each agent
passes its own state, so two agents in one process never share it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.errors import BadRequest
from agentlib.models import AgentCommand, AgentReply
from agentlib.receiver import CallbackReceiver
from agentlib.routes import Routes
from agentlib.tasks import Task


class NameCmd(AgentCommand):
    name: str


class CountReply(AgentReply):
    owner: str
    count: int


@dataclass
class Counter:
    owner: str
    count: int = 0


routes = Routes()


def refuse_bad(counter: Counter, cmd: NameCmd) -> None:
    if cmd.name == counter.owner:
        raise BadRequest(f"name: {cmd.name} is the owner")


@routes.sync("/count", quiet=True)
def count(counter: Counter, cmd: NameCmd) -> CountReply:
    """Count a call on this agent's counter."""
    counter.count += 1
    return CountReply(owner=counter.owner, count=counter.count)


@routes.async_("/count/later", long=True, check=refuse_bad)
def count_later(counter: Counter, cmd: NameCmd, task: Task) -> CountReply:
    """Count a call, answered by callback."""
    task.check_cancelled()
    return count(counter, cmd)


def agent_with(counter: Counter, prefix: str = "") -> Agent:
    agent = Agent("demo", AgentConfig(task_workers=1, callback_retry_seconds=5))
    agent.include(routes, counter, prefix)
    return agent


def test_two_agents_in_one_process_serve_the_same_functions_on_their_own_state():
    a, b = Counter("a"), Counter("b")
    agents = [agent_with(a), agent_with(b)]
    try:
        ca, cb = (x.app.test_client() for x in agents)
        assert ca.post("/count", json={"name": "x"}).get_json()["count"] == 1
        assert ca.post("/count", json={"name": "x"}).get_json()["count"] == 2
        assert cb.post("/count", json={"name": "x"}).get_json() == {
            "success": True, "error": "", "owner": "b", "count": 1}
        assert (a.count, b.count) == (2, 1)
    finally:
        for x in agents:
            x.close()


def test_the_route_keeps_the_function_its_options_and_docs():
    agent = agent_with(Counter("a"), prefix="/p")
    try:
        sync, later = agent.routes["/p/count"], agent.routes["/p/count/later"]
        assert sync.handler is count and sync.quiet and sync.summary == (
            "Count a call on this agent's counter.")
        assert later.kind == "async" and later.takes_task and later.check is refuse_bad
        assert (sync.command, sync.reply) == (NameCmd, CountReply)
        assert agent.tasks._long_paths == {"/p/count/later"}
    finally:
        agent.close()


def test_async_handler_and_its_check_get_the_state():
    counter = Counter("a")
    agent = agent_with(counter)
    try:
        client = agent.app.test_client()
        with CallbackReceiver() as receiver:
            headers = {"taskuuid": uuid.uuid4().hex, "callbackurl": receiver.url}
            r = client.post("/count/later", json={"name": "a"}, headers=headers)
            assert r.status_code == 400 and r.get_json()["error"] == "name: a is the owner"
            r = client.post("/count/later", json={"name": "x"}, headers=headers)
            assert r.status_code == 200
            [reply] = receiver.wait(taskuuid=headers["taskuuid"], timeout=10)
        assert reply.body["owner"] == "a" and counter.count == 1
    finally:
        agent.close()


def test_a_handler_without_a_command_after_its_state_is_refused():
    bad = Routes()

    @bad.sync("/bad")
    def handler(cmd: NameCmd) -> AgentReply:  # no state parameter
        return AgentReply()

    agent = Agent("demo", AgentConfig())
    try:
        with pytest.raises(TypeError, match=r"handler: parameter 2 \(the command\)"):
            agent.include(bad, Counter("a"))
    finally:
        agent.close()
