"""Flows: steps with undos. If a step fails, the undos of the steps done run in reverse,
and the error names the step, so a failed CreateVmInstance says where it failed and
leaves no IP, volume or row behind."""

from __future__ import annotations

import logging
from collections.abc import Callable

from coordinator.api import ApiError
from coordinator.jobs import Deadline

log = logging.getLogger(__name__)


class Flow:
    def __init__(self, name: str, deadline: Deadline | None = None):
        self.name = name
        self.deadline = deadline
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def step(self, name: str, do: Callable[[], object],
             undo: Callable[[], None] | None = None) -> object:
        """Run ``do``; remember ``undo`` for a later failure."""
        if self.deadline is not None:
            self.deadline.check(f"{self.name}: {name}")
        try:
            result = do()
        except Exception as exc:
            self.rollback()
            message = str(exc) if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            raise ApiError(f"{self.name} failed at step '{name}': {message}") from exc
        if undo is not None:
            self._undo.append((name, undo))
        return result

    def rollback(self) -> None:
        while self._undo:
            name, undo = self._undo.pop()
            try:
                undo()
                log.info("%s: undid %s", self.name, name)
            except Exception:
                log.exception("%s: undo of %s failed (left for garbage collection)",
                              self.name, name)
