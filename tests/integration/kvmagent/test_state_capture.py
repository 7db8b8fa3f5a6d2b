"""ZStack 1.0's real-time state capture: changes the agent did not make are reported at
once; the agent and libvirtd can restart without losing the running VMs."""

import os
import signal
import time

import psutil
import pytest

from devcluster.kvmhost import start_kvmagent
from tests.fixtures.kvm import AGENT_FLAGS

pytestmark = pytest.mark.integration


def running_vm(kvm):
    cmd = kvm.start_cmd()
    assert kvm.call_async("/vm/start", cmd)["success"]
    vm = cmd["vmInstanceUuid"]
    kvm.wait_console(vm, lambda r: r.ready, "guest boot")
    return vm


def wait_report(kvm, commandpath, started, timeout=5):
    [report] = kvm.receiver.wait(timeout=timeout, commandpath=commandpath)
    return report.body, report.at - started


def test_virsh_destroy_is_reported_as_shutdown_within_a_second(kvm_host):
    vm = running_vm(kvm_host)
    started = time.monotonic()
    kvm_host.virsh("destroy", vm)
    body, delay = wait_report(kvm_host, "/kvm/reportvmshutdown", started)
    assert body == {"hostUuid": kvm_host.host_uuid, "vmUuid": vm, "vmState": "Stopped",
                    "reason": "destroyed"}
    assert delay < 1.0, f"reported after {delay:.3f}s"


def test_guest_powering_itself_off_is_reported(kvm_host):
    vm = running_vm(kvm_host)
    started = time.monotonic()
    kvm_host.virsh("shutdown", vm)  # ACPI from outside the agent: the guest powers off
    body, delay = wait_report(kvm_host, "/kvm/reportvmshutdown", started, timeout=10)
    assert body["vmUuid"] == vm and body["reason"] == "shutdown"
    assert "ZFLEET-POWEROFF" in kvm_host.console_text(vm)


def test_killed_qemu_is_reported_as_a_crash(kvm_host):
    vm = running_vm(kvm_host)
    [qemu] = [p for p in psutil.Process(kvm_host.host.daemon("libvirtd").pid)
              .children(recursive=True) if vm in " ".join(p.cmdline())]
    started = time.monotonic()
    os.kill(qemu.pid, signal.SIGKILL)
    body, delay = wait_report(kvm_host, "/kvm/reportvmcrash", started)
    assert body["vmUuid"] == vm and body["vmState"] == "Crashed"
    assert delay < 1.0, f"reported after {delay:.3f}s"


def test_agent_restart_keeps_and_readopts_running_vms(kvm_host):
    vm = running_vm(kvm_host)
    [qemu] = [p for p in psutil.Process(kvm_host.host.daemon("libvirtd").pid)
              .children(recursive=True) if vm in " ".join(p.cmdline())]
    kvm_host.host.stop_daemon("kvmagent")
    assert qemu.is_running() and vm in kvm_host.virsh("list", "--name")
    start_kvmagent(kvm_host.host, *AGENT_FLAGS)
    # the new agent knows who it is and finds the VM
    assert kvm_host.call("/host/ping").json()["hostUuid"] == kvm_host.host_uuid
    assert kvm_host.call("/vm/vmsync").json()["states"] == {vm: "Running"}
    assert qemu.is_running()  # the very same qemu: nothing was restarted
    # and its event loop works: an out-of-band destroy is still reported
    started = time.monotonic()
    kvm_host.virsh("destroy", vm)
    body, _ = wait_report(kvm_host, "/kvm/reportvmshutdown", started)
    assert body["vmUuid"] == vm


def test_libvirtd_restart_is_followed_by_reconnect_and_reconnectme(kvm_host):
    kvm_host.libvirtd.stop()
    r = kvm_host.call("/vm/vmsync").json()
    assert r["success"] is False and "not reachable" in r["error"]
    restarted = time.monotonic()
    kvm_host.libvirtd.start()
    body, delay = wait_report(kvm_host, "/kvm/reconnectme", restarted, timeout=15)
    assert body["hostUuid"] == kvm_host.host_uuid
    assert kvm_host.call("/vm/vmsync").json() == {"success": True, "error": "", "states": {}}
    # and VMs start over the new connection
    running_vm(kvm_host)
