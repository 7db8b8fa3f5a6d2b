"""Deliver JSON bodies to the coordinator, retrying with exponential backoff.

Shared by async-command callbacks (``taskuuid`` header) and reports (``commandpath``
header). A connection error or a 5xx is retried (the coordinator may be restarting);
a 4xx is final, because sending the same body again cannot fix it.
"""

from __future__ import annotations

import logging
import threading
import time

import requests

log = logging.getLogger(__name__)


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


def post_once(url: str, body: dict, headers: dict[str, str], timeout: float = 10.0) -> None:
    """POST once; raise on any failure (FinalFailure for a 4xx)."""
    resp = thread_session().post(url, json=body, headers=headers, timeout=timeout)
    if 400 <= resp.status_code < 500:
        raise FinalFailure(f"{url} answered {resp.status_code}: {resp.text[:200]}")
    resp.raise_for_status()


def post_with_retry(
    url: str, body: dict, headers: dict[str, str], retry_seconds: float, what: str
) -> bool:
    """POST until delivered or ``retry_seconds`` pass; True if delivered."""
    deadline = time.monotonic() + retry_seconds
    backoff = Backoff()
    attempt = 0
    while True:
        attempt += 1
        try:
            post_once(url, body, headers)
            if attempt > 1:
                log.info("%s delivered to %s after %d attempts", what, url, attempt)
            return True
        except FinalFailure as exc:
            log.error("%s not delivered, refused: %s", what, exc)
            return False
        except requests.RequestException as exc:
            delay = backoff()
            if time.monotonic() + delay > deadline:
                log.error("%s not delivered to %s: gave up after %d attempts over %.0fs: %s",
                          what, url, attempt, retry_seconds, exc)
                return False
            log.warning("%s to %s failed (attempt %d, retry in %.2fs): %s",
                        what, url, attempt, delay, exc)
            time.sleep(delay)
