"""Stream an image from an http, https or file URL: no shell, no temporary files.

Agents that download images (cephagent into RBD, sftpbsagent into a file) take URLs from
the coordinator, so the URL is hostile input: only http/https/file are fetched, a
``file`` URL only under directories the agent's config allows (symlinks resolving outside
are refused), and every error names the URL with its credentials stripped so a password
never lands in a reply or a log.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3

SCHEMES = ("http", "https", "file")


class FetchError(Exception):
    """The URL cannot or may not be fetched; the message names the URL and the cause."""


def redact(url: str) -> str:
    """``url`` without ``user:password@`` (safe to log and to put in a reply)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def check_url(url: str, file_roots: Sequence[Path] = ()) -> None:
    """Raise :class:`FetchError` unless ``url`` is a fetchable http/https/file URL."""
    _file_path(url, file_roots)


def _file_path(url: str, file_roots: Sequence[Path]) -> Path | None:
    """Validate ``url``; for a ``file`` URL return the resolved path (else None)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise FetchError(f"URL {redact(url)!r} contains control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"URL {redact(url)!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise FetchError(f"{redact(url)}: scheme {scheme!r} is not supported "
                         f"(only {', '.join(SCHEMES)})")
    if scheme != "file":
        if not parts.hostname:
            raise FetchError(f"{redact(url)}: no host in the URL")
        return None
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"{redact(url)}: file URLs must name a local path (file:///path)")
    allowed = ", ".join(str(r) for r in file_roots) or "none configured"
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        raise FetchError(f"{redact(url)}: file URLs need an absolute path")
    real = Path(os.path.realpath(path))
    for root in file_roots:
        if real.is_relative_to(os.path.realpath(root)):
            return real
    raise FetchError(f"{redact(url)}: file URLs are only allowed under {allowed}")


class Stream:
    """An open download: its (redacted) URL, its size if known, and its bytes."""

    def __init__(self, url: str, size: int | None, read: Callable[[int], bytes]):
        self.url = url
        self.size = size
        self._read = read

    def chunks(self, chunk_size: int = 4 << 20) -> Iterator[bytes]:
        """Yield the body in pieces of at most ``chunk_size`` bytes (http: what has
        arrived); raises :class:`FetchError` if it breaks off or is short."""
        done = 0
        while True:
            try:
                data = self._read(chunk_size)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise FetchError(f"{self.url}: transfer broke off after {done} bytes: "
                                 f"{_cause(exc)}") from None
            if not data:
                break
            done += len(data)
            yield data
        if self.size is not None and done != self.size:
            raise FetchError(f"{self.url}: got {done} bytes, expected {self.size}")


@contextmanager
def open_url(url: str, *, file_roots: Sequence[Path] = (), timeout: float = 30.0
             ) -> Iterator[Stream]:
    """Open ``url`` for streaming; ``timeout`` bounds the connect and each read."""
    path = _file_path(url, file_roots)
    if path is not None:
        with _open_file(url, path) as f:
            yield Stream(redact(url), os.fstat(f.fileno()).st_size, f.read)
        return
    with _open_http(url, timeout) as resp:
        yield Stream(redact(url), _content_length(resp), _http_reader(resp))


@contextmanager
def _open_file(url: str, path: Path) -> Iterator[BinaryIO]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise FetchError(f"{redact(url)}: not a regular file")
        f = open(path, "rb")
    except OSError as exc:
        raise FetchError(f"{redact(url)}: {exc.strerror}") from None
    with f:
        yield f


@contextmanager
def _open_http(url: str, timeout: float) -> Iterator[requests.Response]:
    try:
        resp = requests.get(url, stream=True, timeout=timeout,
                            headers={"Accept-Encoding": "identity"})
    except requests.RequestException as exc:
        raise FetchError(f"{redact(url)}: {_cause(exc)}") from None
    with resp:
        if resp.status_code != 200:
            raise FetchError(f"HTTP {resp.status_code} {resp.reason} from {redact(url)}")
        yield resp


def _http_reader(resp: requests.Response):
    raw = resp.raw

    def read(n: int) -> bytes:
        # read1: what has arrived, up to n, so a caller checking for cancellation
        # between chunks does not wait for n bytes of a slow source
        return raw.read1(n, decode_content=True)

    return read


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length", "")
    if not value.isdigit() or resp.headers.get("Content-Encoding", "identity") != "identity":
        return None
    return int(value)


def _cause(exc: BaseException) -> str:
    """A short cause: 'connection refused' rather than urllib3's nested repr."""
    text = str(exc)
    for needle, short in (("Connection refused", "connection refused"),
                          ("Name or service not known", "host name not known"),
                          ("timed out", "timed out"),
                          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed")):
        if needle in text:
            return short
    return text or type(exc).__name__
