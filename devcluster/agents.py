"""Run zfleet's agents and coordinator as daemons for a devcluster, and wait until they
answer."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from devcluster import procs


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    ready_path: str  # POST answers 200 once it serves (GET for the coordinator)


SERVICES = {
    s.name: s
    for s in (
        Service("coordinator", 8080, "/health"),
        Service("kvmagent", 7070, "/host/echo"),
        Service("cephagent", 7762, "/ceph/primarystorage/echo"),
        Service("sftpbsagent", 7171, "/sftpbackupstorage/echo"),
        Service("vragent", 7272, "/echo"),
        Service("consoleproxy", 7758, "/console/echo"),
    )
}


def argv(name: str, host: str, port: int, root: Path, *extra: str) -> list[str]:
    """The command line of one service, with its data dir and log file under ``root``."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        raise FileNotFoundError(f"{name} is not installed in {Path(sys.executable).parent}: "
                                "run `make setup`")
    return [exe, "--host", host, "--port", str(port), "--data-dir", str(root / "data" / name),
            "--log-file", str(root / "log" / f"{name}.log"), *extra]


def wait_ready(name: str, url: str, proc: procs.Proc, timeout: float = 30.0) -> None:
    """Wait until the service answers; fail at once, with its log, if it exits."""
    service = SERVICES[name]

    def answers() -> bool:
        if service.ready_path == "/health":
            return requests.get(url + service.ready_path, timeout=1).ok
        return requests.post(url + service.ready_path, timeout=1).ok

    procs.wait_for(answers, timeout, f"{name} at {url}", watch=[proc])
