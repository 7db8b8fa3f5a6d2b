"""Async commands: accept at once, run in a bounded pool, call back with the reply.

Long commands (host scans, image transfers, migrations, volume copies: registered with
``long=True``) run on a pool of their own, so that a burst of them cannot delay short
ones: eight 60 s scans on one shared pool of 8 had a ``/vm/destroy`` wait a minute.

A ``taskuuid`` is run at most once while it is queued or running; when it repeats after
it finished (the coordinator lost our first answer), the stored reply is delivered again
instead of doing the work twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from agentlib import delivery, logs
from agentlib.errors import AgentError, Cancelled

log = logging.getLogger(__name__)


@dataclass
class Task:
    """What a running async handler may use: its identity and its cancellation flag."""

    uuid: str
    path: str
    callback_url: str
    cancellable: bool
    accepted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _future: Future | None = field(default=None, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Call between steps of long work; raises :class:`Cancelled` once cancelled."""
        if self._cancel.is_set():
            raise Cancelled(f"task {self.uuid} ({self.path}) was cancelled")


class TaskRunner:
    def __init__(self, workers: int, retry_seconds: float, keep_finished: int = 1000,
                 long_workers: int = 4):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="task")
        self._long_pool = ThreadPoolExecutor(long_workers, thread_name_prefix="longtask")
        self._long_paths: set[str] = set()
        self._deliverer = delivery.Deliverer(4, retry_seconds)
        self._keep = keep_finished
        self._lock = threading.Lock()
        self._active: dict[str, Task] = {}
        self._finished: OrderedDict[str, dict] = OrderedDict()

    def run_long(self, path: str) -> None:
        """Run the commands of ``path`` on the long-task pool."""
        self._long_paths.add(path)

    def submit(
        self, task: Task, work: Callable[[Task], dict]
    ) -> str:
        """Queue ``work``; returns "accepted", "duplicate" (already queued/running) or
        "redelivered" (already finished: its stored reply is sent again)."""
        with self._lock:
            if task.uuid in self._active:
                log.info("task %s (%s) is already running: not run twice", task.uuid, task.path)
                return "duplicate"
            if task.uuid in self._finished:
                reply = self._finished[task.uuid]
                self._deliver(task, reply)
                return "redelivered"
            self._active[task.uuid] = task
            pool = self._long_pool if task.path in self._long_paths else self._pool
            task._future = pool.submit(self._run, task, work)
        return "accepted"

    def cancel(self, uuid: str) -> str:
        """Cancel a queued task, or flag a running one whose handler supports it."""
        with self._lock:
            task = self._active.get(uuid)
            if task is None:
                raise AgentError(f"no queued or running task {uuid}")
            if task._future is not None and task._future.cancel():
                self._active.pop(uuid)
                self._finish(task, _error_reply(f"task {uuid} ({task.path}) was cancelled "
                                                "before it started"))
                return "cancelled before it started"
            if not task.cancellable:
                raise AgentError(f"task {uuid} ({task.path}) is running and cannot be cancelled")
            task._cancel.set()
            return "cancellation requested"

    def active(self) -> list[Task]:
        with self._lock:
            return list(self._active.values())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._long_pool.shutdown(wait=False, cancel_futures=True)
        self._deliverer.close(grace=5.0)

    def _run(self, task: Task, work: Callable[[Task], dict]) -> None:
        with logs.task_context(task.uuid):
            task.started_at = time.monotonic()
            reply = work(task)
            log.info("%s finished: queued %.3fs, ran %.3fs: success=%s", task.path,
                     task.started_at - task.accepted_at, time.monotonic() - task.started_at,
                     reply.get("success"))
            with self._lock:
                self._active.pop(task.uuid, None)
                self._finish(task, reply)

    def _finish(self, task: Task, reply: dict) -> None:
        """Remember the reply (for a repeated taskuuid) and deliver it; holds _lock."""
        self._finished[task.uuid] = reply
        while len(self._finished) > self._keep:
            self._finished.popitem(last=False)
        self._deliver(task, reply)

    def _deliver(self, task: Task, reply: dict) -> None:
        self._deliverer.submit(task.callback_url, reply, {"taskuuid": task.uuid},
                               f"callback for {task.path}", task.uuid)


def _error_reply(message: str) -> dict:
    return {"success": False, "error": message}
