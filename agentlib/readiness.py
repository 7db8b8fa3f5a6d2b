"""The ``echo`` endpoint every agent serves: an empty success as soon as it can serve."""

from __future__ import annotations

from agentlib.agent import Agent
from agentlib.models import AgentReply, EmptyCommand


def register_echo(agent: Agent, *paths: str) -> None:
    for path in paths:

        def echo(cmd: EmptyCommand) -> AgentReply:
            """Readiness: answers as soon as the agent can serve."""
            return AgentReply()

        agent.sync(path, quiet=True)(echo)
