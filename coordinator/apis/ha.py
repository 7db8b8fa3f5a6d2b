"""VM HA levels: set, get, delete (:mod:`coordinator.services.ha`)."""

from __future__ import annotations

from typing import Literal

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.services import ha
from coordinator.services.lookup import require


class SetHaLevelMsg(ApiMessage):
    uuid: Uuid
    level: Literal["NeverStop", "OnHostFailure"]


class VmUuidMsg(ApiMessage):
    uuid: Uuid


@api("SetVmInstanceHaLevel")
def set_level(msg: SetHaLevelMsg, ctx: Context) -> dict:
    """NeverStop or OnHostFailure: restarted on another host if its host is lost
    (needs its volumes on Ceph)."""
    ha.set_level(ctx, msg.uuid, msg.level)
    return inventory_reply(ctx, "vm", msg.uuid)


@api("GetVmInstanceHaLevel")
def get_level(msg: VmUuidMsg, ctx: Context) -> dict:
    """The VM's HA level (``level`` is null without one)."""
    return {"level": require(ctx, "vm", msg.uuid, "uuid")["ha_level"] or None}


@api("DeleteVmInstanceHaLevel")
def delete_level(msg: VmUuidMsg, ctx: Context) -> dict:
    """No HA: the VM stays down with its host."""
    ha.set_level(ctx, msg.uuid, "")
    return {}
