"""ChangeHostState: enable, disable, maintain (:mod:`coordinator.services.maintenance`)."""

from __future__ import annotations

from typing import Literal

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import maintenance


class ChangeHostStateMsg(ApiMessage):
    uuid: Uuid
    state_event: Literal["enable", "disable", "maintain"]


@api("ChangeHostState", long=True)
def change_host_state(msg: ChangeHostStateMsg, ctx: Context, deadline: Deadline) -> dict:
    """Enable or disable a host (no new VMs), or put it in maintenance (its VMs
    live-migrate away, those that cannot are stopped)."""
    moved = maintenance.change_state(ctx, msg.uuid, msg.state_event, deadline)
    return {**inventory_reply(ctx, "host", msg.uuid), **moved}
