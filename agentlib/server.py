"""Run an agent: gunicorn (one worker, N threads) or the plain debug server.

One worker process, on purpose: the agent's named locks, task table and reporter are
in-process state that must be authoritative for the whole host. The app is built after
gunicorn forks, so no thread is lost across the fork. The worker is gthread reading
each request whole before a thread sees it (:mod:`agentlib.requestbuffer`): slow
clients cannot occupy the threads, and must send a request within ``request_timeout``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from agentlib import config as cfgmod
from agentlib import logs
from agentlib.agent import MAX_BODY_BYTES, Agent
from agentlib.config import AgentConfig

log = logging.getLogger(__name__)


def main(
    name: str,
    build: Callable[[AgentConfig], Agent | Any],
    config_cls: type[AgentConfig] = AgentConfig,
    default_port: int = 0,
    description: str = "",
    argv: list[str] | None = None,
) -> None:
    """Parse settings, set up logging and serve ``build(cfg).app`` until stopped."""
    cfg = cfgmod.load(config_cls, name, argv, default_port=default_port,
                      description=description)
    logs.setup(cfg.log_level, cfg.log_file)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s starting on %s:%d (data dir %s, %s)", name, cfg.host, cfg.port, cfg.data_dir,
             "foreground debug server" if cfg.foreground else f"gunicorn, {cfg.threads} threads")
    if cfg.foreground:
        build_app(build, cfg).run(host=cfg.host, port=cfg.port, threaded=True,
                                  use_reloader=False)
    else:
        serve_gunicorn(lambda: build_app(build, cfg), cfg.host, cfg.port, cfg.threads,
                       cfg.request_timeout)


def build_app(build: Callable[[AgentConfig], Agent | Any], cfg: AgentConfig):
    """``build(cfg).app``, then :func:`tune_gc`."""
    app = build(cfg).app
    tune_gc()
    return app


def tune_gc() -> None:
    """Keep the cyclic GC off the hot path of large commands.

    A 10,000-entry DHCP batch makes ~200k short-lived objects while its JSON is parsed
    and validated; with CPython's default thresholds that triggers repeated full
    collections over everything the agent imported, and parsing took 86 ms instead of
    33. The objects alive after start-up are moved out of the collector's sight
    (``gc.freeze``) and young collections run every 100k allocations, not 700.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def serve_gunicorn(app_factory: Callable, host: str, port: int, threads: int,
                   request_timeout: float = 10.0) -> None:
    from gunicorn.app.base import BaseApplication

    from agentlib.requestbuffer import BufferingWorker

    worker = type("AgentWorker", (BufferingWorker,), {
        "request_timeout": request_timeout, "max_body": MAX_BODY_BYTES})

    class _App(BaseApplication):
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": 1,
                "worker_class": worker,
                "threads": threads,
                "timeout": 120,
                "graceful_timeout": 10,
                "keepalive": 30,
                "accesslog": None,
                "loglevel": "warning",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return app_factory()

    _App().run()
