"""A small HTTP server that receives callbacks and reports, for tools and tests.

``zfleet call`` uses it to wait for an async command's reply; the tests and the
benchmark use it as a real coordinator stand-in on loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict
    at: float = field(default_factory=time.monotonic)


class CallbackReceiver:
    """Records every POST; ``wait(taskuuid=...)`` or ``wait(commandpath=...)`` for one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, status: int = 200):
        self.host = host
        self.port = port
        self.status = status
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/callback"

    def start(self) -> CallbackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                receiver._connections.add(self.connection)

            def finish(self):
                super().finish()
                receiver._connections.discard(self.connection)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._cond:
                    receiver.received.append(Received(self.path, headers, body))
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name=f"receiver:{self.port}").start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections, like a dead process would."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait(self, timeout: float = 10.0, count: int = 1, **header_match: str) -> list[Received]:
        """Wait until ``count`` POSTs whose headers match ``header_match`` have arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [r for r in self.received
                        if all(r.headers.get(k) == v for k, v in header_match.items())]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} POST(s) matching {header_match} "
                                       f"within {timeout}s, got {len(hits)}")
                self._cond.wait(left)

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
