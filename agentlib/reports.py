"""Agent -> coordinator reports, queued in order and retried until delivered.

A report (a VM stopped on its own, progress, "reconnect me") must not be lost because
the coordinator restarts; nor may two reports about one VM arrive in the wrong order.
So one thread sends the queue head until it is delivered, then the next. The queue is
bounded; when full, the oldest report is dropped with an error in the log (the
coordinator's periodic sync — e.g. ``/vm/vmsync`` — repairs what a dropped report said).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from agentlib import delivery

log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, max_queue: int = 10000, max_delay: float = 5.0):
        self.max_queue = max_queue
        self.max_delay = max_delay
        self._url: str | None = None
        self._queue: deque[tuple[str, dict]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="reporter", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str | None:
        return self._url

    @url.setter
    def url(self, value: str | None) -> None:
        """The coordinator's ``sendCommandUrl``; reports wait in the queue until it is set."""
        with self._cond:
            self._url = value
            self._cond.notify_all()

    def send(self, commandpath: str, body: dict) -> None:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                dropped = self._queue.popleft()
                log.error("report queue full (%d): dropped oldest report %s",
                          self.max_queue, dropped[0])
            self._queue.append((commandpath, body))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _loop(self) -> None:
        backoff = delivery.Backoff(maximum=self.max_delay)
        while True:
            with self._cond:
                while not self._closed and not (self._queue and self._url):
                    self._cond.wait()
                if self._closed:
                    return
                commandpath, body = self._queue[0]
                url = self._url
            try:
                delivery.post_once(url, body, {"commandpath": commandpath})
            except delivery.FinalFailure as exc:
                log.error("report %s refused, dropped: %s", commandpath, exc)
            except Exception as exc:  # noqa: BLE001 - any transport failure: retry in order
                delay = backoff()
                log.warning("report %s to %s failed (retry in %.2fs): %s",
                            commandpath, url, delay, exc)
                with self._cond:
                    self._cond.wait(delay)
                continue
            backoff = delivery.Backoff(maximum=self.max_delay)
            with self._cond:
                if self._queue and self._queue[0][1] is body:
                    self._queue.popleft()
