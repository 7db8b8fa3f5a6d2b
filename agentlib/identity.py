"""What ``connect`` told an agent, kept in its data dir so a restarted agent still knows
which host or storage it is and where to send reports."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class Identity:
    def __init__(self, data_dir: Path, name: str = "identity.json"):
        self.path = Path(data_dir) / name
        self._lock = threading.Lock()
        self._values: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, default=None):
        with self._lock:
            return self._values.get(key, default)

    def update(self, **values) -> None:
        """Merge ``values`` and write the file atomically (write + fsync + rename)."""
        with self._lock:
            self._values.update(values)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump(self._values, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)
