"""What the host is and has: CPU, memory, OS and hypervisor versions (no HTTP)."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

import libvirt
import psutil

from agentlib import shell


@dataclass(frozen=True)
class CpuInfo:
    count: int
    sockets: int
    speed_mhz: int
    model: str
    hvm_flag: str  # "vmx" (Intel VT-x), "svm" (AMD-V) or "" (no hardware virtualisation)


def cpu_info(cpuinfo: str | None = None) -> CpuInfo:
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    blocks = [b for b in text.split("\n\n") if b.strip()]
    fields = [dict(re.findall(r"^([^\t:]+?)\s*:\s*(.*)$", b, re.M)) for b in blocks]
    flags = set(fields[0].get("flags", "").split()) if fields else set()
    mhz = [float(f["cpu MHz"]) for f in fields if "cpu MHz" in f]
    return CpuInfo(
        count=len(fields) or (psutil.cpu_count() or 1),
        sockets=len({f.get("physical id", "0") for f in fields}) or 1,
        speed_mhz=int(max(mhz)) if mhz else 0,
        model=fields[0].get("model name", "unknown") if fields else "unknown",
        hvm_flag="vmx" if "vmx" in flags else "svm" if "svm" in flags else "",
    )


def os_release(path: str = "/etc/os-release") -> tuple[str, str]:
    """(distribution, version), e.g. ("debian", "12")."""
    values = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', Path(path).read_text(), re.M))
    return values.get("ID", platform.system().lower()), values.get("VERSION_ID", "")


def qemu_img_version() -> str:
    out = shell.run(["qemu-img", "--version"], timeout=10).stdout
    match = re.search(r"version ([\d.]+)", out)
    return match.group(1) if match else out.splitlines()[0]


def libvirt_version(conn: libvirt.virConnect) -> str:
    v = conn.getLibVersion()
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


@dataclass(frozen=True)
class VmUsage:
    vcpus: int
    memory_bytes: int


def vm_usage(conn: libvirt.virConnect) -> VmUsage:
    """vCPUs and memory given to the running domains."""
    vcpus = memory = 0
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        _state, max_mem_kib, _mem, nr_vcpu, _cpu_time = dom.info()
        vcpus += nr_vcpu
        memory += max_mem_kib * 1024
    return VmUsage(vcpus, memory)
