#!/usr/bin/env python3
"""Image download through sftpbsagent vs ``curl -o``, and the KVM host's pull vs plain
``scp``, same run, same files.

Two simulated hosts: B (backup storage: sftpbsagent + sshd) and K (KVM host: libvirtd +
kvmagent, its key authorized on B). A qcow2 of --size-mib (every byte written) is served
over HTTP from the root namespace with sendfile (so the server is not what is measured).

1. download: POST /sftpbackupstorage/download (stream to a temp file + md5 on the way +
   qemu-img info + rename), timed until its callback arrives, vs ``curl -o`` of the same
   URL from inside B into the same directory. Target: agent >= 90% of curl's throughput.
2. pull: POST /localstorage/sftp/download on K (ssh stream + md5 on the way, checked
   against the md5 the download reported + qemu-img info + rename) vs plain ``scp -s``
   of the same file from inside K with the same key and options. Target: >= 90% of scp.
   Also the pull with a size check only (no md5Sum: nothing hashed).

Also timed: md5 of the same file from the page cache, alone. Both agents report an
md5 of what they stored, so on a source faster than md5 that is their ceiling.

Median of the rounds (files removed between rounds). Run as root:
.venv/bin/python bench/image_download.py [--rounds 3] [--size-mib 512]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from agentlib import shell
from agentlib.receiver import CallbackReceiver
from agentlib.ssh import Remote, SshIdentity
from devcluster import agents, hostnet
from devcluster.kvmhost import kvmagent_url, start_kvmagent, storage_dir
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost
from devcluster.sshd import authorize_agent, start_sshd

MIB = 1 << 20
TARGET = 0.90


def serve_file(path: Path, host: str) -> http.server.ThreadingHTTPServer:
    """GET / answers ``path`` with sendfile: the source must outrun both clients."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            with open(path, "rb") as f:
                offset = 0
                while offset < size:
                    offset += os.sendfile(self.connection.fileno(), f.fileno(), offset,
                                          size - offset)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Bench:
    def __init__(self, root: Path, size_mib: int):
        self.net = hostnet.HostNetwork(hostnet.free_prefix("zb"), hostnet.free_subnet())
        self.b = SimHost("b", root / "b", self.net.host_ip(1), self.net.mgmt_bridge, {},
                         prefix=self.net.prefix)
        self.k = SimHost("k", root / "k", self.net.host_ip(2), self.net.mgmt_bridge, {},
                         prefix=self.net.prefix)
        self.root_ip = self.net.root_ip.split("/")[0]
        self.receiver = CallbackReceiver(host=self.root_ip)
        self.source = root / "source.qcow2"
        self.bs_root = self.b.dir / "bsroot"
        self.cache = storage_dir(self.k) / "localstorage" / "imagecache"
        self.size_mib = size_mib
        self.server: http.server.ThreadingHTTPServer | None = None

    def up(self) -> None:
        shell.run(["qemu-img", "create", "-q", "-f", "qcow2", self.source,
                   f"{self.size_mib}M"])
        shell.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {self.size_mib}M",
                   self.source], timeout=600)
        self.net.up()
        self.b.start()
        self.k.start()
        self.receiver.start()
        self.server = serve_file(self.source, self.root_ip)
        self.image_url = f"http://{self.root_ip}:{self.server.server_address[1]}/"
        start_sshd(self.b)
        port = agents.SERVICES["sftpbsagent"].port
        proc = self.b.spawn("sftpbsagent", agents.argv("sftpbsagent", "0.0.0.0", port,
                                                       self.b.dir, "--storage-roots",
                                                       str(self.bs_root)),
                            self.b.dir / "log" / "sftpbsagent.out")
        self.bs_url = f"http://{self.b.mgmt_address}:{port}"
        agents.wait_ready("sftpbsagent", self.bs_url, proc)
        self.call(self.bs_url, "/sftpbackupstorage/connect", {"storagePath": str(self.bs_root)})
        Libvirtd(self.k).start()
        start_kvmagent(self.k)
        self.kvm_url = kvmagent_url(self.k)
        authorize_agent(self.kvm_url, self.b)
        self.call(self.kvm_url, "/localstorage/init", {"path": str(self.cache.parent)})
        self.identity = SshIdentity(self.k.dir / "data" / "kvmagent" / "ssh")

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.receiver.stop()
        self.k.stop()
        self.b.stop()
        self.net.down()

    def call(self, url: str, path: str, body: dict) -> dict:
        reply = requests.post(url + path, json=body, timeout=60).json()
        if not reply["success"]:
            raise RuntimeError(f"{path}: {reply['error']}")
        return reply

    def call_async(self, url: str, path: str, body: dict) -> tuple[float, dict]:
        task = uuid.uuid4().hex
        started = time.monotonic()
        requests.post(url + path, json=body, timeout=30, headers={
            "taskuuid": task, "callbackurl": self.receiver.url}).raise_for_status()
        [cb] = self.receiver.wait(timeout=900, taskuuid=task)
        if not cb.body["success"]:
            raise RuntimeError(f"{path} failed: {cb.body['error']}")
        return cb.at - started, cb.body

    def agent_download(self, name: str) -> tuple[float, dict]:
        return self.call_async(self.bs_url, "/sftpbackupstorage/download", {
            "url": self.image_url, "installPath": str(self.bs_root / name)})

    def curl(self, name: str) -> float:
        started = time.monotonic()
        self.b.run(["curl", "-sSf", "-o", str(self.bs_root / name), self.image_url],
                   timeout=900)
        return time.monotonic() - started

    def agent_pull(self, src: str, name: str, image: dict, md5: bool = True) -> float:
        seconds, _ = self.call_async(self.kvm_url, "/localstorage/sftp/download", {
            "hostname": self.b.mgmt_address, "backupStorageInstallPath": src,
            "primaryStorageInstallPath": str(self.cache / name),
            "md5Sum": image["md5Sum"] if md5 else None, "actualSize": image["actualSize"]})
        return seconds

    def plain_scp(self, src: str, name: str) -> float:
        remote = Remote(self.identity, self.b.mgmt_address)
        self.cache.mkdir(parents=True, exist_ok=True)
        argv = ["scp", "-s", "-q", *remote.ssh_options(), f"root@{self.b.mgmt_address}:{src}",
                str(self.cache / name)]
        started = time.monotonic()
        self.k.run(argv, timeout=900)
        return time.monotonic() - started

    def clean(self) -> None:
        for d in (self.bs_root, self.cache):
            for p in d.rglob("*"):
                if p.is_file():
                    p.unlink()
        shell.run(["sync"])


def md5_alone(path: Path) -> float:
    path.read_bytes()  # into the page cache
    started = time.monotonic()
    with open(path, "rb") as f:
        hashlib.file_digest(f, "md5")
    return time.monotonic() - started


def report(title: str, size: int, ours: list[float], base: list[float],
           names: tuple[str, str]) -> bool:
    print(title)
    for name, times in zip(names, (ours, base), strict=True):
        rates = sorted(size / MIB / t for t in times)
        print(f"  {name:22} {statistics.median(times):6.2f}s  {statistics.median(rates):7.1f} "
              f"MiB/s  ({rates[0]:.1f}-{rates[-1]:.1f})")
    ratio = statistics.median(base) / statistics.median(ours)
    ok = ratio >= TARGET
    print(f"  agent throughput / baseline: {ratio:.0%}  (target >= {TARGET:.0%}: "
          f"{'met' if ok else 'MISSED'})")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=512)
    args = ap.parse_args()
    download, curl, pull, scp, md5, sized = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="zb", dir="/tmp") as tmp:
        bench = Bench(Path(tmp), args.size_mib)
        try:
            bench.up()
            size = bench.source.stat().st_size
            for i in range(args.rounds):
                # alternate the order, so neither side always meets a warm page cache
                if i % 2:
                    curl.append(bench.curl(f"curl{i}.qcow2"))
                seconds, image = bench.agent_download(f"agent{i}.qcow2")
                download.append(seconds)
                if not i % 2:
                    curl.append(bench.curl(f"curl{i}.qcow2"))
                src = str(bench.bs_root / f"agent{i}.qcow2")
                if i % 2:
                    scp.append(bench.plain_scp(src, f"scp{i}.qcow2"))
                pull.append(bench.agent_pull(src, f"pull{i}.qcow2", image))
                if not i % 2:
                    scp.append(bench.plain_scp(src, f"scp{i}.qcow2"))
                sized.append(bench.agent_pull(src, f"sized{i}.qcow2", image, md5=False))
                bench.clean()
                md5.append(md5_alone(bench.source))
        finally:
            bench.down()
    print(f"image {size / MIB:.1f} MiB (qcow2, every byte written), {args.rounds} rounds "
          "(median; min-max)")
    rates = sorted(size / MIB / t for t in md5)
    print(f"md5 alone (page cache)   {statistics.median(md5):6.2f}s  "
          f"{statistics.median(rates):7.1f} MiB/s  ({rates[0]:.1f}-{rates[-1]:.1f})")
    ok = report("download into the backup storage (HTTP)", size, download, curl,
                ("sftpbsagent download", "curl -o"))
    ok &= report("KVM host pull from the backup storage (ssh)", size, pull, scp,
                 ("kvmagent sftp/download", "plain scp"))
    report("KVM host pull, size check only (no md5Sum)", size, sized, scp,
           ("kvmagent sftp/download", "plain scp"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
