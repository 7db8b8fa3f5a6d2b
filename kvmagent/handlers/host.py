"""Host identity: connect, ping, echo."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable

import psutil

from agentlib.agent import Agent
from agentlib.identity import Identity
from agentlib.models import AgentReply, EmptyCommand
from agentlib.readiness import register_echo
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers import hostinfo
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.models.host import CapacityReply, ConnectCmd, FactReply, PingReply

log = logging.getLogger(__name__)


def register(agent: Agent, identity: Identity, cfg: KvmAgentConfig,
             libvirt_conn: LibvirtConnection,
             on_contact: Callable[[], None] = lambda: None) -> None:
    """``on_contact`` runs on every connect and ping: the coordinator reached this host
    (the self-fencer's evidence that the host is not lost)."""
    agent.reporter.url = identity.get("sendCommandUrl")

    register_echo(agent, "/host/echo")

    @agent.sync("/host/connect")
    def connect(cmd: ConnectCmd) -> AgentReply:
        """Bind this agent to a host uuid and the coordinator's report URL (persisted)."""
        on_contact()
        previous = identity.get("hostUuid")
        identity.update(hostUuid=cmd.host_uuid, sendCommandUrl=str(cmd.send_command_url))
        agent.reporter.url = str(cmd.send_command_url)
        if previous and previous != cmd.host_uuid:
            log.warning("host uuid changed from %s to %s", previous, cmd.host_uuid)
        log.info("connected as host %s, reporting to %s", cmd.host_uuid, cmd.send_command_url)
        return AgentReply()

    @agent.sync("/host/ping", quiet=True)
    def ping(cmd: EmptyCommand) -> PingReply:
        """The host uuid this agent was connected with (null before connect)."""
        on_contact()
        return PingReply(host_uuid=identity.get("hostUuid"))

    @agent.sync("/host/capacity")
    def capacity(cmd: EmptyCommand) -> CapacityReply:
        """CPUs and memory of the host, and what the running VMs and the reserve use."""
        cpu = hostinfo.cpu_info()
        usage = hostinfo.vm_usage(libvirt_conn.conn)
        return CapacityReply(
            cpu_num=cpu.count, cpu_sockets=cpu.sockets, cpu_speed=cpu.speed_mhz,
            used_cpu=usage.vcpus, total_memory=psutil.virtual_memory().total,
            used_memory=usage.memory_bytes + cfg.reserved_memory,
            reserved_memory=cfg.reserved_memory,
        )

    @agent.sync("/host/fact")
    def fact(cmd: EmptyCommand) -> FactReply:
        """OS, kernel, qemu-img and libvirt versions, CPU model and virtualisation flag."""
        cpu = hostinfo.cpu_info()
        distribution, version = hostinfo.os_release()
        return FactReply(
            os_distribution=distribution, os_version=version,
            kernel_version=platform.release(), qemu_img_version=hostinfo.qemu_img_version(),
            libvirt_version=hostinfo.libvirt_version(libvirt_conn.conn),
            hypervisor_type=cfg.domain_type, cpu_model_name=cpu.model,
            hvm_cpu_flag=cpu.hvm_flag,
        )
