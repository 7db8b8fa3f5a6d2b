"""coordinator: inventory, scheduling and flows over the agents (sqlite-backed).

``POST /api/<ApiName>`` runs an API (``GET /api`` lists them with their fields);
long APIs are jobs (``?wait=false`` answers at once with the job uuid, then
``GET /api/result/<jobUuid>``). Agents call back at ``/callback`` and report at
``/report`` (their ``sendCommandUrl``).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from flask import Flask, jsonify, request
from pydantic import ValidationError

from agentlib import server
from agentlib.agent import validation_message
from coordinator import query
from coordinator.agentclient import AgentClient
from coordinator.api import ApiError, Apis
from coordinator.apis import MODULES
from coordinator.config import CoordinatorConfig
from coordinator.context import Context
from coordinator.db import Database, NotFound
from coordinator.globalconfig import GlobalConfig
from coordinator.jobs import Jobs
from coordinator.reports import Reports
from coordinator.scheduler import Scheduler
from coordinator.services import gc, ha, storage
from coordinator.services.failover import Failover
from coordinator.services.vmreports import VmReports

PORT = 8080
CALLBACK_THREADS = 4  # HTTP threads kept free of callers waiting for jobs
log = logging.getLogger(__name__)


@dataclass
class Coordinator:
    app: Flask
    ctx: Context
    reports: Reports
    scheduler: Scheduler

    def set_base_url(self, url: str) -> None:
        """Where agents reach us (known only once a test server has its port)."""
        self.ctx.agents.callback_url = url.rstrip("/") + "/callback"

    def close(self) -> None:
        self.scheduler.stop()
        if self.ctx.jobs:
            self.ctx.jobs.shutdown()


def build(cfg: CoordinatorConfig) -> Coordinator:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.db_path)
    apis = Apis()
    ctx = Context(cfg, db, apis, AgentClient(f"{cfg.base_url() or ''}/callback",
                                             cfg.agent_timeout))
    query.register(apis, db)
    for module in MODULES:
        apis.add_module(module)
    ctx.gconf = GlobalConfig(db, apis.long_timeouts())
    ctx.jobs = Jobs(db, cfg.api_workers)
    failover = Failover(ctx)
    vm_reports = VmReports(ctx, failover)
    reports = Reports(ctx, vm_reports)
    scheduler = Scheduler(ctx, failover)
    ctx.on_host_connect.extend([storage.on_host_connect, gc.on_host_connect,
                                ha.on_host_connect, vm_reports.sync_host])
    if cfg.background:
        scheduler.start()
    return Coordinator(_flask(ctx, reports), ctx, reports, scheduler)


def _flask(ctx: Context, reports: Reports) -> Flask:
    app = Flask("coordinator")
    apis = ctx.apis
    # Callers waiting for long APIs hold HTTP threads; agents' callbacks need some free,
    # or a burst of waiting callers would starve the very callbacks they wait for.
    waiters = threading.BoundedSemaphore(max(1, ctx.cfg.threads - CALLBACK_THREADS))

    @app.post("/api/<name>")
    def api(name: str):
        spec = apis.specs.get(name)
        if spec is None:
            return _reply({"success": False, "error": f"no API {name} (GET /api lists "
                                                      "them)"}, 404)
        try:
            body = json.loads(request.get_data() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("must be a JSON object")
            msg = spec.message.model_validate(body)
        except ValidationError as exc:
            return _reply({"success": False, "error": validation_message(exc)}, 400)
        except ValueError as exc:
            return _reply({"success": False, "error": f"body: not valid JSON ({exc})"}, 400)
        if not spec.long:
            return _run(lambda: spec.handler(msg, ctx))
        timeout = ctx.gconf.get("apiTimeout", name)
        job = ctx.jobs.submit(name, body, timeout,
                              lambda deadline: spec.handler(msg, ctx, deadline))
        if request.args.get("wait", "true") == "false" or not waiters.acquire(blocking=False):
            return _reply({"success": True, "error": "", "jobUuid": job}, 202)
        try:
            return _job_reply(ctx.jobs.wait(job, timeout + 10))
        finally:
            waiters.release()

    @app.get("/api")
    def list_apis():
        return jsonify(apis.describe())

    @app.get("/api/result/<uuid>")
    def result(uuid: str):
        try:
            return _job_reply(ctx.db.get("job", uuid))
        except NotFound:
            return _reply({"success": False, "error": f"no job {uuid}"}, 404)

    @app.post("/callback")
    def callback():
        taskuuid = request.headers.get("taskuuid", "")
        body = request.get_json(force=True, silent=True)
        if not taskuuid or not isinstance(body, dict):
            return _reply({"success": False, "error": "a callback needs a taskuuid header "
                                                      "and a JSON object"}, 400)
        if not ctx.agents.hub.deliver(taskuuid, body):
            log.warning("callback for task %s that nobody waits for (late?)", taskuuid)
        return _reply({"success": True, "error": ""})

    @app.post("/report")
    def report():
        commandpath = request.headers.get("commandpath", "")
        body = request.get_json(force=True, silent=True)
        if not commandpath or not isinstance(body, dict):
            return _reply({"success": False, "error": "a report needs a commandpath header "
                                                      "and a JSON object"}, 400)
        reports.receive(commandpath, body)
        return _reply({"success": True, "error": ""})

    @app.get("/reports")
    def list_reports():
        return jsonify(reports.recent())

    @app.get("/health")
    def health():
        """Serving; where its database is (for ``zfleet dump-db`` on this machine)."""
        return _reply({"success": True, "error": "", "database": str(ctx.cfg.db_path.absolute())})

    return app


def _run(fn) -> tuple:
    try:
        reply = fn()
    except (ApiError, NotFound) as exc:
        return _reply({"success": False, "error": str(exc)})
    except Exception as exc:
        log.exception("API failed")
        return _reply({"success": False, "error": f"internal error: {type(exc).__name__}: "
                                                  f"{exc} (the coordinator log has the "
                                                  "details)"}, 500)
    return _reply({"success": True, "error": "", **(reply or {})})


def _job_reply(row: dict) -> tuple:
    if row["state"] == "Running":
        return _reply({"success": True, "error": "", "jobUuid": row["uuid"],
                       "state": "Running"}, 202)
    ok = row["state"] == "Succeeded"
    return _reply({"success": ok, "error": row["error"] or "", "jobUuid": row["uuid"],
                   "state": row["state"], **(row.get("result") or {})})


def _reply(body: dict, status: int = 200) -> tuple:
    return jsonify(body), status


def main(argv: list[str] | None = None) -> None:
    server.main("coordinator", build, CoordinatorConfig, PORT,
                __doc__.splitlines()[0], argv)
