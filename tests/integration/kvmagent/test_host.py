"""Host facts and capacity from a real kvmagent; capacity counts what running VMs use."""

import psutil
import pytest

pytestmark = pytest.mark.integration


def test_fact_and_capacity_follow_the_running_vms(kvm_host):
    fact = kvm_host.call("/host/fact").json()
    assert fact["success"] and fact["hypervisorType"] == "qemu"
    assert fact["osDistribution"] == "debian" and fact["libvirtVersion"].startswith("9.")
    assert fact["qemuImgVersion"].startswith("7.")

    idle = kvm_host.call("/host/capacity").json()
    assert idle["cpuNum"] == psutil.cpu_count()
    assert idle["totalMemory"] == psutil.virtual_memory().total
    assert idle["usedCpu"] == 0 and idle["usedMemory"] == idle["reservedMemory"] == 512 << 20

    cmd = kvm_host.start_cmd()
    assert kvm_host.call_async("/vm/start", cmd)["success"]
    busy = kvm_host.call("/host/capacity").json()
    assert busy["usedCpu"] == 1
    assert busy["usedMemory"] == (512 << 20) + cmd["memory"]
