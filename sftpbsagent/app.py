"""sftpbsagent: the SFTP backup storage agent (image download, store, checksum).

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.readiness import register_echo, register_ping

PORT = 7171


def build(cfg: AgentConfig) -> Agent:
    agent = Agent("sftpbsagent", cfg)
    register_echo(agent, "/sftpbackupstorage/echo")
    register_ping(agent, "/sftpbackupstorage/ping")
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("sftpbsagent", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
