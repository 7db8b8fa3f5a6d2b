"""Base types for agent commands and replies (ZStack's camelCase JSON on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from agentlib.types import SafeName, SshPublicKey


class AgentCommand(BaseModel):
    """A command body. Fields are snake_case in Python and camelCase on the wire.

    Unknown fields are ignored: the coordinator may send more than an agent needs, as
    ZStack's management node does. Numbers must be finite (no NaN or infinite timeout);
    booleans are declared ``StrictBool`` so ``0``, ``1`` and ``"yes"`` are refused.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True,
        allow_inf_nan=False,
    )


class AgentReply(BaseModel):
    """A reply body: ``success`` and ``error`` plus the command's own fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    success: bool = True
    error: str = ""

    def wire(self) -> dict:
        return self.model_dump(by_alias=True, mode="json")


class EmptyCommand(AgentCommand):
    """For endpoints that take no fields (echo, ping without identity)."""


class CancelJobCommand(AgentCommand):
    """``/job/cancel``: the ``taskuuid`` of a running or queued async command."""

    task_uuid: SafeName


class AuthorizeKeyCmd(AgentCommand):
    """``authorizekey``: let the holder of ``publicKey`` (another agent) log in by ssh."""

    public_key: SshPublicKey


class AuthorizeKeyReply(AgentReply):
    added: bool = False
    """False: the key was authorized already."""
