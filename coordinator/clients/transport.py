"""How a typed client reaches its agent: through the coordinator's one
:class:`~coordinator.agentclient.AgentClient` (sync commands answered in the HTTP reply,
async ones through ``/callback``), at one URL or at the first of several that answers.

:class:`Client` is the clients' base: build the body, post it, parse the reply.
``wait`` is how long an async command may take (required) or a sync one's HTTP timeout
(default: the AgentClient's). A client built with ``errors`` raises what that makes of
an :class:`AgentCallError` instead (a storage's flows say it as the storage's error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.agentclient import AgentCallError, AgentClient
from coordinator.clients.endpoint import Call, Endpoint, R


class Transport(Protocol):
    def post(self, call: Call, wait: float | None) -> dict: ...


@dataclass(frozen=True)
class AgentAt:
    """The agent at ``url``."""

    agents: AgentClient
    url: str

    def post(self, call: Call, wait: float | None) -> dict:
        if not call.is_async:
            return self.agents.call(self.url, call.path, call.body, wait)
        if wait is None:
            raise TypeError(f"{call.path} is async: say how long to wait for its reply")
        return self.agents.call_async(self.url, call.path, call.body, wait)


@dataclass(frozen=True)
class FirstAnswering:
    """The first of ``urls`` whose ``agent`` answers, in order (a Ceph storage's
    cephagent on each of its mons). A refusal is raised as it is; when none answers, an
    unreachable :class:`AgentCallError` lists every attempt."""

    agents: AgentClient
    urls: tuple[str, ...]
    agent: str = "agent"

    def post(self, call: Call, wait: float | None) -> dict:
        errors = []
        for url in self.urls:
            try:
                return AgentAt(self.agents, url).post(call, wait)
            except AgentCallError as exc:
                if not exc.unreachable:
                    raise
                errors.append(str(exc))
        raise AgentCallError(f"no {self.agent} answers: {'; '.join(errors) or 'no URL'}",
                             unreachable=True)


class Client:
    def __init__(self, transport: Transport,
                 errors: Callable[[AgentCallError], Exception] | None = None):
        self.transport = transport
        self.errors = errors

    def send(self, endpoint: Endpoint[R], fields: dict[str, Any],
             wait: float | None = None) -> R:
        with self._errors():
            return endpoint.parse(self.transport.post(endpoint.call(**fields), wait))

    def run(self, call: Call, wait: float | None = None) -> dict:
        """A call built beforehand (one kept as a GC job, or of a list of commands): the
        agent's reply as it came."""
        with self._errors():
            return self.transport.post(call, wait)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except AgentCallError as exc:
            if self.errors is None:
                raise
            raise self.errors(exc) from None
