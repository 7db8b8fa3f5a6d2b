"""An agent that serves only its readiness (echo) and liveness (ping) endpoints.

vragent and consoleproxy are such skeletons until their commands arrive: one definition,
so they start, configure and answer alike (and the coordinator can already check them).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.readiness import register_echo, register_ping


@dataclass(frozen=True)
class Skeleton:
    """Agent ``name`` on ``port``, its endpoints ``<prefix>/echo`` and ``<prefix>/ping``."""

    name: str
    port: int
    prefix: str
    description: str

    def build(self, cfg: AgentConfig) -> Agent:
        agent = Agent(self.name, cfg)
        register_echo(agent, f"{self.prefix}/echo")
        register_ping(agent, f"{self.prefix}/ping")
        return agent

    def main(self, argv: list[str] | None = None) -> None:
        server.main(self.name, self.build, AgentConfig, self.port, self.description, argv)
