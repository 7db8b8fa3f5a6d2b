"""sftpbsagent: the SFTP backup storage agent (image download, store, checksum).

Images live as files under one root directory (``connect``); they arrive from http,
https, file and sftp URLs (``download``, async, with progress) and KVM hosts pull them
over ssh (kvmagent ``/localstorage/sftp/download``).
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.readiness import register_echo
from sftpbsagent.config import SftpBsAgentConfig
from sftpbsagent.handlers import storage

PORT = 7171


def build(cfg: SftpBsAgentConfig) -> Agent:
    agent = Agent("sftpbsagent", cfg)
    register_echo(agent, "/sftpbackupstorage/echo")
    storage.register(agent, cfg)
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("sftpbsagent", build, SftpBsAgentConfig, PORT, __doc__.splitlines()[0], argv)
