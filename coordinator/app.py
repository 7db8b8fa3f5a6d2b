"""coordinator: inventory, scheduling and flows over the agents (sqlite-backed).

Foundation skeleton: it receives agent reports (``sendCommandUrl`` target, with the
``commandpath`` header), logs them and lists the latest at ``GET /reports``, so the
agent -> coordinator path can be seen working. Inventory, API and flows arrive with the
coordinator issue.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from flask import Flask, jsonify, request

from agentlib import server
from agentlib.config import AgentConfig

PORT = 8080
log = logging.getLogger(__name__)


@dataclass
class Coordinator:
    app: Flask


def build(cfg: AgentConfig) -> Coordinator:
    app = Flask("coordinator")
    reports: deque[dict] = deque(maxlen=1000)
    lock = threading.Lock()

    @app.post("/report")
    def report():
        commandpath = request.headers.get("commandpath", "")
        body = request.get_json(force=True, silent=True)
        if not commandpath or not isinstance(body, dict):
            return jsonify(success=False,
                           error="a report needs a commandpath header and a JSON object"), 400
        log.info("report %s: %s", commandpath, body)
        with lock:
            reports.append({"commandpath": commandpath, "body": body})
        return jsonify(success=True, error="")

    @app.get("/reports")
    def list_reports():
        with lock:
            return jsonify(list(reports))

    @app.get("/health")
    def health():
        return jsonify(success=True, error="")

    return Coordinator(app)


def main(argv: list[str] | None = None) -> None:
    server.main("coordinator", build, AgentConfig, PORT, __doc__.splitlines()[0], argv)
