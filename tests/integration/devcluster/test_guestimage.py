"""The tiny test guest, booted for real under plain qemu (TCG) with user-mode networking.

qemu's built-in DHCP never leaves the qemu process. The metadata service is a small HTTP
server on loopback; qemu's guestfwd runs ``busybox nc`` to it for each guest connection
(a ``tcp:`` guestfwd shares one host connection for all guest connections, so the
second HTTP request would find it closed).
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentlib.shell import run
from devcluster import procs
from devcluster.guestimage import (
    MIN_MEMORY_MIB,
    ConsoleReport,
    GuestImage,
    build,
    parse_console,
)
from devcluster.guestinit import METADATA_PREFIX

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = 60.0


class Qmp:
    """Just enough of the QEMU Machine Protocol to press buttons and plug devices."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # greeting
        self("qmp_capabilities")

    def __call__(self, command: str, **arguments) -> object:
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@dataclass
class Vm:
    proc: procs.Proc
    serial: Path
    qmp_path: Path
    started: float

    def report(self) -> ConsoleReport:
        return parse_console(self.serial.read_text(errors="replace"))

    def wait(self, predicate, what: str, timeout: float = BOOT_TIMEOUT) -> ConsoleReport:
        """The first report satisfying ``predicate``, read from the growing serial log."""

        def check() -> ConsoleReport | None:
            report = self.report()
            return report if predicate(report) else None

        return procs.wait_for(check, timeout, what, interval=0.1)


@contextmanager
def booted(image: GuestImage, workdir: Path, netdev: str, netns: str = "") -> Iterator[Vm]:
    """qemu running the image with one virtio NIC on ``netdev``; killed by pid afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    serial, qmp_path = workdir / "serial.log", workdir / "qmp.sock"
    argv = [
        *(["ip", "netns", "exec", netns] if netns else []),
        "qemu-system-x86_64", "-machine", "accel=tcg", "-m", str(MIN_MEMORY_MIB),
        "-nographic", "-monitor", "none", "-no-reboot",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", image.cmdline,
        "-serial", f"file:{serial}", "-qmp", f"unix:{qmp_path},server=on,wait=off",
        "-netdev", f"{netdev},id=n0", "-device", "virtio-net-pci,netdev=n0",
    ]  # fmt: skip
    started = time.monotonic()
    proc = procs.spawn("qemu", argv, workdir / "qemu.log")
    try:
        procs.wait_for(qmp_path.exists, 10, "qemu QMP socket")
        yield Vm(proc, serial, qmp_path, started)
    finally:
        procs.stop(proc, timeout=2)


@pytest.fixture(scope="module")
def plain_vm(guest_image, tmp_path_factory) -> Iterator[Vm]:
    """A guest on qemu's restricted user network, booted until it reports READY."""
    with booted(guest_image, tmp_path_factory.mktemp("plain"), "user,restrict=on") as vm:
        vm.wait(lambda r: "eth0" in r.leases, "DHCP lease on eth0")
        leased = time.monotonic() - vm.started
        vm.wait(lambda r: r.ready, "guest READY")
        ready = time.monotonic() - vm.started
        print(f"\nqemu start -> lease {leased:.2f}s, -> READY {ready:.2f}s")
        yield vm


def test_build_twice_is_cached(guest_image, tmp_path):
    """A fresh cache with the kernel already fetched: first build packs, second reuses."""
    kdir = guest_image.kernel.parent
    shutil.copytree(kdir, tmp_path / "kernel" / kdir.name)
    t0 = time.monotonic()
    first = build(tmp_path)
    t1 = time.monotonic()
    second = build(tmp_path)
    t2 = time.monotonic()
    print(f"\nbuild: initramfs packed in {t1 - t0:.3f}s, cached build {t2 - t1:.3f}s")
    assert first == second
    assert first.initrd.stat().st_mtime_ns == second.initrd.stat().st_mtime_ns
    assert "console=ttyS0" in first.cmdline and "no_timer_check" in first.cmdline
    assert t2 - t1 < 1.0
    listing = run(["cpio", "-it"], input=gzip.decompress(first.initrd.read_bytes())).stdout
    names = set(listing.split())
    assert {"init", "bin/busybox", "bin/sh", "dev/console", "sbin/udhcpc"} <= names
    assert {"lib/modules/virtio_net.ko", "lib/modules/virtio_blk.ko"} <= names


def test_boot_leases_and_reports_ready(plain_vm):
    text = plain_vm.serial.read_text(errors="replace")
    report = parse_console(text)
    assert report.ip("eth0") == "10.0.2.15"
    assert report.leases["eth0"]["ip"] == "10.0.2.15/24"
    assert report.leases["eth0"]["mac"] == report.nics["eth0"]
    assert report.metadata_errors == {"instance-id": "unreachable"}
    assert report.ready
    assert text.index("ZFLEET-LEASE ") < text.index("ZFLEET-READY")


def test_acpi_powerdown_powers_off(plain_vm):
    qmp = Qmp(plain_vm.qmp_path)
    try:
        pressed = time.monotonic()
        qmp("system_powerdown")
        assert procs.wait_dead(plain_vm.proc.pid, 15, plain_vm.proc.create_time)
        print(f"\nACPI power button -> qemu exited in {time.monotonic() - pressed:.2f}s")
    finally:
        qmp.close()
    assert plain_vm.report().poweroff


@pytest.fixture
def metadata_server() -> Iterator[tuple[int, list[str]]]:
    """An EC2-style metadata service on loopback; yields (port, paths requested)."""
    pages = {
        f"{METADATA_PREFIX}/meta-data/instance-id": b"vm-1234\n",
        f"{METADATA_PREFIX}/meta-data/local-hostname": b"guest-one",
        f"{METADATA_PREFIX}/meta-data/local-ipv4": b"169.254.169.15",
        f"{METADATA_PREFIX}/user-data": b"#cloud-config\nruncmd: [echo hi there]\n",
    }
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_metadata_and_hotplug(guest_image, tmp_path, metadata_server):
    port, requested = metadata_server
    netdev = (
        "user,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dhcpstart=169.254.169.15,"
        f"guestfwd=tcp:169.254.169.254:80-cmd:busybox nc 127.0.0.1 {port}"
    )
    disk = tmp_path / "data.raw"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    with booted(guest_image, tmp_path / "vm", netdev) as vm:
        report = vm.wait(lambda r: r.ready, "guest READY")
        assert report.ip("eth0") == "169.254.169.15"
        assert report.metadata == {
            "instance-id": "vm-1234",
            "local-hostname": "guest-one",
            "local-ipv4": "169.254.169.15",
            "user-data": "#cloud-config\nruncmd: [echo hi there]\n",
        }
        assert report.metadata_errors == {}
        assert f"{METADATA_PREFIX}/meta-data/instance-id" in requested

        qmp = Qmp(vm.qmp_path)
        try:
            blockdev = {"driver": "file", "filename": str(disk)}
            qmp("blockdev-add", driver="raw", **{"node-name": "d1"}, file=blockdev)
            plugged = time.monotonic()
            qmp("device_add", driver="virtio-blk-pci", drive="d1", id="disk1")
            vm.wait(lambda r: r.disks.get("vda") == 64 << 20, "hot-plugged vda", 15)
            print(f"\nhot-plugged disk seen by the guest in {time.monotonic() - plugged:.2f}s")

            qmp("block_resize", **{"node-name": "d1"}, size=128 << 20)
            vm.wait(lambda r: r.disks.get("vda") == 128 << 20, "vda resized", 15)

            qmp("netdev_add", type="user", id="n1", restrict=True)
            plugged = time.monotonic()
            qmp("device_add", driver="virtio-net-pci", netdev="n1", id="nic1",
                mac="52:54:00:00:00:02")  # fmt: skip
            report = vm.wait(lambda r: "eth1" in r.leases, "lease on hot-plugged eth1", 30)
            print(f"hot-plugged NIC leased in {time.monotonic() - plugged:.2f}s")
            assert report.nics["eth1"] == "52:54:00:00:00:02"
            assert report.ip("eth1") == "10.0.2.15"

            qmp("device_del", id="disk1")
            qmp("device_del", id="nic1")
            vm.wait(lambda r: "vda" not in r.disks and "eth1" not in r.nics, "unplug", 15)
        finally:
            qmp.close()


@pytest.fixture
def dhcp_netns(tmp_path) -> Iterator[str]:
    """A namespace with a tap for the guest, dnsmasq on it and metadata on 169.254.169.254.

    dnsmasq hands out a default router that does not exist and a classless static route
    (option 121) to the metadata address, so metadata is only reachable if the guest's
    udhcpc script applied the static route.
    """
    ns = f"zfgi{os.getpid()}"
    web = tmp_path / "web"
    (web / METADATA_PREFIX.strip("/") / "meta-data").mkdir(parents=True)
    (web / METADATA_PREFIX.strip("/") / "meta-data" / "instance-id").write_text("vm-dnsmasq\n")
    in_ns = ["ip", "netns", "exec", ns]
    started: list[procs.Proc] = []
    run(["ip", "netns", "add", ns])
    try:
        for argv in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"],
            ["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"],
            ["ip", "addr", "add", "192.168.77.1/24", "dev", "tap0"],
            ["ip", "link", "set", "tap0", "up"],
        ):
            run(["ip", "-n", ns, *argv[1:]])
        dnsmasq = [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            "--interface=tap0", "--bind-interfaces", "--no-ping", "--leasefile-ro",
            f"--pid-file={tmp_path / 'dnsmasq.pid'}", "--log-facility=-",
            "--dhcp-range=192.168.77.50,192.168.77.50,255.255.255.0,1h",
            "--dhcp-option=option:router,192.168.77.9",
            "--dhcp-option=option:dns-server,192.168.77.1,192.168.77.2",
            "--dhcp-option=option:classless-static-route,169.254.169.254/32,192.168.77.1",
        ]  # fmt: skip
        started.append(procs.spawn("dnsmasq", [*in_ns, *dnsmasq], tmp_path / "dnsmasq.log"))
        http = [sys.executable, "-m", "http.server", "--bind", "169.254.169.254",
                "--directory", str(web), "80"]  # fmt: skip
        started.append(procs.spawn("metadata", [*in_ns, *http], tmp_path / "http.log"))
        yield ns
    finally:
        for proc in started:
            procs.stop(proc, timeout=2)
        run(["ip", "-n", ns, "link", "del", "tap0"], check=False)
        run(["ip", "netns", "del", ns])


def test_dnsmasq_lease_routes_and_metadata(guest_image, tmp_path, dhcp_netns):
    tap = "tap,ifname=tap0,script=no,downscript=no"
    with booted(guest_image, tmp_path / "vm", tap, netns=dhcp_netns) as vm:
        report = vm.wait(lambda r: r.ready, "guest READY")
    lease = report.leases["eth0"]
    assert lease["ip"] == "192.168.77.50/24"
    assert lease["router"] == "192.168.77.9"
    assert lease["dns"] == "192.168.77.1,192.168.77.2"
    assert report.metadata["instance-id"] == "vm-dnsmasq"
    assert report.metadata_errors["user-data"] == "http-404"
