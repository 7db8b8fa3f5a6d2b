"""VM HA: ``/ha/selffencer/setup|cancel|status`` and ``/ha/scanhost``.

The coordinator sets a self-fencer up per Ceph primary storage on every host, and asks a
peer host to scan a host it lost before restarting that host's HA VMs elsewhere (see
:mod:`kvmagent.drivers.selffencer` and :mod:`kvmagent.drivers.hostscan`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.models import AgentReply, EmptyCommand
from agentlib.routes import Routes
from agentlib.tasks import Task
from agentlib.types import uuid_key
from kvmagent.drivers.heartbeat import RadosTarget
from kvmagent.drivers.hostscan import scan_host
from kvmagent.drivers.selffencer import FencerConfig, SelfFencers
from kvmagent.models.ha import (
    CephAccess,
    FencerStatus,
    ScanHostCmd,
    ScanHostReply,
    SelfFencerCancelCmd,
    SelfFencerSetupCmd,
    SelfFencerSetupReply,
    SelfFencerStatusReply,
)

routes = Routes()


@dataclass
class Fencing:
    """What the handlers work on: this host's self-fencers and the agent's locks."""

    fencers: SelfFencers
    locks: NamedLocks

    def lock(self, ps_uuid: str):
        return self.locks.hold(f"selffencer:{ps_uuid}")


def register(agent: Agent, fencers: SelfFencers) -> None:
    agent.include(routes, Fencing(fencers, agent.locks))


@routes.sync("/ha/selffencer/setup")
def setup(fencing: Fencing, cmd: SelfFencerSetupCmd) -> SelfFencerSetupReply:
    """Heartbeat into ``pool`` every ``interval`` and fence this host's VMs on it after
    ``interval*maxAttempts`` without storage and coordinator (idempotent)."""
    ps_uuid = uuid_key(cmd.ps_uuid)
    with fencing.lock(ps_uuid):
        fencer = fencing.fencers.setup(FencerConfig(ps_uuid, cmd.host_uuid, _target(cmd),
                                                    cmd.interval, cmd.max_attempts))
    return SelfFencerSetupReply(heartbeat_object=fencer.config.heartbeat_object)


@routes.sync("/ha/selffencer/cancel")
def cancel(fencing: Fencing, cmd: SelfFencerCancelCmd) -> AgentReply:
    """Stop and forget the fencer of ``psUuid``; an unknown one counts as cancelled."""
    ps_uuid = uuid_key(cmd.ps_uuid)
    with fencing.lock(ps_uuid):
        fencing.fencers.cancel(ps_uuid)
    return AgentReply()


@routes.sync("/ha/selffencer/status")
def status(fencing: Fencing, cmd: EmptyCommand) -> SelfFencerStatusReply:
    """Every fencer's heartbeat counter, failures, last coordinator contact, fencing."""
    return SelfFencerStatusReply(fencers=[FencerStatus(**s) for s in fencing.fencers.status()])


@routes.async_("/ha/scanhost", long=True)
def scanhost(fencing: Fencing, cmd: ScanHostCmd, task: Task) -> ScanHostReply:
    """Is ``targetIp:targetPort`` reachable, and is the target's heartbeat Alive
    (moving), Stale (still for ``window`` seconds) or Missing?"""
    scan = scan_host(_target(cmd), cmd.target_host_uuid, cmd.target_ip, cmd.target_port,
                     cmd.window, cmd.interval, task.check_cancelled)
    hb = scan.heartbeat
    return ScanHostReply(reachable=scan.reachable, heartbeat=hb.state,
                         heartbeat_error=hb.error, counter=hb.counter,
                         last_write_time=hb.time)


def _target(cmd: CephAccess) -> RadosTarget:
    return RadosTarget(cmd.pool, tuple(cmd.mon_hosts), cmd.user_name, cmd.user_key)
