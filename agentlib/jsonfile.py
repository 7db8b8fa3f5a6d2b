"""Small JSON state files, written atomically so a crash never leaves half a file.

Agents keep what they must re-adopt after a restart this way (the identity from
connect); devcluster keeps its pids and plans the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def write(path: Path, value: Any) -> None:
    """Write to a temporary file, fsync it, and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
