"""Long APIs run as jobs: persisted, bounded by a deadline, waited for or polled.

A job's row (``job`` table) says what was asked, its state (Running, Succeeded, Failed,
Interrupted) and its reply, so ``GET /api/result/<uuid>`` answers after the caller
went away and after a coordinator restart (a job that was running then is
Interrupted: its flow's undo did not run, which the error says).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from coordinator.api import ApiError
from coordinator.db import Database, new_uuid, now

log = logging.getLogger(__name__)


class Deadline:
    """The time a job has left; flows check it between steps and give agent calls
    no more than what is left."""

    def __init__(self, seconds: float, what: str = "the API"):
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self, step: str = "") -> None:
        if time.monotonic() >= self.end:
            where = f" at step {step}" if step else ""
            raise ApiError(f"{self.what} timed out after {self.seconds:.0f}s{where} "
                           "(global config apiTimeout)")


class Jobs:
    def __init__(self, db: Database, workers: int = 32):
        self.db = db
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="job")
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        n = db.update_where("job", "state = 'Running'", (), state="Interrupted",
                            error="the coordinator restarted while this job ran",
                            finished=now())
        if n:
            log.warning("%d jobs were running when the coordinator stopped: Interrupted", n)

    def submit(self, api: str, request: dict, timeout: float,
               work: Callable[[Deadline], dict]) -> str:
        uuid = new_uuid()
        self.db.insert("job", {"uuid": uuid, "api": api, "state": "Running",
                               "request": request, "timeout": timeout})
        event = threading.Event()
        with self._lock:
            self._done[uuid] = event

        def run() -> None:
            try:
                reply = work(Deadline(timeout, api))
                self.db.update("job", uuid, state="Succeeded", result=reply, finished=now())
            except ApiError as exc:
                log.warning("job %s (%s) failed: %s", uuid, api, exc)
                self.db.update("job", uuid, state="Failed", error=str(exc), finished=now())
            except Exception as exc:
                log.exception("job %s (%s) broke", uuid, api)
                self.db.update("job", uuid, state="Failed", finished=now(),
                               error=f"internal error: {type(exc).__name__}: {exc} "
                                     "(the coordinator log has the details)")
            finally:
                event.set()
                with self._lock:
                    self._done.pop(uuid, None)

        self._pool.submit(run)
        return uuid

    def wait(self, uuid: str, timeout: float) -> dict:
        """The job's row once it ended, or as it is when ``timeout`` passed."""
        with self._lock:
            event = self._done.get(uuid)
        if event is not None:
            event.wait(timeout)
        return self.db.get("job", uuid)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
