"""cephagent: the Ceph primary and backup storage agent on Ceph mon nodes.

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.readiness import register_echo, register_ping

PORT = 7762


def build(cfg: AgentConfig) -> Agent:
    agent = Agent("cephagent", cfg)
    register_echo(agent, "/ceph/primarystorage/echo", "/ceph/backupstorage/echo")
    register_ping(agent, "/ceph/primarystorage/ping", "/ceph/backupstorage/ping")
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("cephagent", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
