"""Named locks: serialise work per resource (a namespace, a VM, an image).

Agents run as one process (one gunicorn worker, many threads) precisely so that these
in-process locks are authoritative for the whole host. Locks are created on demand and
dropped when nobody holds or waits for them, so per-uuid names do not accumulate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class NamedLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, *names: str, timeout: float = -1) -> Iterator[None]:
        """Hold every lock in ``names`` (taken in sorted order, so no two callers deadlock).

        Raises TimeoutError naming the lock if ``timeout`` seconds pass first.
        """
        ordered = sorted(set(names))
        taken: list[str] = []
        try:
            for name in ordered:
                lock = self._ref(name)
                if not lock.acquire(timeout=timeout):
                    self._unref(name)
                    raise TimeoutError(f"lock {name!r} is busy (waited {timeout}s)")
                taken.append(name)
            yield
        finally:
            for name in reversed(taken):
                self._locks[name][0].release()
                self._unref(name)

    def held(self) -> list[str]:
        """Names currently held or waited for (for diagnostics)."""
        with self._guard:
            return sorted(self._locks)

    def _ref(self, name: str) -> threading.Lock:
        with self._guard:
            lock, n = self._locks.get(name, (threading.Lock(), 0))
            self._locks[name] = (lock, n + 1)
            return lock

    def _unref(self, name: str) -> None:
        with self._guard:
            lock, n = self._locks[name]
            if n == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, n - 1)
