"""consoleproxy: the console proxy (websockify/noVNC tokens to VM consoles).

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.readiness import register_echo, register_ping

PORT = 7758


def build(cfg: AgentConfig) -> Agent:
    agent = Agent("consoleproxy", cfg)
    register_echo(agent, "/console/echo")
    register_ping(agent, "/console/ping")
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("consoleproxy", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
