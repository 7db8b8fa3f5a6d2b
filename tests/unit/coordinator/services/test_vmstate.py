"""The VM state machine: the transitions the flows, reports, HA and deletion make pass;
others are refused naming both states, and refused writes change nothing."""

import pytest

from coordinator.api import ApiError
from coordinator.db import new_uuid
from coordinator.services.vmstate import IllegalTransition, VmState, check, set_state

S = VmState
LEGAL = [
    (S.CREATED, S.STARTING), (S.STARTING, S.RUNNING), (S.STARTING, S.STOPPED),
    (S.STOPPED, S.STARTING), (S.CRASHED, S.STARTING), (S.RUNNING, S.MIGRATING),
    (S.MIGRATING, S.RUNNING), (S.RUNNING, S.STOPPING), (S.STOPPING, S.STOPPED),
    (S.STOPPING, S.RUNNING), (S.RUNNING, S.DESTROYED), (S.STOPPED, S.DESTROYED),
    (S.DESTROYED, S.STOPPED), (S.UNKNOWN, S.STOPPED), (S.RUNNING, S.CRASHED),
    (S.STOPPED, S.RUNNING), (S.RUNNING, S.RUNNING)]
ILLEGAL = [
    (S.STOPPED, S.MIGRATING), (S.STOPPED, S.STOPPING), (S.CREATED, S.MIGRATING),
    (S.DESTROYED, S.RUNNING), (S.DESTROYED, S.STARTING), (S.EXPUNGING, S.STOPPED),
    (S.CREATED, S.STOPPING), (S.MIGRATING, S.STARTING), (S.RUNNING, S.STARTING)]


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_legal_transitions_pass(current, new):
    check(current, new)


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_illegal_transitions_raise_naming_both_states(current, new):
    with pytest.raises(IllegalTransition, match=f"{current} -> {new} is not a legal"):
        check(current, new, "vm-1")
    assert issubclass(IllegalTransition, ApiError)  # an API answers it as a refusal


def test_set_state_writes_legal_states_with_fields_and_refuses_the_rest(coordinator):
    db = coordinator.ctx.db
    uuid = new_uuid()
    db.insert("vm", {"uuid": uuid, "name": "v"})
    assert db.get("vm", uuid)["state"] == "Created"  # the schema's default
    set_state(coordinator.ctx, uuid, S.STARTING)
    set_state(coordinator.ctx, uuid, S.STOPPED, host_uuid=None)
    with pytest.raises(IllegalTransition, match=f"VM {uuid}: Stopped -> Migrating"):
        set_state(coordinator.ctx, uuid, S.MIGRATING)
    with pytest.raises(IllegalTransition, match="it is Stopped, expected Destroyed"):
        set_state(coordinator.ctx, uuid, S.STOPPED, expect=[S.DESTROYED])
    assert db.get("vm", uuid)["state"] == "Stopped"
