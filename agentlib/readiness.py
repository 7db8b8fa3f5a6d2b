"""``echo`` (readiness) and, until an agent knows its identity, ``ping`` (liveness)."""

from __future__ import annotations

from agentlib.agent import Agent
from agentlib.models import AgentReply, EmptyCommand


def _alive(cmd: EmptyCommand) -> AgentReply:
    """Answers with success as soon as the agent can serve."""
    return AgentReply()


def register_echo(agent: Agent, *paths: str) -> None:
    for path in paths:
        agent.sync(path, quiet=True)(_alive)


def register_ping(agent: Agent, *paths: str) -> None:
    """A ping with no identity yet: agents whose ``connect`` exists answer their own."""
    for path in paths:
        agent.sync(path, quiet=True)(_alive)
