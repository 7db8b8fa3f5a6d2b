"""Host identity: connect, ping, echo."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from agentlib.agent import Agent
from agentlib.identity import Identity
from agentlib.models import AgentReply, EmptyCommand
from agentlib.readiness import register_echo
from agentlib.reports import Reporter
from agentlib.routes import Routes
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers import hostinfo
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.models.host import CapacityReply, ConnectCmd, FactReply, PingReply

log = logging.getLogger(__name__)

routes = Routes()


@dataclass
class Host:
    """What the handlers work on: the host's identity, the config, the libvirt connection
    and the agent's reporter. ``on_contact`` runs on every connect and ping: the
    coordinator reached this host (the self-fencer's evidence that it is not lost)."""

    identity: Identity
    cfg: KvmAgentConfig
    libvirt_conn: LibvirtConnection
    reporter: Reporter
    on_contact: Callable[[], None]


def register(agent: Agent, identity: Identity, cfg: KvmAgentConfig,
             libvirt_conn: LibvirtConnection,
             on_contact: Callable[[], None] = lambda: None) -> None:
    agent.reporter.url = identity.get("sendCommandUrl")
    register_echo(agent, "/host/echo")
    agent.include(routes, Host(identity, cfg, libvirt_conn, agent.reporter, on_contact))


@routes.sync("/host/connect")
def connect(host: Host, cmd: ConnectCmd) -> AgentReply:
    """Bind this agent to a host uuid and the coordinator's report URL (persisted)."""
    host.on_contact()
    previous = host.identity.get("hostUuid")
    host.identity.update(hostUuid=cmd.host_uuid, sendCommandUrl=str(cmd.send_command_url))
    host.reporter.url = str(cmd.send_command_url)
    if previous and previous != cmd.host_uuid:
        log.warning("host uuid changed from %s to %s", previous, cmd.host_uuid)
    log.info("connected as host %s, reporting to %s", cmd.host_uuid, cmd.send_command_url)
    return AgentReply()


@routes.sync("/host/ping", quiet=True)
def ping(host: Host, cmd: EmptyCommand) -> PingReply:
    """The host uuid this agent was connected with (null before connect)."""
    host.on_contact()
    return PingReply(host_uuid=host.identity.get("hostUuid"))


@routes.sync("/host/capacity")
def capacity(host: Host, cmd: EmptyCommand) -> CapacityReply:
    """CPUs and memory of the host, and what the running VMs and the reserve use."""
    cpu = hostinfo.cpu_info()
    usage = hostinfo.vm_usage(host.libvirt_conn.conn)
    reserved = host.cfg.reserved_memory
    return CapacityReply(
        cpu_num=cpu.count, cpu_sockets=cpu.sockets, cpu_speed=cpu.speed_mhz,
        used_cpu=usage.vcpus, total_memory=psutil.virtual_memory().total,
        used_memory=usage.memory_bytes + reserved, reserved_memory=reserved,
    )


@routes.sync("/host/fact")
def fact(host: Host, cmd: EmptyCommand) -> FactReply:
    """OS, kernel, qemu-img and libvirt versions, CPU model and virtualisation flag."""
    cpu = hostinfo.cpu_info()
    distribution, version = hostinfo.os_release()
    return FactReply(
        os_distribution=distribution, os_version=version,
        kernel_version=platform.release(), qemu_img_version=hostinfo.qemu_img_version(),
        libvirt_version=hostinfo.libvirt_version(host.libvirt_conn.conn),
        hypervisor_type=host.cfg.domain_type, cpu_model_name=cpu.model,
        hvm_cpu_flag=cpu.hvm_flag,
    )
