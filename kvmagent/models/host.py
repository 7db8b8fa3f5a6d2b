"""kvmagent host models: identity, capacity, facts."""

from __future__ import annotations

from agentlib.callbackurl import CallbackUrl
from agentlib.models import AgentCommand, AgentReply
from agentlib.types import Uuid


class ConnectCmd(AgentCommand):
    host_uuid: Uuid
    send_command_url: CallbackUrl


class PingReply(AgentReply):
    host_uuid: str | None = None


class CapacityReply(AgentReply):
    cpu_num: int
    cpu_sockets: int
    cpu_speed: int  # MHz
    used_cpu: int  # vCPUs of the running VMs
    total_memory: int  # bytes
    used_memory: int  # bytes given to running VMs, plus the reserved memory
    reserved_memory: int  # bytes kept from VMs (agent setting)


class FactReply(AgentReply):
    os_distribution: str
    os_version: str
    kernel_version: str
    qemu_img_version: str
    libvirt_version: str
    hypervisor_type: str  # the domain type VMs are started with: kvm or qemu (TCG)
    cpu_model_name: str
    hvm_cpu_flag: str
