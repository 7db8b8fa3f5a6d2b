"""kvmagent host models: identity, capacity, facts."""

from __future__ import annotations

from pydantic import AnyHttpUrl

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import Uuid


class ConnectCmd(AgentCommand):
    host_uuid: Uuid
    send_command_url: AnyHttpUrl


class PingReply(AgentReply):
    host_uuid: str | None = None
