"""vragent: the agent inside virtual router VMs (DHCP, DNS, SNAT, EIP, port forwarding, LB).

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.readiness import register_echo, register_ping

PORT = 7272


def build(cfg: AgentConfig) -> Agent:
    agent = Agent("vragent", cfg)
    register_echo(agent, "/echo")
    register_ping(agent, "/ping")
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("vragent", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
