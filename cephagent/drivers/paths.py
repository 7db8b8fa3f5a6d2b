"""``ceph://<pool>/<image>[@<snapshot>]``: the install paths of RBD images and snapshots."""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
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
        return cls(*m.groups())

    @property
    def image_path(self) -> RbdPath:
        return RbdPath(self.pool, self.image)

    def __str__(self) -> str:
        return f"ceph://{self.pool}/{self.image}" + (f"@{self.snap}" if self.snap else "")
