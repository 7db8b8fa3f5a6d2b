#!/usr/bin/env python3
"""Benchmark the agent framework against a bare WSGI app on the same gunicorn settings.

1. Sync round trips/s and p50/p99 latency (wrk, keep-alive, loopback) of a typed agent
   endpoint (JSON parse, pydantic validation, handler, reply model) next to a bare WSGI
   app returning the same JSON, both under gunicorn gthread with one worker.
2. Async: POST with taskuuid/callbackurl -> callback received by a real HTTP receiver,
   p50/p99 over sequential calls.

Targets (issue #2): framework throughput >= 70% of the bare app; callback p50 < 5 ms.
Run: .venv/bin/python bench/agent_http.py [--seconds 10] [--connections 8] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.models import AgentCommand, AgentReply
from agentlib.receiver import CallbackReceiver
from agentlib.server import serve_gunicorn
from agentlib.types import SafeName, Uuid
from devcluster import procs

BODY = {"hostUuid": "0123456789abcdef0123456789abcdef", "vmName": "vm-1"}
REPLY = json.dumps({"success": True, "error": "", "hostUuid": BODY["hostUuid"]}).encode()


class PingCmd(AgentCommand):
    host_uuid: Uuid
    vm_name: SafeName


class PingReply(AgentReply):
    host_uuid: str


def agent_app():
    agent = Agent("bench", AgentConfig(task_workers=4, log_level="WARNING"))

    @agent.sync("/bench/ping", quiet=True)
    def ping(cmd: PingCmd) -> PingReply:
        """A typed sync command."""
        return PingReply(host_uuid=cmd.host_uuid)

    @agent.async_("/bench/noop", quiet=True)
    def noop(cmd: PingCmd) -> PingReply:
        """A typed async command that does nothing."""
        return PingReply(host_uuid=cmd.host_uuid)

    return agent.app


def bare_app():
    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        json.loads(environ["wsgi.input"].read(length) or b"{}")
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(REPLY)))])
        return [REPLY]

    return app


def serve(kind: str, port: int, threads: int) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    serve_gunicorn(agent_app if kind == "agent" else bare_app, "127.0.0.1", port, threads)


def start_server(kind: str, threads: int, workdir: Path) -> tuple[procs.Proc, str]:
    port = procs.free_port()
    proc = procs.spawn(kind, [sys.executable, __file__, "--serve", kind, "--port", str(port),
                              "--threads", str(threads)], workdir / f"{kind}.log")
    url = f"http://127.0.0.1:{port}"
    procs.wait_for(lambda: requests.post(url + "/bench/ping", json=BODY, timeout=1).ok,
                   20, f"{kind} server")
    return proc, url


def wrk(url: str, seconds: int, connections: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    script.write_text(f"wrk.method = \"POST\"\nwrk.body = '{json.dumps(BODY)}'\n"
                      'wrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(script), url + "/bench/ping"],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "non2xx": int(errors.group(1)) if errors else 0}


def callback_latency(url: str, calls: int) -> list[float]:
    session = requests.Session()
    latencies = []
    with CallbackReceiver() as receiver:
        for _ in range(calls):
            t = uuid.uuid4().hex
            sent = time.monotonic()
            session.post(url + "/bench/noop", json=BODY, timeout=5,
                         headers={"taskuuid": t, "callbackurl": receiver.url})
            [cb] = receiver.wait(taskuuid=t, timeout=5)
            assert cb.body["success"], cb.body
            latencies.append((cb.at - sent) * 1000)
    return latencies


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per server")
    ap.add_argument("--connections", type=int, default=8, help="wrk keep-alive connections")
    ap.add_argument("--threads", type=int, default=16, help="gunicorn threads")
    ap.add_argument("--callbacks", type=int, default=500, help="sequential async calls")
    ap.add_argument("--serve", choices=["agent", "bare"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.threads)
        return 0
    if not shutil.which("wrk"):
        sys.exit("wrk not found: run `make setup`")
    results = {}
    with tempfile.TemporaryDirectory(prefix="zfbench") as tmp:
        workdir = Path(tmp)
        for kind in ("bare", "agent"):
            proc, url = start_server(kind, args.threads, workdir)
            try:
                wrk(url, 2, args.connections, workdir)  # warm-up
                results[kind] = wrk(url, args.seconds, args.connections, workdir)
                if kind == "agent":
                    lat = callback_latency(url, args.callbacks)
            finally:
                procs.stop(proc)
    bare, agent = results["bare"], results["agent"]
    ratio = agent["rps"] / bare["rps"]
    print(f"sync  bare WSGI app : {bare['rps']:8.0f} req/s  p50 {bare['p50']:>8}  "
          f"p99 {bare['p99']:>8}  (gunicorn gthread 1 worker, {args.threads} threads)")
    print(f"sync  zfleet agent  : {agent['rps']:8.0f} req/s  p50 {agent['p50']:>8}  "
          f"p99 {agent['p99']:>8}  -> {ratio:.0%} of bare (target >= 70%)")
    print(f"async call->callback: p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms  "
          f"over {len(lat)} calls (target p50 < 5 ms)")
    if bare["non2xx"] or agent["non2xx"]:
        print(f"WARNING: non-2xx replies: bare {bare['non2xx']}, agent {agent['non2xx']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
