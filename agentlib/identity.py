"""What ``connect`` told an agent, kept in its data dir so a restarted agent still knows
which host or storage it is and where to send reports."""

from __future__ import annotations

import threading
from pathlib import Path

from agentlib import jsonfile


class Identity:
    def __init__(self, data_dir: Path, name: str = "identity.json"):
        self.path = Path(data_dir) / name
        self._lock = threading.Lock()
        self._values: dict = jsonfile.read(self.path, {})

    def get(self, key: str, default=None):
        with self._lock:
            return self._values.get(key, default)

    def update(self, **values) -> None:
        """Merge ``values`` and write the file atomically."""
        with self._lock:
            self._values.update(values)
            jsonfile.write(self.path, self._values)
