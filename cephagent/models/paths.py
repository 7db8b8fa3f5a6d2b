"""``ceph://<pool>/<image>[@<snapshot>]``: the install paths of RBD images and snapshots.

Here, not in ``drivers``, because the command models validate every path field with it
and the coordinator imports the models (never a driver)."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
TMP_SUFFIX = ".zfleet-tmp"
"""Images being written (copies, downloads) carry this suffix until complete; the name is
reserved, so no command can name such an image (and ``init`` may sweep them)."""
_PATH = re.compile(rf"ceph://({NAME})/({NAME})(?:@({NAME}))?")


class BadPath(ValueError):
    pass


@dataclass(frozen=True)
class RbdPath:
    pool: str
    image: str
    snap: str | None = None

    @classmethod
    def parse(cls, path: str) -> RbdPath:
        m = _PATH.fullmatch(path)
        if not m or ".." in path:
            raise BadPath(f"not a valid ceph://<pool>/<image>[@<snapshot>] path: {path!r} "
                          "(names: letters, digits, '_', '.', '-'; no '..')")
        if m.group(2).endswith(TMP_SUFFIX):
            raise BadPath(f"image names ending in {TMP_SUFFIX} are reserved: {path!r}")
        return cls(*m.groups())

    @property
    def image_path(self) -> RbdPath:
        return RbdPath(self.pool, self.image)

    def __str__(self) -> str:
        return f"ceph://{self.pool}/{self.image}" + (f"@{self.snap}" if self.snap else "")
