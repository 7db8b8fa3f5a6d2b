"""VM lifecycle on libvirt: start, stop, destroy, reboot, pause, resume, state.

zfleet VMs are transient libvirt domains named after the VM uuid: the coordinator's
database holds their definitions, so a stopped VM leaves nothing on the host to go
stale, and ``virsh list`` shows the uuid an operator finds in the coordinator. Each
operation first tells :class:`~kvmagent.statecapture.StateCapture` which events it will
cause, so only changes the agent did not make are reported as out-of-band.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET

import libvirt

from agentlib.errors import AgentError
from kvmagent.drivers.domain import Domain, domain_xml, parse_domain
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.statecapture import StateCapture

log = logging.getLogger(__name__)

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "Unknown",
    libvirt.VIR_DOMAIN_RUNNING: "Running",
    libvirt.VIR_DOMAIN_BLOCKED: "Running",
    libvirt.VIR_DOMAIN_PAUSED: "Paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "Running",  # shutting down, still running
    libvirt.VIR_DOMAIN_SHUTOFF: "Stopped",
    libvirt.VIR_DOMAIN_CRASHED: "Crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "Paused",
}


class VmDriver:
    def __init__(self, libvirt_conn: LibvirtConnection, capture: StateCapture):
        self.libvirt = libvirt_conn
        self.capture = capture

    # -- lookups ---------------------------------------------------------------------
    def domain(self, vm_uuid: str) -> libvirt.virDomain | None:
        try:
            return self.libvirt.conn.lookupByName(vm_uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise AgentError(f"vm {vm_uuid}: libvirt lookup failed: {exc}") from None

    def state(self, vm_uuid: str) -> str:
        dom = self.domain(vm_uuid)
        return "Stopped" if dom is None else _state(dom)

    def states(self) -> dict[str, str]:
        """Every zfleet VM on this host (domains named by a VM uuid) and its state."""
        return {d.name(): _state(d) for d in self.libvirt.conn.listAllDomains()
                if StateCapture.is_vm_name(d.name())}

    # -- lifecycle -------------------------------------------------------------------
    def start(self, spec: Domain) -> bool:
        """Start ``spec``; True if it already ran with the same definition (nothing done)."""
        vm = spec.name
        dom = self.domain(vm)
        if dom is not None and dom.isActive():
            differences = same_definition(parse_domain(dom.XMLDesc(0)), spec)
            if differences:
                raise AgentError(f"vm {vm} already runs with a different definition "
                                 f"({'; '.join(differences)}): stop it first")
            return True
        if dom is not None:
            log.warning("vm %s: removing a stale persistent definition before starting", vm)
            dom.undefine()
        self.capture.expect(vm, "started")
        try:
            self.libvirt.conn.createXML(domain_xml(spec), 0)
        except libvirt.libvirtError as exc:
            self.capture.forget(vm)
            raise AgentError(f"vm {vm}: libvirt could not start it: {exc}") from None
        return False

    def stop(self, vm_uuid: str, timeout: float) -> str:
        """ACPI power-off, then destroy after ``timeout``; "graceful", "forced" or
        "not running"."""
        dom = self.domain(vm_uuid)
        if dom is None or not dom.isActive():
            return "not running"
        # the forced destroy comes after ``timeout``: still ours, not out-of-band
        self.capture.expect(vm_uuid, "stopped", within=timeout)
        try:
            dom.shutdown()
        except libvirt.libvirtError as exc:
            log.warning("vm %s: ACPI shutdown refused (%s); forcing", vm_uuid, exc)
        if _wait_inactive(dom, timeout):
            return "graceful"
        log.warning("vm %s did not power off within %.0fs; destroying it", vm_uuid, timeout)
        self._destroy(dom)
        return "forced"

    def destroy(self, vm_uuid: str) -> bool:
        """Power off at once (idempotent); True if it was running."""
        dom = self.domain(vm_uuid)
        if dom is None:
            return False
        was_running, persistent = bool(dom.isActive()), bool(dom.isPersistent())
        if was_running:
            self.capture.expect(vm_uuid, "stopped")
            self._destroy(dom)
        if persistent:  # a transient domain is gone once destroyed; a defined one is not
            dom.undefine()
        return was_running

    def reboot(self, vm_uuid: str, timeout: float) -> None:
        """Stop (gracefully, then forced) and start again with the same definition."""
        dom = self._require(vm_uuid)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)  # keeps the console password
        self.stop(vm_uuid, timeout)
        self.capture.expect(vm_uuid, "started")
        try:
            self.libvirt.conn.createXML(xml, 0)
        except libvirt.libvirtError as exc:
            self.capture.forget(vm_uuid)
            raise AgentError(f"vm {vm_uuid}: stopped, but could not start again: {exc}") from None

    def pause(self, vm_uuid: str) -> None:
        self._call(vm_uuid, "suspend")

    def resume(self, vm_uuid: str) -> None:
        self._call(vm_uuid, "resume")

    def console(self, vm_uuid: str) -> tuple[str, int]:
        """(protocol, port) of the VM's VNC or Spice console, as libvirt assigned it."""
        live = ET.fromstring(self._require(vm_uuid).XMLDesc(0))
        graphics = live.find("devices/graphics")
        port = int(graphics.get("port", "-1")) if graphics is not None else -1
        if port < 0:
            raise AgentError(f"vm {vm_uuid} has no console port")
        return graphics.get("type"), port

    # -- internals -------------------------------------------------------------------
    def _require(self, vm_uuid: str) -> libvirt.virDomain:
        dom = self.domain(vm_uuid)
        if dom is None or not dom.isActive():
            raise AgentError(f"vm {vm_uuid} is not running on this host")
        return dom

    def _call(self, vm_uuid: str, method: str) -> None:
        dom = self._require(vm_uuid)
        try:
            getattr(dom, method)()
        except libvirt.libvirtError as exc:
            raise AgentError(f"vm {vm_uuid}: {method} failed: {exc}") from None

    def _destroy(self, dom: libvirt.virDomain) -> None:
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                self.capture.forget(dom.name())
                raise AgentError(f"vm {dom.name()}: destroy failed: {exc}") from None


def _state(dom: libvirt.virDomain) -> str:
    try:
        return STATES.get(dom.state()[0], "Unknown")
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return "Stopped"
        raise


def _wait_inactive(dom: libvirt.virDomain, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not dom.isActive():
                return True
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return True  # a transient domain is gone once it stops
            raise
        time.sleep(0.05)
    return False


def same_definition(running: Domain, wanted: Domain) -> list[str]:
    """What differs between a running domain and a requested one, in the fields the
    coordinator controls (libvirt adds its own details to a live definition)."""
    diffs = []
    for field in ("memory_bytes", "vcpus", "domain_type"):
        a, b = getattr(running, field), getattr(wanted, field)
        if a != b:
            diffs.append(f"{field} {a} != {b}")
    disks = {(d.target, d.path or d.rbd_name) for d in running.disks}
    wanted_disks = {(d.target, d.path or d.rbd_name) for d in wanted.disks}
    if disks != wanted_disks:
        diffs.append(f"disks {sorted(disks, key=str)} != {sorted(wanted_disks, key=str)}")
    nics = {(n.mac.lower(), n.bridge) for n in running.nics}
    wanted_nics = {(n.mac.lower(), n.bridge) for n in wanted.nics}
    if nics != wanted_nics:
        diffs.append(f"nics {sorted(nics)} != {sorted(wanted_nics)}")
    return diffs
