"""Host states (HCI manual): Enabled, Disabled (no new VMs), and maintenance: the host
takes no new VMs, its running VMs leave by live migration (those that cannot move,
e.g. on local storage, are stopped), then it is in Maintenance until ``enable``."""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import vms
from coordinator.services.lookup import require

log = logging.getLogger(__name__)


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


def change_state(ctx: Context, host_uuid: str, state_event: str,
                 deadline: Deadline) -> dict:
    """enable, disable or maintain; for maintain, the VMs moved ({} otherwise)."""
    host = require(ctx, "host", host_uuid, "uuid")
    with ctx.locks.hold(f"host-state:{host['uuid']}"):
        if state_event == "maintain":
            return maintain(ctx, host, deadline)
        ctx.db.update("host", host["uuid"], state="Enabled"
                      if state_event == "enable" else "Disabled")
    return {}
