"""What each download stored (a digest of its URL, and its facts), kept in the data dir:
a repeated download of the same URL to the same path answers these facts instead of
fetching again, and a different URL for an occupied path is refused. The URL itself is
not kept: it may carry a password."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from agentlib import jsonfile


class ImageRecords:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def get(self, install_path: Path) -> dict | None:
        """``{"urlDigest", "urlShown", "facts"}`` of the image at ``install_path``."""
        with self._lock:
            return jsonfile.read(self.path, {}).get(str(install_path))

    def put(self, install_path: Path, url: str, shown: str, facts: dict) -> None:
        with self._lock:
            records = jsonfile.read(self.path, {})
            records[str(install_path)] = {"urlDigest": digest(url), "urlShown": shown,
                                          "facts": facts}
            jsonfile.write(self.path, records)

    def remove(self, install_path: Path) -> None:
        with self._lock:
            records = jsonfile.read(self.path, {})
            if records.pop(str(install_path), None) is not None:
                jsonfile.write(self.path, records)


def digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()
