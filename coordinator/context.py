"""What every API handler gets: the database, the agents, configs, locks and jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agentlib.locks import NamedLocks
from coordinator.agentclient import AgentClient
from coordinator.api import Apis
from coordinator.config import CoordinatorConfig
from coordinator.db import Database
from coordinator.globalconfig import GlobalConfig
from coordinator.jobs import Jobs


@dataclass
class Context:
    cfg: CoordinatorConfig
    db: Database
    apis: Apis
    agents: AgentClient
    gconf: GlobalConfig | None = None
    jobs: Jobs | None = None
    locks: NamedLocks = field(default_factory=NamedLocks)
    on_host_connect: list[Callable[[Context, str], None]] = field(default_factory=list)
    """Run after a host (re)connected: storage re-prepares it, GC runs its jobs."""

    @property
    def report_url(self) -> str:
        """The ``sendCommandUrl`` agents are connected with."""
        return self.agents.callback_url.rsplit("/", 1)[0] + "/report"
