"""Host identity: connect, ping, echo."""

from __future__ import annotations

import logging

from agentlib.agent import Agent
from agentlib.identity import Identity
from agentlib.models import AgentReply, EmptyCommand
from agentlib.readiness import register_echo
from kvmagent.models.host import ConnectCmd, PingReply

log = logging.getLogger(__name__)


def register(agent: Agent, identity: Identity) -> None:
    agent.reporter.url = identity.get("sendCommandUrl")

    register_echo(agent, "/host/echo")

    @agent.sync("/host/connect")
    def connect(cmd: ConnectCmd) -> AgentReply:
        """Bind this agent to a host uuid and the coordinator's report URL (persisted)."""
        previous = identity.get("hostUuid")
        identity.update(hostUuid=cmd.host_uuid, sendCommandUrl=str(cmd.send_command_url))
        agent.reporter.url = str(cmd.send_command_url)
        if previous and previous != cmd.host_uuid:
            log.warning("host uuid changed from %s to %s", previous, cmd.host_uuid)
        log.info("connected as host %s, reporting to %s", cmd.host_uuid, cmd.send_command_url)
        return AgentReply()

    @agent.sync("/host/ping", quiet=True)
    def ping(cmd: EmptyCommand) -> PingReply:
        """The host uuid this agent was connected with (null before connect)."""
        return PingReply(host_uuid=identity.get("hostUuid"))
