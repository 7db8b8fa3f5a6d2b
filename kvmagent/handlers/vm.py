"""VM lifecycle: start, stop, reboot, destroy, pause, resume, vmsync, checkstate, console.

Long operations are async (the coordinator waits for the callback); each holds the VM's
lock, so two commands on one VM never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.locks import NamedLocks
from agentlib.models import EmptyCommand
from agentlib.routes import Routes
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.vms import VmDriver
from kvmagent.handlers.localstorage import STATE_FILE
from kvmagent.hostchecks import VmFiles, require_bridge, require_file
from kvmagent.models.vm import (
    CheckVmStateCmd,
    CheckVmStateReply,
    GetVncPortCmd,
    GetVncPortReply,
    StartVmCmd,
    StartVmReply,
    VmCmd,
    VmStateReply,
    VmSyncReply,
)
from kvmagent.vmspec import domain_for

routes = Routes()


def _volume_files(cmd: StartVmCmd) -> dict[str, str]:
    """field -> path of each file volume (Ceph volumes are not files)."""
    volumes = {"rootVolume": cmd.root_volume} | {
        f"dataVolumes.{i}": v for i, v in enumerate(cmd.data_volumes)}
    return {f"{k}.installPath": v.install_path for k, v in volumes.items()
            if v.device_type == "file"}


def _read_only_files(cmd: StartVmCmd) -> dict[str, str]:
    return {k: v for k, v in (("isoPath", cmd.iso_path), ("bootKernel", cmd.boot_kernel),
                              ("bootInitrd", cmd.boot_initrd)) if v}


def check_host_resources(cmd: StartVmCmd) -> None:
    """What the model cannot check: the bridges and volume files exist on this host."""
    for i, nic in enumerate(cmd.nics):
        require_bridge(f"nics.{i}.bridgeName", nic.bridge_name)
    for field, path in (_volume_files(cmd) | _read_only_files(cmd)).items():
        require_file(field, path)


@dataclass
class Vms:
    """What the handlers work on: the VM driver, the files a VM may open, the config
    and the agent's locks."""

    driver: VmDriver
    files: VmFiles
    cfg: KvmAgentConfig
    locks: NamedLocks

    @property
    def console_dir(self) -> Path:
        return Path(self.cfg.data_dir) / "consoles"

    def lock(self, vm_uuid: str):
        return self.locks.hold(f"vm:{vm_uuid}")


def register(agent: Agent, vms: VmDriver, cfg: KvmAgentConfig) -> None:
    files = VmFiles(Path(cfg.data_dir) / STATE_FILE, cfg.image_roots)
    agent.include(routes, Vms(vms, files, cfg, agent.locks))


def check_files(vms: Vms, cmd: StartVmCmd) -> None:
    """Every file the VM opens lies in this host's storage (or image roots)."""
    for field, path in _volume_files(cmd).items():
        vms.files.volume(field, path)
    for field, path in _read_only_files(cmd).items():
        vms.files.readable(field, path)


@routes.async_("/vm/start", check=check_files)
def start(vms: Vms, cmd: StartVmCmd) -> StartVmReply:
    """Start a VM from its full description; already running the same = success."""
    check_host_resources(cmd)
    try:
        spec = domain_for(cmd, vms.cfg, vms.console_dir)
    except ValueError as exc:  # what the domain model refuses, e.g. host-passthrough on TCG
        raise AgentError(f"cannot build the domain: {exc}") from None
    vms.console_dir.mkdir(parents=True, exist_ok=True)
    with vms.lock(cmd.vm_instance_uuid):
        already = vms.driver.start(spec)
    return StartVmReply(already_running=already)


@routes.async_("/vm/stop")
def stop(vms: Vms, cmd: VmCmd) -> VmStateReply:
    """ACPI power-off; destroyed if still running after the timeout."""
    with vms.lock(cmd.uuid):
        vms.driver.stop(cmd.uuid, cmd.timeout or vms.cfg.stop_timeout)
    return VmStateReply(vm_state="Stopped")


@routes.async_("/vm/reboot")
def reboot(vms: Vms, cmd: VmCmd) -> VmStateReply:
    """Stop (gracefully, then forced) and start with the same definition."""
    with vms.lock(cmd.uuid):
        vms.driver.reboot(cmd.uuid, cmd.timeout or vms.cfg.stop_timeout)
    return VmStateReply(vm_state="Running")


@routes.async_("/vm/destroy")
def destroy(vms: Vms, cmd: VmCmd) -> VmStateReply:
    """Power off at once; a VM that is not here counts as destroyed."""
    with vms.lock(cmd.uuid):
        vms.driver.destroy(cmd.uuid)
    return VmStateReply(vm_state="Stopped")


@routes.async_("/vm/pause")
def pause(vms: Vms, cmd: VmCmd) -> VmStateReply:
    """Suspend the VM's CPUs (memory stays)."""
    with vms.lock(cmd.uuid):
        vms.driver.pause(cmd.uuid)
    return VmStateReply(vm_state="Paused")


@routes.async_("/vm/resume")
def resume(vms: Vms, cmd: VmCmd) -> VmStateReply:
    """Resume a paused VM."""
    with vms.lock(cmd.uuid):
        vms.driver.resume(cmd.uuid)
    return VmStateReply(vm_state="Running")


@routes.sync("/vm/vmsync")
def vmsync(vms: Vms, cmd: EmptyCommand) -> VmSyncReply:
    """Every zfleet VM on this host and its state."""
    return VmSyncReply(states=vms.driver.states())


@routes.sync("/vm/checkstate")
def checkstate(vms: Vms, cmd: CheckVmStateCmd) -> CheckVmStateReply:
    """The state of each named VM (Stopped if it is not on this host)."""
    return CheckVmStateReply(states={u: vms.driver.state(u) for u in cmd.vm_uuids})


@routes.sync("/vm/getvncport")
def getvncport(vms: Vms, cmd: GetVncPortCmd) -> GetVncPortReply:
    """The VM's console protocol and port, and the address it listens on."""
    protocol, port = vms.driver.console(cmd.vm_uuid)
    return GetVncPortReply(port=port, protocol=protocol, host_ip=vms.cfg.vnc_listen)
