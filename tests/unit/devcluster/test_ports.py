"""The free-port check of `make up` (devcluster.cluster._check_port_free)."""

import os
import socket

import psutil
import pytest

from devcluster.cluster import _check_port_free


def test_a_port_in_use_is_named_but_time_wait_is_not():
    """`make up` right after `make down`: sockets in TIME-WAIT do not count as taken; a
    listener does, and the error names it."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(RuntimeError, match=rf"port {port} on 127.0.0.1 is taken \(held "
                           rf"by \S+ pid {os.getpid()}\)"):
            _check_port_free("127.0.0.1", port, "coordinator")
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server closes first: its side goes to TIME-WAIT
        client.close()
    assert any(c.laddr.port == port and c.status == "TIME_WAIT"
               for c in psutil.net_connections("tcp"))
    _check_port_free("127.0.0.1", port, "coordinator")  # no error
