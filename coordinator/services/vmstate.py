"""The VM state machine: one enum of states, one table of the transitions allowed (by the
API flows, the agents' reports, HA and deletion), and :func:`set_state`, which every VM
state write goes through. A transition not in the table is refused with both states
named, so a flow that would put a VM where it cannot be fails loudly instead of
writing it.

The table allows what the flows do today, and a host's report of one of its VMs
(Running, Stopped, Crashed) is taken from any state but Destroyed and Expunging: the
agent sees the machine, the database only what it last heard.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from coordinator.api import ApiError
from coordinator.context import Context


class VmState(StrEnum):
    CREATED = "Created"  # a new row's (schema default), before its flow starts it
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MIGRATING = "Migrating"
    CRASHED = "Crashed"  # reported by its host
    UNKNOWN = "Unknown"
    PAUSED = "Paused"
    REBOOTING = "Rebooting"
    DESTROYED = "Destroyed"  # deleted under policy Delay/Never: recoverable
    EXPUNGING = "Expunging"


S = VmState
ON_HOST = frozenset({S.RUNNING, S.STARTING, S.MIGRATING, S.UNKNOWN, S.PAUSED, S.REBOOTING,
                     S.CRASHED})
"""States a VM may have with a host to stop it on."""
HA_RUNNING = (S.RUNNING, S.UNKNOWN, S.PAUSED, S.REBOOTING, S.STARTING)
"""States in which a VM of a lost host is restarted elsewhere (HA)."""
REPORTED = (S.RUNNING, S.STOPPED, S.CRASHED)
"""States a host reports of its VMs."""
_GONE = frozenset({S.DESTROYED, S.EXPUNGING})

TRANSITIONS: dict[VmState, frozenset[VmState]] = {s: frozenset() for s in VmState}


def _allow(sources: Iterable[VmState], targets: Iterable[VmState]) -> None:
    for source in sources:
        TRANSITIONS[source] = TRANSITIONS[source] | frozenset(targets)


# API actions
_allow([S.CREATED, S.STOPPED, S.CRASHED], [S.STARTING])  # create, start, NeverStop restart
_allow([S.STARTING], [S.RUNNING, S.STOPPED])  # started, or its start failed
_allow([S.RUNNING], [S.MIGRATING])
_allow([S.MIGRATING], [S.RUNNING])  # migrated, or its migration failed
_allow(ON_HOST, [S.STOPPING])
_allow([S.STOPPING], [*ON_HOST, S.STOPPED])  # stopped, or back where it was
_allow([s for s in VmState if s is not S.DESTROYED], [S.DESTROYED])  # policy Delay/Never
_allow([S.DESTROYED], [S.STOPPED])  # RecoverVmInstance
# HA: a VM of a lost host leaves it before it starts elsewhere
_allow(HA_RUNNING, [S.STOPPED])
# agent reports (and the host's VM sync on connect)
_allow([s for s in VmState if s not in _GONE], REPORTED)
# a write that keeps the state and changes the host (migration, a report)
for _s in VmState:
    _allow([_s], [_s])


class IllegalTransition(ApiError):
    """A VM state write the table does not allow."""


def check(current: VmState, new: VmState, vm_uuid: str = "") -> None:
    """Raise :class:`IllegalTransition` unless the table allows ``current -> new``."""
    if new not in TRANSITIONS[current]:
        who = f"VM {vm_uuid}" if vm_uuid else "VM"
        raise IllegalTransition(f"{who}: {current} -> {new} is not a legal state transition")


def set_state(ctx: Context, vm_uuid: str, new: VmState, *,
              expect: Iterable[VmState] | None = None, **fields) -> None:
    """Write the VM's state ``new`` (and ``fields`` in the same update) if the table
    allows it from the state it has; with ``expect``, that state must be one of them."""
    current = VmState(ctx.db.get("vm", vm_uuid)["state"])
    if expect is not None and current not in set(expect):
        raise IllegalTransition(f"VM {vm_uuid}: {current} -> {new}: it is {current}, "
                                f"expected {' or '.join(expect)}")
    check(current, new, vm_uuid)
    ctx.db.update("vm", vm_uuid, state=new.value, **fields)
