"""The agent framework: a flask app whose routes are typed ZStack-protocol handlers.

A handler is a plain function taking its command model (and, for async handlers that
support cancellation, a ``task``) and returning its reply model::

    @agent.sync("/host/ping")
    def ping(cmd: PingCmd) -> PingReply: ...

    @agent.async_("/vm/start")
    def start(cmd: StartVmCmd, task: Task) -> StartVmReply: ...

The framework owns everything around it: JSON parsing, validation into a 400 that names
the field, the ``{success, error}`` envelope, taskuuid/callbackurl handling, logging and
the OpenAPI document. Handlers stay thin and call drivers. A handler module declares
its routes on a :class:`~agentlib.routes.Routes` and the agent serves them with
``agent.include(routes, state)``, the state (its drivers) passed first to each handler.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, request
from gunicorn.http.errors import ParseException
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from agentlib import callbackurl, logs, openapi
from agentlib.config import AgentConfig
from agentlib.errors import AgentError, BadRequest
from agentlib.locks import NamedLocks
from agentlib.models import AgentCommand, AgentReply, CancelJobCommand
from agentlib.reports import Reporter
from agentlib.routes import Routes
from agentlib.tasks import Task, TaskRunner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 << 20
"""The largest command body accepted (HTTP 413 beyond): commands are metadata, not data."""


@dataclass
class Route:
    path: str
    kind: str  # "sync" | "async"
    handler: Callable
    command: type[AgentCommand]
    reply: type[AgentReply]
    takes_task: bool
    quiet: bool
    check: Callable | None = None
    """Runs on the command before it is accepted; its BadRequest is the HTTP 400."""
    bound: tuple = ()
    """Passed to the handler (and check) before the command: the state of ``include``."""

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.handler) or self.path).splitlines()[0]

    @property
    def description(self) -> str:
        return inspect.getdoc(self.handler) or ""


class Agent:
    """One agent process: its routes, worker pool, reporter and named locks."""

    def __init__(self, name: str, config: AgentConfig, version: str = "0.1.0"):
        self.name = name
        self.config = config
        self.version = version
        self.routes: dict[str, Route] = {}
        self.locks = NamedLocks()
        self.reporter = Reporter()
        self.reporter.max_delay = min(5.0, config.callback_retry_seconds)
        self.tasks = TaskRunner(config.task_workers, config.callback_retry_seconds,
                                long_workers=config.long_task_workers)
        self.app = Flask(name)
        self.app.url_map.strict_slashes = False
        self.app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
        self._install_error_handlers()
        self.app.add_url_rule("/openapi.json", "openapi", self._openapi, methods=["GET"])
        self._commands: dict[str, Route] = {}  # "/a/b" and "/a/b/" -> route
        self._close_hooks: list[Callable[[], None]] = []
        self._flask_wsgi = self.app.wsgi_app
        self.app.wsgi_app = self._dispatch
        self.sync("/job/cancel")(self._cancel_job)

    # -- registration -------------------------------------------------------------

    def sync(self, path: str, *, quiet: bool = False):
        """Register a handler that answers in the HTTP reply."""
        return self._register(path, "sync", quiet)

    def async_(self, path: str, *, quiet: bool = False, long: bool = False,
               check: Callable | None = None):
        """Register a handler that is accepted at once and answers via ``callbackurl``.

        ``long``: it may run for minutes (scans, transfers, migrations, copies); it then
        runs on the long-task pool and cannot hold up short commands. ``check(cmd)``
        judges what the model cannot (e.g. paths against the host's storage roots) before
        the command is accepted: its BadRequest is a 400, not a failed callback."""
        return self._register(path, "async", quiet, long, check)

    def include(self, routes: Routes, state: object, prefix: str = "") -> None:
        """Serve the handlers ``routes`` declared, each called with ``state`` before its
        command; ``prefix`` goes before their paths (one module under two prefixes)."""
        for d in routes.declared:
            self._register(prefix + d.path, d.kind, bound=(state,), **d.options)(d.handler)

    def _register(self, path: str, kind: str, quiet: bool = False, long: bool = False,
                  check: Callable | None = None, bound: tuple = ()):
        if long:
            self.tasks.run_long(path)

        def decorate(fn: Callable) -> Callable:
            if path in self.routes:
                raise ValueError(f"{self.name}: {path} registered twice")
            command, reply, takes_task = _signature(fn, len(bound))
            route = Route(path, kind, fn, command, reply, takes_task, quiet, check, bound)
            self.routes[path] = route
            self._commands[path] = self._commands[path + "/"] = route
            # flask keeps the rule too, so other methods get its 405 and the url map lists
            # every endpoint; its view is the same code the dispatcher runs
            self.app.add_url_rule(
                path, path, lambda: self._respond(route, request._get_current_object()),
                methods=["POST"], strict_slashes=False,
            )
            return fn

        return decorate

    # -- request handling ----------------------------------------------------------

    def _dispatch(self, environ: dict, start_response):
        """WSGI middleware in front of flask: a POST to a registered command is served
        directly. Commands are exact-path POSTs and need none of flask's per-request
        machinery (contexts, routing, sessions, signals), which costs ~45 us a request,
        more than the rest of the framework; flask serves everything else."""
        route = self._commands.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self._flask_wsgi(environ, start_response)
        return self._respond(route, _Request(environ))(environ, start_response)

    def _respond(self, route: Route, req: Request) -> Response:
        try:
            if route.kind == "sync":
                return self._sync_view(route, req)
            return self._async_view(route, req)
        except BadRequest as exc:
            log.warning("rejected %s: %s", req.path, exc)
            return _json({"success": False, "error": str(exc)}, 400)
        except HTTPException as exc:
            return self._http_error(exc, req)
        except Exception as exc:  # noqa: BLE001 - a JSON 500; the log has the traceback
            return _json(_internal_error(route.path, exc), 500)

    def _sync_view(self, route: Route, req: Request) -> Response:
        cmd = _parse(route.command, req, self._listen(req))
        started = time.monotonic()
        reply = self._invoke(route, cmd, None)
        level = logging.DEBUG if route.quiet else logging.INFO
        log.log(level, "%s answered in %.3fs: success=%s", route.path,
                time.monotonic() - started, reply["success"])
        return _json(reply)

    def _async_view(self, route: Route, req: Request) -> Response:
        taskuuid = req.headers.get("taskuuid", "").strip()
        if not taskuuid:
            raise BadRequest("taskuuid missing: async command needs a taskuuid header")
        listen = self._listen(req)
        callback = _callback_url(req, listen)
        cmd = _parse(route.command, req, listen)
        if route.check is not None:
            route.check(*route.bound, cmd)
        task = Task(taskuuid, route.path, callback, route.takes_task)

        def work(t: Task) -> dict:
            try:
                return self._invoke(route, cmd, t)
            except Exception as exc:  # noqa: BLE001 - becomes the callback's error
                return _internal_error(route.path, exc)

        with logs.task_context(taskuuid):
            outcome = self.tasks.submit(task, work)
            log.log(logging.DEBUG if route.quiet else logging.INFO, "%s %s", route.path, outcome)
        return _json({"success": True, "error": "", "taskUuid": taskuuid, "status": outcome})

    def _listen(self, req: Request) -> callbackurl.Listen:
        """Where this agent listens (the request's server port when configured as 0, as
        in tests that bind an ephemeral port)."""
        port = self.config.port or int(req.environ.get("SERVER_PORT") or 0)
        return callbackurl.Listen(self.config.host, port)

    def _invoke(self, route: Route, cmd: AgentCommand, task: Task | None) -> dict:
        try:
            args = (cmd, task) if route.takes_task else (cmd,)
            result = route.handler(*route.bound, *args)
        except AgentError as exc:
            if isinstance(exc, BadRequest) and route.kind == "sync":
                raise  # input the model could not judge (e.g. against the host): a 400
            log.warning("%s failed: %s", route.path, exc)
            return {"success": False, "error": str(exc)}
        if result is None:
            result = route.reply()
        if not isinstance(result, AgentReply):
            raise TypeError(f"{route.path}: handler returned {type(result).__name__}, "
                            f"expected {route.reply.__name__}")
        return result.wire()

    def _cancel_job(self, cmd: CancelJobCommand) -> AgentReply:
        """Cancel a queued or running async command by its taskuuid."""
        outcome = self.tasks.cancel(cmd.task_uuid)
        log.info("cancel %s: %s", cmd.task_uuid, outcome)
        return AgentReply()

    def _openapi(self):
        return _json(openapi.build(self))

    def _http_error(self, exc: HTTPException, req: Request) -> Response:
        msg = f"{exc.code} {exc.name}: {req.method} {req.path}"
        if exc.code == 404:
            msg += f" is not an endpoint of {self.name} (see GET /openapi.json)"
        reply = _json({"success": False, "error": msg}, exc.code or 500)
        allowed = getattr(exc, "valid_methods", None)  # a 405 says what is allowed
        if allowed:
            reply.headers["Allow"] = ", ".join(allowed)
        return reply

    def _install_error_handlers(self) -> None:
        """For what flask serves itself: unknown paths, other methods, /openapi.json."""

        @self.app.errorhandler(HTTPException)
        def http_error(exc: HTTPException):
            return self._http_error(exc, request)

        @self.app.errorhandler(Exception)
        def unexpected(exc: Exception):
            return _json(_internal_error(request.path, exc), 500)

    def on_close(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when the agent closes (e.g. close a libvirt connection)."""
        self._close_hooks.append(hook)

    def close(self) -> None:
        self.tasks.shutdown()
        self.reporter.close()
        for hook in reversed(self._close_hooks):
            hook()


def _json(body: dict, status: int = 200) -> Response:
    """Serialise a reply (flask's jsonify costs ~30 us a call more: this is the hot path)."""
    return Response(json.dumps(body), status, mimetype="application/json")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _callback_url(req: Request, listen: callbackurl.Listen) -> str:
    url = req.headers.get("callbackurl", "").strip()
    try:
        return callbackurl.check(url, listen)
    except ValueError as exc:
        raise BadRequest(f"callbackurl: {exc}") from None


class _Request(Request):
    max_content_length = MAX_BODY_BYTES


def _parse(model: type[AgentCommand], req: Request, listen: callbackurl.Listen) -> AgentCommand:
    try:
        raw = req.get_data(cache=False)
    except (OSError, ValueError, ParseException) as exc:  # e.g. a malformed chunk size:
        # gunicorn then closes the connection, whose next request cannot be found
        raise BadRequest(f"body: could not be read ({type(exc).__name__}: {exc})") from None
    try:
        # 1e999 parses as inf: the models refuse it naming the field (allow_inf_nan=False)
        body: object = json.loads(raw, parse_constant=_reject_constant) if raw.strip() else {}
    except RecursionError:
        raise BadRequest("body: JSON nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"body: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadRequest(f"body: must be a JSON object, got {type(body).__name__}")
    try:
        return model.model_validate(body, context={"listen": listen})
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """``"nics.0.mac: not a valid MAC address: 'x'; memory: Field required"``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _internal_error(where: str, exc: Exception) -> dict:
    log.exception("unexpected error in %s", where)
    return {"success": False,
            "error": f"internal error in {where}: {type(exc).__name__}: {exc} "
                     f"(the agent log has the details)"}


def _signature(fn: Callable, bound: int = 0
               ) -> tuple[type[AgentCommand], type[AgentReply], bool]:
    """``bound``: how many leading parameters the agent fills in (the state) before the
    command (and ``task``)."""
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters)[bound:]
    if not params or not _is_sub(hints.get(params[0]), AgentCommand):
        which = "first parameter" if not bound else f"parameter {bound + 1} (the command)"
        raise TypeError(f"{fn.__qualname__}: {which} must be annotated with an "
                        "AgentCommand model")
    takes_task = len(params) > 1 and params[1] == "task"
    reply = hints.get("return")
    if reply is None or reply is type(None):
        reply = AgentReply
    if not _is_sub(reply, AgentReply):
        raise TypeError(f"{fn.__qualname__}: return annotation must be an AgentReply model")
    return hints[params[0]], reply, takes_task


def _is_sub(t: object, base: type) -> bool:
    return isinstance(t, type) and issubclass(t, base)
