"""KVM hosts: add (connect to the agent), reconnect, delete; pings (the scheduler runs them).

The agent must already run on the host (``ansible/`` deploys it). Connecting tells the
agent its hostUuid and where to report (``sendCommandUrl``), then reads its capacity
and facts. Each ping checks the agent still has that identity: a replaced or re-installed
agent (no or another hostUuid) is reconnected; ``host/ping.maxFailure`` missed pings in
a row make the host Disconnected, and the first answer after that reconnects it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.clients.kvmagent import KvmAgent
from coordinator.context import Context
from coordinator.db import now
from coordinator.services.lookup import require

log = logging.getLogger(__name__)
KVMAGENT_PORT = 7070


def agent_url(host: dict) -> str:
    return f"http://{host['management_ip']}:{host['agent_port']}"


def kvm(ctx: Context, host: dict) -> KvmAgent:
    """The host's kvmagent."""
    return KvmAgent.at(ctx.agents, agent_url(host))


def connect(ctx: Context, uuid: str) -> dict:
    """Connect the agent, read capacity and facts; the host is Connected after."""
    host = ctx.db.get("host", uuid)
    url = agent_url(host)
    with ctx.locks.hold(f"host:{uuid}"):
        try:
            agent = kvm(ctx, host)
            agent.connect(host_uuid=uuid, send_command_url=ctx.report_url)
            cap = agent.capacity()
            facts = agent.fact()
        except AgentCallError as exc:
            ctx.db.update("host", uuid, status="Disconnected", last_error=str(exc))
            raise ApiError(f"host {host['name']} ({host['management_ip']}): cannot connect "
                           f"its agent: {exc}") from None
        facts = facts.model_dump(by_alias=True, mode="json", exclude={"success", "error"})
        ctx.db.update("host", uuid, status="Connected", cpu_num=cap.cpu_num,
                      cpu_speed=cap.cpu_speed, total_memory=cap.total_memory,
                      reserved_memory=cap.reserved_memory, facts=facts,
                      missed_pings=0, last_ping=now(), last_error="")
    log.info("host %s (%s) connected: %d CPUs, %d MiB", host["name"], url, cap.cpu_num,
             cap.total_memory >> 20)
    for hook in ctx.on_host_connect:
        hook(ctx, uuid)
    return ctx.db.get("host", uuid)


def reconnect_quietly(ctx: Context, uuid: str) -> None:
    try:
        connect(ctx, uuid)
    except (ApiError, LookupError) as exc:
        log.warning("reconnect of host %s failed: %s", uuid, exc)


def ping_one(ctx: Context, host: dict) -> None:
    try:
        reply = kvm(ctx, host).ping(wait=5)
    except AgentCallError as exc:
        missed = host["missed_pings"] + 1
        limit = ctx.gconf.get("host", "ping.maxFailure")
        status = "Disconnected" if missed >= limit else host["status"]
        if status != host["status"]:
            log.warning("host %s (%s) Disconnected after %d missed pings: %s", host["name"],
                        host["management_ip"], missed, exc)
        ctx.db.update("host", host["uuid"], missed_pings=missed, status=status,
                      last_error=str(exc))
        return
    if reply.host_uuid != host["uuid"] or host["status"] != "Connected":
        log.info("host %s: agent answers as %s (status %s): reconnecting", host["name"],
                 reply.host_uuid, host["status"])
        reconnect_quietly(ctx, host["uuid"])
    else:
        ctx.db.update("host", host["uuid"], missed_pings=0, last_ping=now())


def ping_all(ctx: Context) -> None:
    hosts = ctx.db.find("host")
    with ThreadPoolExecutor(min(16, max(1, len(hosts)))) as pool:
        list(pool.map(lambda h: ping_one(ctx, h), hosts))


def add(ctx: Context, cluster_uuid: str, name: str, description: str, management_ip: str,
        agent_port: int, uuid: str) -> str:
    """A new host row, connected (removed again if its agent cannot be connected)."""
    cluster = require(ctx, "cluster", cluster_uuid, "clusterUuid")
    if ctx.db.find("host", "management_ip = ?", (management_ip,)):
        raise ApiError(f"managementIp: a host with {management_ip} exists already")
    ctx.db.insert("host", {"uuid": uuid, "name": name, "description": description,
                           "zone_uuid": cluster["zone_uuid"], "cluster_uuid": cluster_uuid,
                           "management_ip": management_ip, "agent_port": agent_port})
    try:
        connect(ctx, uuid)
    except ApiError:
        ctx.db.delete("host", uuid)
        raise
    return uuid


def delete(ctx: Context, uuid: str) -> None:
    """Remove a host with no VMs on it; its pending GC jobs are cancelled."""
    require(ctx, "host", uuid, "uuid")
    vms = ctx.db.find("vm", "host_uuid = ? AND state NOT IN ('Stopped', 'Destroyed')",
                      (uuid,))
    if vms:
        raise ApiError(f"uuid: host {uuid} still runs {len(vms)} VMs "
                       f"({', '.join(v['name'] for v in vms[:5])}); stop or migrate them")
    ctx.db.update_where("gc_job", "host_uuid = ? AND status = 'Pending'", (uuid,),
                        status="Cancelled", last_error="the host was deleted")
    ctx.db.delete("host", uuid)
