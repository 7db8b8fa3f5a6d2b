"""Download an image into the backup storage: stream, hash, inspect, rename into place.

The bytes go once from the source to a temporary file next to the install path, hashed
(md5, as ZStack reports it) and counted on the way; ``qemu-img info`` then says what
they are, and only a complete, accepted image is renamed to its install path, read-only
(0444). A failure, a cancel or a full disk removes the temporary file and any
directory made for it: nothing is left behind.

Sources: http, https and file URLs through :mod:`agentlib.urlfetch`;
``sftp://user@host[:port]/path`` over ssh with the agent's own key (the source host
must authorize the key ``/sftpbackupstorage/sshkey`` returns).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agentlib import urlfetch
from agentlib.errors import AgentError
from agentlib.hashedwrite import fill_hashed, write_hashed
from agentlib.progress import Progress
from agentlib.ssh import Remote, SshError, SshIdentity
from sftpbsagent.drivers import imagefile
from sftpbsagent.drivers.store import TMP_SUFFIX, ImageStore, StoreError

log = logging.getLogger(__name__)

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")


class DownloadError(AgentError):
    """The download failed; nothing was left in the storage."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    md5: str
    actual_size: int
    virtual_size: int
    format: str


@dataclass(frozen=True)
class SftpSource:
    user: str
    host: str
    port: int
    path: str


def parse_sftp(url: str) -> SftpSource:
    """``sftp://user@host[:port]/path``, each part checked (they reach ssh's argv)."""
    shown = urlfetch.redact(url)
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise DownloadError(f"URL {shown!r} contains control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 22
    except ValueError as exc:
        raise DownloadError(f"{shown}: malformed sftp URL: {exc}") from None
    user, host, path = parts.username or "root", parts.hostname or "", unquote(parts.path)
    if parts.password is not None:
        raise DownloadError(f"{shown}: passwords are not used: sftp URLs log in with the "
                            "agent's key (/sftpbackupstorage/sshkey)")
    if not _USER.fullmatch(user):
        raise DownloadError(f"{shown}: not a valid login name: {user!r}")
    if not _HOST.fullmatch(host):
        raise DownloadError(f"{shown}: not a valid host: {host!r}")
    if not path.startswith("/") or "/../" in path + "/":
        raise DownloadError(f"{shown}: the path must be absolute, without '..'")
    return SftpSource(user, host, port, path)


def check_url(url: str, file_roots: Sequence[Path]) -> None:
    """Refuse a URL this agent will not fetch, before anything is touched."""
    try:
        if urlsplit(url).scheme.lower() == "sftp":
            parse_sftp(url)
        else:
            urlfetch.check_url(url, file_roots)
    except (DownloadError, urlfetch.FetchError, ValueError) as exc:
        raise DownloadError(f"url: {exc}") from None


class Downloader:
    def __init__(self, store: ImageStore, identity: SshIdentity, file_roots: Sequence[Path],
                 timeout: float = 60.0):
        self.store = store
        self.identity = identity
        self.file_roots = list(file_roots)
        self.timeout = timeout
        self.in_flight: set[Path] = set()
        """Temporary files being written (not garbage)."""

    def download(self, url: str, install_path: str | Path, progress: Progress,
                 check_cancelled: Callable[[], None] = lambda: None) -> Downloaded:
        """Fetch ``url`` to ``install_path``; see the module docstring."""
        check_url(url, self.file_roots)
        target = self.store.resolve(install_path)
        shown = urlfetch.redact(url)
        if os.path.lexists(target):
            raise StoreError(f"{target} already exists")
        made = self.store.make_parents(target.parent)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
        self.in_flight.add(tmp)
        started = time.monotonic()
        try:
            md5, size = self._fetch(url, tmp, progress, check_cancelled)
            progress.set_stage("inspect")
            facts = imagefile.inspect(tmp, shown)
            os.chmod(tmp, 0o444)
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            for d in reversed(made):
                self.store.prune(d)
            raise
        finally:
            self.in_flight.discard(tmp)
        progress.done()
        seconds = time.monotonic() - started
        log.info("downloaded %s to %s: %d bytes, %s, md5 %s, in %.1fs (%.1f MiB/s)", shown,
                 target, size, facts.format, md5, seconds, size / max(seconds, 1e-6) / 2**20)
        return Downloaded(target, md5, size, facts.virtual_size, facts.format)

    def _fetch(self, url: str, tmp: Path, progress: Progress,
               check_cancelled: Callable[[], None]) -> tuple[str, int]:
        try:
            if urlsplit(url).scheme.lower() == "sftp":
                return self._fetch_sftp(parse_sftp(url), tmp, progress, check_cancelled)
            with urlfetch.open_url(url, file_roots=self.file_roots,
                                   timeout=self.timeout) as stream:
                progress.total = stream.size
                available = self.store.capacity()[1]
                if stream.size is not None and stream.size > available:
                    raise DownloadError(self._no_space(url, stream.size, available))
                return write_hashed(stream.chunks(), tmp, progress=progress,
                                    check_cancelled=check_cancelled)
        except (urlfetch.FetchError, SshError) as exc:
            if "No space left on device" in str(exc):  # ssh could not write our file
                raise DownloadError(self._no_space(url, None, 0)) from None
            raise DownloadError(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DownloadError(self._no_space(url, progress.total, 0)) from None
            raise

    def _fetch_sftp(self, src: SftpSource, tmp: Path, progress: Progress,
                    check_cancelled: Callable[[], None]) -> tuple[str, int]:
        remote = Remote(self.identity, src.host, src.port, src.user)
        return fill_hashed(lambda fd, tick: remote.copy_to(src.path, fd, tick), tmp,
                           progress=progress, check_cancelled=check_cancelled)

    def _no_space(self, url: str, total: int | None, available: int) -> str:
        need = f"{total} bytes" if total is not None else "more space than there is"
        return (f"no space left on the storage root {self.store.root} for "
                f"{urlfetch.redact(url)}: it needs {need}, {available} bytes are free")
