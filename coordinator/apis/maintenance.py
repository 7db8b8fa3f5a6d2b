"""Host states (HCI manual): Enabled, Disabled (no new VMs), and maintenance: the host
takes no new VMs, its running VMs leave by live migration (those that cannot move,
e.g. on local storage, are stopped), then it is in Maintenance until ``enable``."""

from __future__ import annotations

import logging
from typing import Literal

from agentlib.types import Uuid
from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.apis import vms
from coordinator.apis.common import inventory_reply, require
from coordinator.context import Context
from coordinator.jobs import Deadline

log = logging.getLogger(__name__)


class ChangeHostStateMsg(ApiMessage):
    uuid: Uuid
    state_event: Literal["enable", "disable", "maintain"]


def maintain(ctx: Context, host: dict, deadline: Deadline) -> dict:
    """Empty the host; (migrated, stopped) VM names."""
    ctx.db.update("host", host["uuid"], state="PreMaintenance")
    migrated, stopped = [], []
    try:
        for vm in ctx.db.find("vm", "host_uuid = ? AND state = 'Running'", (host["uuid"],)):
            with ctx.locks.hold(f"vm:{vm['uuid']}"):
                vm = ctx.db.get("vm", vm["uuid"])
                if vm["host_uuid"] != host["uuid"]:
                    continue
                try:
                    vms.migrate(ctx, vm, None, deadline)
                    migrated.append(vm["name"])
                except ApiError as exc:
                    log.info("maintenance of %s: VM %s cannot migrate (%s): stopping it",
                             host["name"], vm["name"], exc)
                    vms.stop(ctx, vm, deadline)
                    stopped.append(vm["name"])
    except ApiError as exc:
        ctx.db.update("host", host["uuid"], state="Disabled")
        raise ApiError(f"maintenance of host {host['name']} stopped (the host is Disabled): "
                       f"{exc}") from None
    ctx.db.update("host", host["uuid"], state="Maintenance")
    log.info("host %s in maintenance: migrated %s, stopped %s", host["name"],
             migrated or "none", stopped or "none")
    return {"migrated": migrated, "stopped": stopped}


def register(apis: Apis) -> None:
    @apis.register("ChangeHostState", long=True)
    def change_host_state(msg: ChangeHostStateMsg, ctx: Context, deadline: Deadline) -> dict:
        """Enable or disable a host (no new VMs), or put it in maintenance (its VMs
        live-migrate away, those that cannot are stopped)."""
        host = require(ctx, "host", msg.uuid, "uuid")
        moved = {}
        with ctx.locks.hold(f"host-state:{host['uuid']}"):
            if msg.state_event == "maintain":
                moved = maintain(ctx, host, deadline)
            else:
                ctx.db.update("host", host["uuid"], state="Enabled"
                              if msg.state_event == "enable" else "Disabled")
        return {**inventory_reply(ctx, "host", host["uuid"]), **moved}
