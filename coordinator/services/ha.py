"""VM HA levels and the hosts' self-fencers (HCI manual: 云主机高可用).

A VM's HA level (``haLevel`` in its inventory: NeverStop or OnHostFailure) is set by
SetVmInstanceHaLevel or by CreateVmInstance's system tag ``ha::NeverStop``. Such a VM on
Ceph is restarted on another host when its host is lost (:mod:`coordinator.services.failover`).

What makes a restart safe is the self-fencer each host's agent runs per Ceph primary
storage (``/ha/selffencer/setup``): it writes a heartbeat object in the root-volume
pool every ``ha/host.selfFencer.interval`` seconds and, once it has lost both its
storage and the coordinator for ``maxAttempts`` intervals, destroys its VMs on that
storage. A connected host gets its fencers on every (re)connect; with ``ha/enable``
false they are cancelled (planned whole-cluster maintenance: no host fences itself).
"""

from __future__ import annotations

import logging

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.services import backends
from coordinator.services.hosts import kvm
from coordinator.services.lookup import require, tags

log = logging.getLogger(__name__)
LEVELS = ("NeverStop", "OnHostFailure")
TAG = "ha"


def level_from_tags(system_tags: list[str]) -> str:
    """CreateVmInstance's ``ha::<level>`` tag as the VM's ``ha_level`` ('' = none)."""
    levels = tags(system_tags, TAG)
    for level in levels:
        if level not in LEVELS:
            raise ApiError(f"systemTags: 'ha::{level}': the HA level is one of "
                           f"{', '.join(LEVELS)}")
    return levels[-1] if levels else ""


def fencer_settings(ctx: Context) -> dict:
    return {"interval": ctx.gconf.get("ha", "host.selfFencer.interval"),
            "max_attempts": ctx.gconf.get("ha", "host.selfFencer.maxAttempts")}


def shared_storages(ctx: Context, cluster_uuid: str) -> list[dict]:
    """The cluster's primary storages whose VMs can restart elsewhere (Ceph)."""
    types = backends.shared_types()
    return ctx.db.find("primary_storage", f"type IN ({','.join('?' * len(types))}) AND uuid "
                       "IN (SELECT ps_uuid FROM ps_cluster WHERE cluster_uuid = ?)",
                       (*types, cluster_uuid))


def sync_fencers(ctx: Context, host_uuid: str, timeout: float | None = None) -> None:
    """Set up (``ha/enable`` true) or cancel the host's fencers, one per Ceph storage of
    its cluster. A failure is logged: the host stays usable, only not HA-safe."""
    host = ctx.db.get("host", host_uuid)
    enabled = ctx.gconf.get("ha", "enable")
    for ps in shared_storages(ctx, host["cluster_uuid"]):
        try:
            if enabled:
                kvm(ctx, host).setup_self_fencer(
                    ps_uuid=ps["uuid"], host_uuid=host_uuid, **backends.primary(ps).ha_access(),
                    **fencer_settings(ctx), wait=timeout)
            else:
                kvm(ctx, host).cancel_self_fencer(ps_uuid=ps["uuid"], wait=timeout)
        except AgentCallError as exc:
            log.warning("host %s: self-fencer for %s not %s: %s", host["name"], ps["name"],
                        "set up" if enabled else "cancelled", exc)


def on_host_connect(ctx: Context, host_uuid: str) -> None:
    sync_fencers(ctx, host_uuid)


def set_level(ctx: Context, vm_uuid: str, level: str) -> None:
    """``level`` one of :data:`LEVELS`, or '' for none."""
    require(ctx, "vm", vm_uuid, "uuid")
    ctx.db.update("vm", vm_uuid, ha_level=level)
