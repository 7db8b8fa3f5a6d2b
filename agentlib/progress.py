"""Throttled progress for long work (image downloads run for hours).

A :class:`Progress` counts bytes and, at most once per ``every`` seconds and once at the
end, sends ``/progress/report`` to the coordinator and logs a line; a
:class:`ProgressBoard` keeps the latest snapshot per resource so an agent can answer a
progress query (e.g. cephagent ``/ceph/backupstorage/image/progress``) without the
coordinator having to keep the reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TypeVar

from agentlib.errors import AgentError
from agentlib.models import AgentReply
from agentlib.reports import Reporter

log = logging.getLogger(__name__)

REPORT_PATH = "/progress/report"


class Progress:
    """Counts bytes; at most once per `every` seconds (and at the end) sends
    /progress/report through the agent's Reporter with body
    {"taskUuid", "resourceUuid", "progress": <int percent or null>, "bytesDone", "bytesTotal",
     "stage"}, logs a line, and keeps the latest state so an agent can answer a
    progress query by resource."""

    def __init__(self, reporter: Reporter | None, resource_uuid: str, total: int | None, *,
                 task_uuid: str = "", stage: str = "download", every: float = 1.0):
        self.reporter = reporter
        self.resource_uuid = resource_uuid
        self.total = total
        self.task_uuid = task_uuid
        self.stage = stage
        self.every = every
        self.bytes_done = 0
        self.finished = False
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._started = self._last

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes_done += n
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
        self._emit()

    def set_stage(self, stage: str) -> None:
        """Name the next step (e.g. "verify" after "download") and report it at once."""
        with self._lock:
            self.stage = stage
            self._last = time.monotonic()
        self._emit()

    def done(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.finished = True
            if self.total is None:
                self.total = self.bytes_done
        self._emit()

    def snapshot(self) -> dict:
        with self._lock:
            if self.finished:
                percent: int | None = 100
            elif self.total:
                percent = min(99, self.bytes_done * 100 // self.total)
            else:
                percent = None
            return {"taskUuid": self.task_uuid, "resourceUuid": self.resource_uuid,
                    "progress": percent, "bytesDone": self.bytes_done,
                    "bytesTotal": self.total, "stage": self.stage}

    def _emit(self) -> None:
        body = self.snapshot()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        log.info("%s %s: %s%% (%d of %s bytes, %.1f MiB/s)", self.stage, self.resource_uuid,
                 body["progress"] if body["progress"] is not None else "?",
                 body["bytesDone"], body["bytesTotal"] if body["bytesTotal"] is not None
                 else "?", body["bytesDone"] / elapsed / (1 << 20))
        if self.reporter is not None:
            self.reporter.send(REPORT_PATH, body)


class ProgressReply(AgentReply):
    """An agent's answer to "how far is it?" for one resource."""

    progress: int | None = None  # percent, null while the size is unknown
    bytes_done: int = 0
    bytes_total: int | None = None
    stage: str = ""


R = TypeVar("R", bound=ProgressReply)


class ProgressBoard:
    """Per-agent registry: the latest :class:`Progress` by resource uuid (thread-safe).

    Finished entries stay answerable (a query right after the end sees 100%) up to
    ``keep`` of them; the oldest finished ones are forgotten first.
    """

    def __init__(self, reporter: Reporter | None = None, keep: int = 1000):
        self.reporter = reporter
        self.keep = keep
        self._lock = threading.Lock()
        self._by_resource: OrderedDict[str, Progress] = OrderedDict()

    def start(self, resource_uuid: str, total: int | None, *, task_uuid: str = "",
              stage: str = "download", every: float = 1.0) -> Progress:
        progress = Progress(self.reporter, resource_uuid, total, task_uuid=task_uuid,
                            stage=stage, every=every)
        with self._lock:
            self._by_resource.pop(resource_uuid, None)
            self._by_resource[resource_uuid] = progress
            finished = [k for k, p in self._by_resource.items() if p.finished]
            for key in finished[: max(0, len(self._by_resource) - self.keep)]:
                del self._by_resource[key]
        return progress

    def get(self, resource_uuid: str) -> dict | None:
        with self._lock:
            progress = self._by_resource.get(resource_uuid)
        return progress.snapshot() if progress is not None else None

    def reply(self, resource_uuid: str, reply: type[R] = ProgressReply,
              field: str = "imageUuid") -> R:
        """The latest progress of ``resource_uuid`` as a reply; an error naming ``field``
        if this agent has seen no such work since it started."""
        snap = self.get(resource_uuid)
        if snap is None:
            raise AgentError(f"{field}: no download of {resource_uuid} is known to this "
                             "agent (since it started)")
        return reply(progress=snap["progress"], bytes_done=snap["bytesDone"],
                     bytes_total=snap["bytesTotal"], stage=snap["stage"])
