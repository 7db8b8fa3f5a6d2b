#!/usr/bin/env python3
"""An agent under attack by slow clients and long tasks (issue 14, findings 5 and 6).

1. Sync ping latency (sequential, new connection each) with no other client, then while
   N clients drip their headers or their body one byte a second, same server, same run.
2. Async call -> callback latency of a short command (a /vm/destroy stand-in) with no
   other task, then with 8 long tasks (60 s each, scan-like) running or queued.

The agent is a bench agent under the production server settings (gunicorn, one worker,
16 threads, 8 task workers, 4 long-task workers, --request-timeout 10).
Run: .venv/bin/python bench/slow_clients.py [--drippers 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
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
from agentlib.tasks import Task
from devcluster import procs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures.drip import Dripper  # the test suite's slow client

LONG_TASKS = 8
NO_ANSWER = 15.0  # seconds a ping may take before it counts as unanswered


class SleepCmd(AgentCommand):
    seconds: float = 0


def agent_app():
    agent = Agent("bench", AgentConfig(log_level="WARNING"))

    @agent.sync("/bench/ping", quiet=True)
    def ping(cmd: SleepCmd) -> AgentReply:
        """Answer at once."""

    @agent.async_("/bench/short", quiet=True)
    def short(cmd: SleepCmd) -> AgentReply:
        """A short async command (like /vm/destroy)."""

    @agent.async_("/bench/long", quiet=True, long=True)
    def long(cmd: SleepCmd, task: Task) -> AgentReply:
        """A long async command (like /ha/scanhost): sleeps, cancellable."""
        ends = time.monotonic() + cmd.seconds
        while time.monotonic() < ends:
            task.check_cancelled()
            time.sleep(0.1)

    return agent.app


def ping_latencies(url: str, seconds: float) -> tuple[list[float], int]:
    """Sequential pings for ``seconds``: latencies (ms) and how many went unanswered."""
    latencies, unanswered = [], 0
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        sent = time.monotonic()
        try:
            requests.post(url + "/bench/ping", json={}, timeout=NO_ANSWER).raise_for_status()
            latencies.append((time.monotonic() - sent) * 1000)
        except requests.RequestException:
            unanswered += 1
    return latencies, unanswered


def callback_latencies(url: str, receiver: CallbackReceiver, calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        t = uuid.uuid4().hex
        sent = time.monotonic()
        requests.post(url + "/bench/short", json={}, timeout=10,
                      headers={"taskuuid": t, "callbackurl": receiver.url})
        [cb] = receiver.wait(taskuuid=t, timeout=120)
        latencies.append((cb.at - sent) * 1000)
    return latencies


def summary(latencies: list[float], unanswered: int = 0) -> str:
    if not latencies:
        return f"no answer within {NO_ANSWER:g} s ({unanswered} tries)"
    text = (f"p50 {statistics.median(latencies):8.2f} ms  max {max(latencies):9.2f} ms  "
            f"({len(latencies)} answered")
    return text + (f", {unanswered} unanswered)" if unanswered else ")")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drippers", type=int, default=20, help="slow clients at once")
    ap.add_argument("--seconds", type=float, default=5, help="pinging time per case")
    ap.add_argument("--callbacks", type=int, default=20, help="short async calls per case")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        logging.basicConfig(level=logging.WARNING)
        serve_gunicorn(agent_app, "127.0.0.1", args.port, 16)
        return 0
    port = procs.free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="zfbench") as tmp:
        proc = procs.spawn("bench-agent", [sys.executable, __file__, "--serve", "--port",
                                           str(port)], Path(tmp) / "agent.log")
        try:
            procs.wait_for(lambda: requests.post(url + "/bench/ping", timeout=1).ok, 20,
                           "bench agent")
            alone = summary(*ping_latencies(url, args.seconds))
            print(f"ping, no other client            : {alone}")
            for part in ("headers", "body"):
                drippers = [Dripper(port, "/bench/ping", part) for _ in range(args.drippers)]
                try:
                    time.sleep(1)
                    result = summary(*ping_latencies(url, args.seconds))
                finally:
                    for d in drippers:
                        d.stop()
                print(f"ping, {args.drippers} clients dripping {part:7}: {result}")
            with CallbackReceiver() as receiver:
                idle = callback_latencies(url, receiver, args.callbacks)
                print(f"short async -> callback, idle     : {summary(idle)}")
                long_tasks = [uuid.uuid4().hex for _ in range(LONG_TASKS)]
                for t in long_tasks:
                    requests.post(url + "/bench/long", json={"seconds": 60}, timeout=10,
                                  headers={"taskuuid": t, "callbackurl": receiver.url})
                busy = callback_latencies(url, receiver, args.callbacks)
                print(f"short async -> callback, {LONG_TASKS} long  : {summary(busy)}")
                for t in long_tasks:
                    requests.post(url + "/job/cancel", json={"taskUuid": t}, timeout=10)
        finally:
            procs.stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
