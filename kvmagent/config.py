"""kvmagent settings (each also a flag: ``--libvirt-uri``, ``--domain-type``, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from agentlib import storageroot
from agentlib.config import AgentConfig, ConfigError, PathList

ConsoleMode = Literal["vnc", "spice"]
CpuMode = Literal["none", "host-model", "host-passthrough"]
CacheMode = Literal["none", "writeback", "writethrough"]


class KvmAgentConfig(AgentConfig):
    libvirt_uri: str = Field("qemu:///system", description="libvirtd to drive")
    domain_type: Literal["kvm", "qemu"] = Field(
        "kvm", description="kvm in production; qemu (TCG) where KVM guests cannot boot"
    )
    vnc_listen: str = Field("0.0.0.0", description="address VNC/Spice consoles listen on")
    console_mode: ConsoleMode = Field("vnc", description="host-wide console protocol")
    cpu_mode: CpuMode = Field("none", description="host-wide guest CPU mode")
    cache_mode: CacheMode = Field("none", description="host-wide disk cache mode")
    reserved_memory: int = Field(
        512 << 20, ge=0, description="bytes of host memory kept from VMs (reported in capacity)"
    )
    authorized_keys: Path = Field(
        Path("/root/.ssh/authorized_keys"),
        description="where /localstorage/authorizekey adds other hosts' agent keys (the "
        "sshd AuthorizedKeysFile of the user volume migrations log in as)",
    )
    stop_timeout: float = Field(
        60.0, gt=0, description="seconds a graceful (ACPI) stop may take before a forced one"
    )
    storage_roots: PathList = Field(
        default_factory=lambda: [Path("/zstack_ps")],
        description="directories under which /localstorage/init and /sharedmountpoint"
        "primarystorage/connect may set up a storage (comma-separated; system directories "
        "and the data dir are refused)",
    )
    image_roots: PathList = Field(
        default_factory=list,
        description="directories VMs may also read ISOs, kernels and initrds from, besides "
        "the storage roots set up on this host (comma-separated; default: none)",
    )

    @model_validator(mode="after")
    def _safe_roots(self):
        for name in ("storage_roots", "image_roots"):
            try:
                storageroot.check_roots(getattr(self, name), self.data_dir)
            except ValueError as exc:
                raise ConfigError(f"kvmagent: bad configuration: {name}: {exc}") from None
        return self
