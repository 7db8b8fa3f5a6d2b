"""The coordinator's agent client against a real socket server that drops a kept-alive
connection the way an agent does after its keep-alive timeout or a network cut."""

import socket
import threading

import pytest

from coordinator.agentclient import AgentCallError, AgentClient

BODY = b'{"success": true, "error": ""}'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
      + str(len(BODY)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + BODY)


class DroppingServer:
    """Answers the first request of each connection, then closes it without answering the
    next one; counts the requests that got an answer."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.answered = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        with conn:
            self._read_request(conn)
            self.answered += 1  # before the answer: the client may look right after it
            conn.sendall(OK)
            self._read_request(conn)  # the reuse: dropped unanswered

    @staticmethod
    def _read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length")), 0)
        while len(rest) < length:
            rest += conn.recv(65536)


@pytest.fixture
def server():
    s = DroppingServer()
    yield s
    s.sock.close()


def test_a_dropped_kept_alive_connection_is_retried_once_on_a_new_one(server):
    client = AgentClient("http://127.0.0.1:1/callback")
    assert client.call(server.url, "/host/ping", {})["success"]
    assert client.call(server.url, "/host/ping", {})["success"]  # reuse dropped -> resent
    assert server.answered == 2


def test_a_refused_connection_is_not_retried_and_says_unreachable():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(AgentCallError) as err:
        AgentClient("http://127.0.0.1:1/callback").call(f"http://127.0.0.1:{port}",
                                                        "/host/ping", {})
    assert err.value.unreachable and "unreachable" in str(err.value)
