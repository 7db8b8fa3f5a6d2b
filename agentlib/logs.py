"""Logging setup: every line names the agent and, inside a task, its taskuuid.

The taskuuid rides in a context variable, so a grep for one taskuuid shows the whole
life of a command across the HTTP thread, the worker and the callback delivery.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from contextlib import contextmanager

current_task: contextvars.ContextVar[str] = contextvars.ContextVar("taskuuid", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [task=%(taskuuid)s] %(message)s"


class _TaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.taskuuid = current_task.get()
        return True


def setup(level: str = "INFO", log_file: str | None = None) -> None:
    """Configure the root logger once (idempotent: replaces our previous handler)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_zfleet", False):
            root.removeHandler(h)
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler._zfleet = True  # type: ignore[attr-defined]
    handler.addFilter(_TaskFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@contextmanager
def task_context(taskuuid: str):
    token = current_task.set(taskuuid)
    try:
        yield
    finally:
        current_task.reset(token)
