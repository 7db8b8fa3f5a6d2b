"""Deliver JSON bodies to the coordinator, retrying with exponential backoff.

Shared by async-command callbacks (``taskuuid`` header, :class:`Deliverer`) and reports
(``commandpath`` header). A connection error or a 5xx is retried (the coordinator may be
restarting); a 4xx is final, because sending the same body again cannot fix it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from agentlib import logs

log = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = (3.05, 10.0)  # seconds to connect, then to read the answer


class Backoff:
    """Delays 0.05, 0.1, 0.2 ... capped at ``maximum`` seconds."""

    def __init__(self, first: float = 0.05, maximum: float = 5.0):
        self.first, self.maximum, self.next = first, maximum, first

    def __call__(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.maximum)
        return delay


class FinalFailure(Exception):
    """The receiver refused the body (4xx): retrying cannot help."""


_local = threading.local()


def thread_session() -> requests.Session:
    """One keep-alive session per thread: a callback on loopback then costs ~1 ms."""
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def post_once(url: str, body: dict, headers: dict[str, str],
              timeout: float | tuple[float, float] = 10.0) -> None:
    """POST once; raise on any failure (FinalFailure for a 4xx)."""
    resp = thread_session().post(url, json=body, headers=headers, timeout=timeout)
    if 400 <= resp.status_code < 500:
        raise FinalFailure(f"{url} answered {resp.status_code}: {resp.text[:200]}")
    resp.raise_for_status()


@dataclass
class _Item:
    url: str
    body: dict
    headers: dict[str, str]
    what: str
    task: str  # the taskuuid its log lines carry
    deadline: float
    attempts: int = 0


@dataclass
class _Lane:
    """The pending bodies for one destination, delivered in order, one attempt at a time."""

    key: str
    items: deque[_Item] = field(default_factory=deque)
    backoff: Backoff = field(default_factory=Backoff)
    trusted: bool = False  # delivered to recently and its last attempt succeeded
    queued: bool = False  # in a heap of due lanes
    busy: bool = False  # a worker is attempting its head


def destination(url: str) -> str:
    """``scheme://host:port`` of ``url``: what a lane is for."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname}:{port}"


class Deliverer:
    """Delivers bodies with retries, one lane per destination, so that an unreachable URL
    cannot delay the bodies for a reachable one.

    A worker makes one attempt and never sleeps: a failed lane is rescheduled after its
    backoff and yields the worker. A lane is *trusted* when its destination took a body in
    the last ``REMEMBERED`` destinations and its last attempt did not fail: trusted lanes
    go first, and the others (new, failing or hanging destinations) may hold at most all
    workers but one, so the coordinator's callbacks always have a worker. One blocking
    thread per delivery let 4 callbacks to names that do not resolve hold every worker
    for the whole retry window (300 s).
    """

    REMEMBERED = 64

    def __init__(self, workers: int, retry_seconds: float):
        self._retry_seconds = retry_seconds
        self._untrusted_limit = max(1, workers - 1)
        self._cond = threading.Condition()
        self._lanes: dict[str, _Lane] = {}
        self._trusted: list[tuple[float, int, _Lane]] = []  # due time, order, lane
        self._untrusted: list[tuple[float, int, _Lane]] = []
        self._untrusted_busy = 0
        self._delivered_to: OrderedDict[str, None] = OrderedDict()
        self._seq = itertools.count()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"callback-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self, url: str, body: dict, headers: dict[str, str], what: str, task: str = "-"
    ) -> None:
        """Queue ``body`` for ``url``, to be tried for ``retry_seconds``."""
        item = _Item(url, body, headers, what, task, time.monotonic() + self._retry_seconds)
        key = destination(url)
        with self._cond:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(key, trusted=key in self._delivered_to)
            lane.items.append(item)
            if not lane.busy and not lane.queued:
                self._schedule(lane, time.monotonic())

    def close(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for pending bodies, then stop the workers."""
        deadline = time.monotonic() + grace
        with self._cond:
            while self._lanes and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            if self._lanes:
                log.warning("closing with %d undelivered bodies",
                            sum(len(lane.items) for lane in self._lanes.values()))
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _schedule(self, lane: _Lane, at: float) -> None:
        """Make ``lane`` due at time ``at``; holds _cond."""
        lane.queued = True
        heap = self._trusted if lane.trusted else self._untrusted
        heapq.heappush(heap, (at, next(self._seq), lane))
        self._cond.notify_all()

    def _next(self) -> _Lane | None:
        """The next lane due, waiting until one is; None once stopping. Holds _cond."""
        while not self._stopping:
            now = time.monotonic()
            heaps = [self._trusted]
            if self._untrusted_busy < self._untrusted_limit:
                heaps.append(self._untrusted)
            for heap in heaps:
                if heap and heap[0][0] <= now:
                    lane = heapq.heappop(heap)[2]
                    lane.queued, lane.busy = False, True
                    self._untrusted_busy += not lane.trusted
                    return lane
            tops = [heap[0][0] for heap in heaps if heap]
            self._cond.wait(min(tops) - now if tops else None)
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                lane = self._next()
                if lane is None:
                    return
                item, untrusted = lane.items[0], not lane.trusted
            item.attempts += 1
            with logs.task_context(item.task):
                error = self._attempt(item)
            with self._cond:
                self._untrusted_busy -= untrusted
                lane.busy = False
                now = time.monotonic()
                if error is None:
                    lane.items.popleft()
                    lane.backoff, delay = Backoff(), 0.0
                    self._remember(lane)
                else:
                    lane.trusted, delay = False, lane.backoff()
                    self._expire(lane, now + delay, error)
                if lane.items:
                    self._schedule(lane, now + delay)
                else:
                    del self._lanes[lane.key]
                    self._cond.notify_all()

    def _remember(self, lane: _Lane) -> None:
        """``lane``'s destination took a body: trust it. Holds _cond."""
        lane.trusted = True
        self._delivered_to[lane.key] = None
        self._delivered_to.move_to_end(lane.key)
        while len(self._delivered_to) > self.REMEMBERED:
            self._delivered_to.popitem(last=False)

    def _attempt(self, item: _Item) -> str | None:
        """One POST; None when it is done with (delivered or refused), else the error."""
        try:
            post_once(item.url, item.body, item.headers, timeout=ATTEMPT_TIMEOUT)
        except FinalFailure as exc:
            log.error("%s not delivered, refused: %s", item.what, exc)
        except requests.RequestException as exc:
            return str(exc)
        except Exception:  # a worker must outlive any body: log it and drop that body
            log.exception("%s to %s: cannot be sent", item.what, item.url)
        else:
            if item.attempts > 1:
                log.info("%s delivered to %s after %d attempts", item.what, item.url,
                         item.attempts)
        return None

    def _expire(self, lane: _Lane, next_try: float, error: str) -> None:
        """Give up the bodies that would be past their deadline at ``next_try``."""
        for item in [i for i in lane.items if i.deadline < next_try]:
            lane.items.remove(item)
            with logs.task_context(item.task):
                log.error("%s not delivered to %s: gave up after %d attempts over %.0fs: %s",
                          item.what, item.url, item.attempts, self._retry_seconds, error)
        if lane.items and lane.items[0].attempts:
            head = lane.items[0]
            with logs.task_context(head.task):
                log.warning("%s to %s failed (attempt %d, retry in %.2fs): %s", head.what,
                            head.url, head.attempts, next_try - time.monotonic(), error)
