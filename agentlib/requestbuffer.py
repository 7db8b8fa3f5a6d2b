"""Whole requests before threads: a gunicorn worker that cannot be frozen by slow clients.

gunicorn's gthread worker hands a connection to a thread as soon as its first byte
arrives; the thread then blocks reading headers and body. Sixteen clients sending one
byte a second held all sixteen threads, and the agent answered nobody while they dripped.

:class:`BufferingWorker` reads each request on the worker's event loop (non-blocking,
like gunicorn's keep-alive polling) until :func:`request_length` says it is complete, and
only then hands it to a thread, whose parser finds every byte already buffered. A slow
client costs a buffer, never a thread; one that has not sent its whole request within
``request_timeout`` gets a 408 and is disconnected. Plain HTTP/1.1 only (the agents
serve no TLS).
"""

from __future__ import annotations

import json
import selectors
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

MAX_HEAD_BYTES = 64 << 10
"""Request line and headers; a larger head is refused with 431 before it is parsed."""


class Incomplete(Exception):
    """More bytes are needed."""


class Unframed(Exception):
    """The bytes cannot be framed; gunicorn's parser answers them (a 400)."""


def request_length(buf: bytes | bytearray, max_body: int) -> int:
    """The length of the first whole HTTP/1.x request in ``buf``.

    Raises :class:`Incomplete` (more to come), :class:`Unframed` (malformed: let the
    parser say why) or ``ValueError`` with an HTTP status for a request too large.
    """
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buf) > MAX_HEAD_BYTES:
            raise ValueError(431)
        raise Incomplete
    if head_end > MAX_HEAD_BYTES:
        raise ValueError(431)
    start = head_end + 4
    lengths, chunked = set(), False
    for line in bytes(buf[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            lengths.add(value.strip())
        elif name == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
    if chunked:
        return _chunked_end(buf, start, max_body)
    if not lengths:
        return start
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise Unframed
    size = int(next(iter(lengths)))
    if size > max_body:
        raise ValueError(413)
    if len(buf) < start + size:
        raise Incomplete
    return start + size


def _chunked_end(buf: bytes | bytearray, pos: int, max_body: int) -> int:
    body = 0
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            raise Incomplete
        size_field = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise Unframed from None
        body += size
        if body > max_body:
            raise ValueError(413)
        pos = line_end + 2
        if size == 0:  # then trailer fields, up to an empty line
            if buf[pos:pos + 2] == b"\r\n":
                return pos + 2
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                raise Incomplete
            return end + 4
        pos += size + 2
        if pos > len(buf):
            raise Incomplete


def _status_reply(status: int, message: str) -> bytes:
    reason = {408: "Request Timeout", 413: "Content Too Large",
              431: "Request Header Fields Too Large"}[status]
    body = json.dumps({"success": False, "error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


@dataclass
class _Intake:
    deadline: float
    buf: bytearray = field(default_factory=bytearray)
    continued: bool = False  # "100 Continue" sent
    polled: bool = False  # registered with the worker's poller


class BufferingWorker(ThreadWorker):
    """gthread, except that a thread only ever sees a request that has fully arrived.

    Every path on which gthread would give a connection to a thread (a new connection, a
    kept-alive one that became readable, pipelined bytes left after a reply) goes through
    :meth:`enqueue_req`, which here starts the intake instead. Settings (class
    attributes, set by :func:`agentlib.server.serve_gunicorn`): ``request_timeout``,
    ``max_body``.
    """

    request_timeout = 10.0
    max_body = 16 << 20

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._intakes: dict[object, _Intake] = {}
        self._by_deadline: deque = deque()  # (deadline, conn): appended in deadline order

    def enqueue_req(self, conn) -> None:
        """Start reading a request on the event loop (main thread)."""
        if conn.parser is None:
            # a thread never waits for the client: a request is whole before it gets one
            # (a safety net should the parser still want bytes, e.g. an unframed body)
            timeout = struct.pack("ll", int(self.request_timeout),
                                  int(self.request_timeout % 1 * 1e6))
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
            leftover = b""
        else:
            leftover = conn.parser.unreader.take_buffered()  # a pipelined request
        intake = _Intake(time.monotonic() + self.request_timeout, bytearray(leftover))
        conn.sock.setblocking(False)
        if intake.buf and self._advance(conn, intake):  # a whole pipelined request
            return
        self._intakes[conn] = intake
        self._receive(conn)  # a kept-alive connection comes here once readable: read now
        if conn in self._intakes:
            intake.polled = True
            self._by_deadline.append((intake.deadline, conn))
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self._readable, conn))

    def _readable(self, conn, _sock) -> None:
        self._receive(conn)

    def _receive(self, conn) -> None:
        intake = self._intakes[conn]
        try:
            data = conn.sock.recv(256 << 10)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        intake.buf += data
        self._advance(conn, intake)

    def _advance(self, conn, intake: _Intake) -> bool:
        """Hand the request to a thread once whole; True when its intake is over."""
        try:
            request_length(intake.buf, self.max_body)
        except Incomplete:
            self._maybe_continue(conn, intake)
            return False
        except Unframed:
            pass
        except ValueError as exc:
            status = exc.args[0]
            self._refuse(conn, status, "request headers too large" if status == 431 else
                         f"request body over {self.max_body} bytes")
            return True
        self._end_intake(conn)
        fs = self.tpool.submit(self._handle_whole, conn, bytes(intake.buf))
        fs.add_done_callback(
            lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
        return True

    def _maybe_continue(self, conn, intake: _Intake) -> None:
        """A client that sent ``Expect: 100-continue`` waits for it before its body."""
        if intake.continued:
            return
        head_end = intake.buf.find(b"\r\n\r\n")
        if head_end >= 0 and b"100-continue" in intake.buf[:head_end].lower():
            intake.continued = True
            try:
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                pass

    def _handle_whole(self, conn, data: bytes):
        conn.data_ready = True  # nothing to wait for: the request is here
        conn.init()
        conn.parser.unreader.unread(data)
        return self.handle(conn)

    def murder_pending(self) -> None:
        """Also disconnect clients whose request is overdue (gthread calls this after
        every poll, at least once a second)."""
        super().murder_pending()
        now = time.monotonic()
        while self._by_deadline and self._by_deadline[0][0] <= now:
            _, conn = self._by_deadline.popleft()
            intake = self._intakes.get(conn)
            if intake is None or intake.deadline > now:
                continue  # handed over meanwhile (and maybe in a later intake)
            if intake.buf:
                self._refuse(conn, 408, f"request not received within "
                                        f"{self.request_timeout:g}s")
            else:
                self._drop(conn)

    def _end_intake(self, conn) -> None:
        intake = self._intakes.pop(conn, None)
        if intake is not None and intake.polled:
            self.poller.unregister(conn.sock)

    def _refuse(self, conn, status: int, message: str) -> None:
        try:
            conn.sock.send(_status_reply(status, message))
        except OSError:
            pass
        self._drop(conn)

    def _drop(self, conn) -> None:
        self._end_intake(conn)
        self.nr_conns -= 1
        conn.close()
