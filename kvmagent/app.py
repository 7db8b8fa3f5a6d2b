"""kvmagent: the agent on each KVM host (VMs via libvirt, L2, DHCP, EIP, local storage).

This is the foundation skeleton: host identity (connect/ping/echo); the VM, network and
storage handlers arrive with their issues.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.identity import Identity
from kvmagent.handlers import host

PORT = 7070


def build(cfg: AgentConfig) -> Agent:
    agent = Agent("kvmagent", cfg)
    host.register(agent, Identity(cfg.data_dir))
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("kvmagent", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
