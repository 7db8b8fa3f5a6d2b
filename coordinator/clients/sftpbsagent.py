"""sftpbsagent, on an SFTP backup storage's host: every endpoint the coordinator calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentlib.models import AuthorizeKeyCmd, AuthorizeKeyReply
from coordinator.agentclient import AgentCallError, AgentClient
from coordinator.clients.endpoint import Endpoint
from coordinator.clients.transport import AgentAt, Client
from sftpbsagent.models import storage

PREFIX = "/sftpbackupstorage"

CONNECT = Endpoint(f"{PREFIX}/connect", storage.ConnectCmd, storage.PingReply)
DOWNLOAD = Endpoint(f"{PREFIX}/download", storage.DownloadCmd, storage.ImageReply,
                    is_async=True)
AUTHORIZE_KEY = Endpoint(f"{PREFIX}/authorizekey", AuthorizeKeyCmd, AuthorizeKeyReply)
DELETE = Endpoint(f"{PREFIX}/delete", storage.DeleteCmd, storage.CapacityReply)


class SftpBsAgent(Client):
    """The sftpbsagent of one SFTP backup storage."""

    @classmethod
    def at(cls, agents: AgentClient, url: str,
           errors: Callable[[AgentCallError], Exception] | None = None) -> SftpBsAgent:
        return cls(AgentAt(agents, url), errors)

    def connect(self, *, wait: float | None = None, **fields: Any) -> storage.PingReply:
        return self.send(CONNECT, fields, wait)

    def download(self, *, wait: float, **fields: Any) -> storage.ImageReply:
        return self.send(DOWNLOAD, fields, wait)

    def authorize_key(self, *, wait: float | None = None, **fields: Any) -> AuthorizeKeyReply:
        return self.send(AUTHORIZE_KEY, fields, wait)

    def delete(self, *, wait: float | None = None, **fields: Any) -> storage.CapacityReply:
        return self.send(DELETE, fields, wait)
