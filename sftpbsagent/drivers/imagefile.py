"""What a downloaded file is, by ``qemu-img info``: its format and virtual size.

A backup storage hands its images to hypervisors, so an image with a backing file is
refused (it would make a host read a path the image names: ``/etc/shadow`` as a
backing file is a known trick), and a "raw" image that is really an error page or
other text is refused too: qemu-img calls anything it does not recognise raw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agentlib import shell
from agentlib.errors import AgentError

ACCEPTED = ("qcow2", "raw")
_PROBE = 4096


class NotAnImage(AgentError):
    """The file is not a disk image this storage serves."""


@dataclass(frozen=True)
class ImageFacts:
    format: str
    virtual_size: int


def inspect(path: Path, what: str) -> ImageFacts:
    """Format and virtual size of ``path``; :class:`NotAnImage` unless it is a qcow2
    without backing file or a raw disk/ISO. ``what`` names the source in errors."""
    try:
        res = shell.run(["qemu-img", "info", "--output=json", "-U", str(path)], timeout=120)
    except shell.CommandFailed as exc:
        raise NotAnImage(f"{what} is not a disk image qemu-img can read: {exc}") from None
    info = json.loads(res.stdout)
    fmt = info.get("format", "")
    if fmt not in ACCEPTED:
        raise NotAnImage(f"{what} is a {fmt!r} image: only {', '.join(ACCEPTED)} are stored")
    if info.get("backing-filename"):
        raise NotAnImage(f"{what} has a backing file ({info['backing-filename']}): only "
                         "standalone images are stored (qemu-img convert it first)")
    if fmt == "raw":
        _refuse_text(path, what)
    return ImageFacts(fmt, int(info["virtual-size"]))


def _refuse_text(path: Path, what: str) -> None:
    with open(path, "rb") as f:
        head = f.read(_PROBE)
    size = path.stat().st_size
    if size == 0:
        raise NotAnImage(f"{what} is empty")
    if size % 512:
        raise NotAnImage(f"{what} is not a disk image: {size} bytes is not a whole number "
                         "of 512-byte sectors (an error page or a text file?)")
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        raise NotAnImage(f"{what} is text, not a disk image: {head[:60]!r}...")
