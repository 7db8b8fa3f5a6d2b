"""Host allocation: which host (and primary storage) a VM runs on.

A host qualifies when it is Enabled and Connected, its cluster is attached to every L2
the VM's L3s are on and to a primary storage that can take the VM's root volume, and it
has the CPU and memory: ``allocatedCpu + cpu <= cpuNum x host/cpu.overProvisioning.ratio``
and ``allocatedMemory + memory <= (totalMemory - reserved) x
mevoco/overProvisioning.memory``, reserved being the larger of the agent's and
``kvm/reservedMemory`` (HCI manual). The pick and the capacity it takes happen in one
write transaction, so parallel creations never over-commit a host.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.repos.hosts import Hosts
from coordinator.repos.networks import L2Clusters
from coordinator.repos.vms import Vms

ACTIVE_STATES = ("Starting", "Running", "Rebooting", "Migrating", "Stopping", "Paused",
                 "Unknown")


@dataclass(frozen=True)
class Need:
    cpu: int
    memory: int
    l2_uuids: tuple[str, ...]
    ps_filter: str | None = None  # primaryStorageUuidForRootVolume
    zone_uuid: str | None = None
    cluster_uuid: str | None = None
    host_uuid: str | None = None
    strategy: str | None = None
    exclude: str | None = None  # a host that must not be chosen (a migration's source)


def free_memory(ctx: Context, host: dict) -> int:
    reserved = max(host["reserved_memory"] or 0, ctx.gconf.get("kvm", "reservedMemory"))
    ratio = ctx.gconf.get("mevoco", "overProvisioning.memory")
    return int((host["total_memory"] - reserved) * ratio) - host["allocated_memory"]


def free_cpu(ctx: Context, host: dict) -> int:
    ratio = ctx.gconf.get("host", "cpu.overProvisioning.ratio")
    return int(host["cpu_num"] * ratio) - host["allocated_cpu"]


def allocate(ctx: Context, need: Need, ps_ok) -> tuple[dict, dict]:
    """(host, primary storage), with the host's capacity taken. ``ps_ok(ps)`` says if a
    primary storage can hold the root volume (e.g. a Ceph one of the image's cluster).
    Call inside ``ctx.db.tx()`` together with what else the VM takes."""
    db = ctx.db
    where, params = ["status = 'Connected'", "state = 'Enabled'"], []
    for field, value in (("zone_uuid", need.zone_uuid), ("cluster_uuid", need.cluster_uuid),
                         ("uuid", need.host_uuid)):
        if value:
            where.append(f"{field} = ?")
            params.append(value)
    if need.exclude:
        where.append("uuid != ?")
        params.append(need.exclude)
    hosts = db.find("host", " AND ".join(where), tuple(params))
    if not hosts:
        raise ApiError("no Connected and Enabled host" + _scope(need))
    reasons: list[str] = []
    candidates: list[tuple[dict, dict]] = []
    clusters_of_l2 = {l2: L2Clusters(db).of(l2) for l2 in need.l2_uuids}
    for host in hosts:
        missing = [l2 for l2, clusters in clusters_of_l2.items()
                   if host["cluster_uuid"] not in clusters]
        if missing:
            reasons.append(f"{host['name']}: its cluster is not attached to L2 {missing[0]}")
            continue
        storages = [ps for ps in db.find("primary_storage", "uuid IN (SELECT ps_uuid FROM "
                                         "ps_cluster WHERE cluster_uuid = ?) AND state = "
                                         "'Enabled'", (host["cluster_uuid"],))
                    if (need.ps_filter in (None, ps["uuid"])) and ps_ok(ps)]
        if not storages:
            reasons.append(f"{host['name']}: no attached primary storage can hold the root "
                           "volume")
            continue
        if free_cpu(ctx, host) < need.cpu:
            reasons.append(f"{host['name']}: {free_cpu(ctx, host)} vCPUs free, "
                           f"{need.cpu} needed")
            continue
        if free_memory(ctx, host) < need.memory:
            reasons.append(f"{host['name']}: {free_memory(ctx, host) >> 20} MiB free, "
                           f"{need.memory >> 20} MiB needed")
            continue
        candidates.append((host, storages[0]))
    if not candidates:
        raise ApiError("no host can take the VM" + _scope(need) + ": " + "; ".join(reasons))
    host, ps = _pick(ctx, candidates, need.strategy or
                     ctx.gconf.get("host", "allocator.strategy"))
    Hosts(db).take_capacity(host["uuid"], need.cpu, need.memory)
    return host, ps


def release(ctx: Context, host_uuid: str, cpu: int, memory: int) -> None:
    Hosts(ctx.db).release_capacity(host_uuid, cpu, memory)


def take(ctx: Context, host: dict, cpu: int, memory: int) -> None:
    """Capacity on a given host (starting a stopped VM where its volume is)."""
    with ctx.db.tx():
        host = ctx.db.get("host", host["uuid"])
        if free_cpu(ctx, host) < cpu or free_memory(ctx, host) < memory:
            raise ApiError(f"host {host['name']} has not the capacity: "
                           f"{free_cpu(ctx, host)} vCPUs and {free_memory(ctx, host) >> 20} "
                           f"MiB free, {cpu} and {memory >> 20} MiB needed")
        Hosts(ctx.db).take_capacity(host["uuid"], cpu, memory)


def _pick(ctx: Context, candidates: list[tuple[dict, dict]], strategy: str):
    if strategy == "LeastVmPreferredHostAllocatorStrategy":
        counts = Vms(ctx.db).count_by_host(ACTIVE_STATES)
        return min(candidates, key=lambda c: (counts.get(c[0]["uuid"], 0), c[0]["name"]))
    if strategy == "MostMemoryHostAllocatorStrategy":
        return max(candidates, key=lambda c: free_memory(ctx, c[0]))
    return random.choice(candidates)


def _scope(need: Need) -> str:
    for what, value in (("host", need.host_uuid), ("cluster", need.cluster_uuid),
                        ("zone", need.zone_uuid)):
        if value:
            return f" in {what} {value}"
    return ""
