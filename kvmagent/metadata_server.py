"""The EC2-style metadata HTTP server of one DHCP namespace (run inside it by the agent).

A process of its own, not a thread of the agent: a restarted (or upgraded) agent finds
it by its pid file and VMs keep reading their metadata meanwhile. It tells VMs apart
by source address and reads ``<dir>/vms/<ip>.json`` on every request (the agent
replaces those files atomically), so it never needs a reload. It writes its pid file
once it listens: the agent waits for that file to know it is serving.

Paths are those a stock cloud-init 22.4 Ec2 datasource asks for: the dated
versions it probes and ``latest``, directory listings, ``PUT /latest/api/token``. The
same tree is served on the DHCP server's address too: cloud-init's CloudStack datasource
(ZStack 1.0) reads ``http://<DHCP server>/latest/...`` with the same layout.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSIONS = ("2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
PID_FILE = "server.pid"
VMS_DIR = "vms"


def vm_file(state_dir: Path, ip: str) -> Path:
    return Path(state_dir) / VMS_DIR / f"{ip}.json"


def key_name(key: str) -> str:
    """The name listed under public-keys/ (the key's comment, as EC2 lists key names)."""
    fields = key.split()
    return fields[2] if len(fields) > 2 else "zstack"


def resolve(vm: dict, path: str) -> str | None:
    """The body for ``path`` (without the version) of ``vm``'s data; None: 404."""
    meta = vm.get("metadata", {})
    key = vm.get("sshKey")
    values = {
        "instance-id": meta.get("vmUuid", ""),
        "local-hostname": meta.get("vmHostname") or meta.get("vmUuid", ""),
        "local-ipv4": vm.get("vmIp", ""),
    }
    path = path.strip("/")
    if path == "":
        return "meta-data/" + ("\nuser-data" if vm.get("userdata") is not None else "")
    if path == "user-data":
        return vm.get("userdata")
    if path == "meta-data":
        return "\n".join([*values, *(["public-keys/"] if key else [])])
    if path.startswith("meta-data/"):
        item = path[len("meta-data/"):]
        if item in values:
            return values[item]
        if key and item == "public-keys":
            return f"0={key_name(key)}"
        if key and item == "public-keys/0":
            return "openssh-key"
        if key and item == "public-keys/0/openssh-key":
            return key + "\n"
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "zfleet-metadata"
    state_dir: Path

    def do_PUT(self) -> None:
        if self.path.rstrip("/") == "/latest/api/token":
            self._send(200, secrets.token_urlsafe(32))
        else:
            self._send(404, "not found")

    def do_GET(self) -> None:
        version, _, rest = self.path.split("?")[0].lstrip("/").partition("/")
        body = None
        if version in VERSIONS:
            try:
                vm = json.loads(vm_file(self.state_dir, self.client_address[0]).read_text())
            except (OSError, ValueError):
                vm = None
            body = resolve(vm, rest) if vm else None
        elif version == "":
            body = "\n".join(VERSIONS)
        if body is None:
            self._send(404, "not found")
        else:
            self._send(200, body)

    def _send(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--listen", action="append", required=True,
                   help="address:port (repeat: 169.254.169.254 for Ec2, the DHCP server's "
                   "address for ZStack 1.0's CloudStack-style datasource)")
    args = p.parse_args(argv)
    Handler.state_dir = args.dir
    servers = []
    for listen in args.listen:
        host, _, port = listen.rpartition(":")
        servers.append(ThreadingHTTPServer((host, int(port)), Handler))
        servers[-1].daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tmp = args.dir / f".{PID_FILE}.tmp"
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(args.dir / PID_FILE)
    for httpd in servers[1:]:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
