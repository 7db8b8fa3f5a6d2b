"""VM lifecycle: start, stop, reboot, destroy, pause, resume, vmsync, checkstate, console.

Long operations are async (the coordinator waits for the callback); each holds the VM's
lock, so two commands on one VM never interleave.
"""

from __future__ import annotations

from pathlib import Path

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.models import EmptyCommand
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


def register(agent: Agent, vms: VmDriver, cfg: KvmAgentConfig) -> None:
    console_dir = Path(cfg.data_dir) / "consoles"
    files = VmFiles(Path(cfg.data_dir) / STATE_FILE, cfg.image_roots)

    def check_files(cmd: StartVmCmd) -> None:
        """Every file the VM opens lies in this host's storage (or image roots)."""
        for field, path in _volume_files(cmd).items():
            files.volume(field, path)
        for field, path in _read_only_files(cmd).items():
            files.readable(field, path)

    def lock(vm_uuid: str):
        return agent.locks.hold(f"vm:{vm_uuid}")

    @agent.async_("/vm/start", check=check_files)
    def start(cmd: StartVmCmd) -> StartVmReply:
        """Start a VM from its full description; already running the same = success."""
        check_host_resources(cmd)
        try:
            spec = domain_for(cmd, cfg, console_dir)
        except ValueError as exc:  # what the domain model refuses, e.g. host-passthrough on TCG
            raise AgentError(f"cannot build the domain: {exc}") from None
        console_dir.mkdir(parents=True, exist_ok=True)
        with lock(cmd.vm_instance_uuid):
            already = vms.start(spec)
        return StartVmReply(already_running=already)

    @agent.async_("/vm/stop")
    def stop(cmd: VmCmd) -> VmStateReply:
        """ACPI power-off; destroyed if still running after the timeout."""
        with lock(cmd.uuid):
            vms.stop(cmd.uuid, cmd.timeout or cfg.stop_timeout)
        return VmStateReply(vm_state="Stopped")

    @agent.async_("/vm/reboot")
    def reboot(cmd: VmCmd) -> VmStateReply:
        """Stop (gracefully, then forced) and start with the same definition."""
        with lock(cmd.uuid):
            vms.reboot(cmd.uuid, cmd.timeout or cfg.stop_timeout)
        return VmStateReply(vm_state="Running")

    @agent.async_("/vm/destroy")
    def destroy(cmd: VmCmd) -> VmStateReply:
        """Power off at once; a VM that is not here counts as destroyed."""
        with lock(cmd.uuid):
            vms.destroy(cmd.uuid)
        return VmStateReply(vm_state="Stopped")

    @agent.async_("/vm/pause")
    def pause(cmd: VmCmd) -> VmStateReply:
        """Suspend the VM's CPUs (memory stays)."""
        with lock(cmd.uuid):
            vms.pause(cmd.uuid)
        return VmStateReply(vm_state="Paused")

    @agent.async_("/vm/resume")
    def resume(cmd: VmCmd) -> VmStateReply:
        """Resume a paused VM."""
        with lock(cmd.uuid):
            vms.resume(cmd.uuid)
        return VmStateReply(vm_state="Running")

    @agent.sync("/vm/vmsync")
    def vmsync(cmd: EmptyCommand) -> VmSyncReply:
        """Every zfleet VM on this host and its state."""
        return VmSyncReply(states=vms.states())

    @agent.sync("/vm/checkstate")
    def checkstate(cmd: CheckVmStateCmd) -> CheckVmStateReply:
        """The state of each named VM (Stopped if it is not on this host)."""
        return CheckVmStateReply(states={u: vms.state(u) for u in cmd.vm_uuids})

    @agent.sync("/vm/getvncport")
    def getvncport(cmd: GetVncPortCmd) -> GetVncPortReply:
        """The VM's console protocol and port, and the address it listens on."""
        protocol, port = vms.console(cmd.vm_uuid)
        return GetVncPortReply(port=port, protocol=protocol, host_ip=cfg.vnc_listen)
