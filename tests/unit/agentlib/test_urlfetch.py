"""urlfetch against a real HTTP server on loopback and real files."""

import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from agentlib.urlfetch import FetchError, check_url, open_url, redact

BODY = os.urandom(3 << 20) + b"tail"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/image":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/short":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:1000])
            self.close_connection = True
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BODY), 1 << 20):
                part = BODY[i:i + (1 << 20)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _read(url, **kw):
    with open_url(url, **kw) as stream:
        data = b"".join(stream.chunks(1 << 20))
        return stream, data


def test_http_streams_the_body_with_its_size(server):
    stream, data = _read(f"{server}/image")
    assert stream.size == len(BODY)
    assert hashlib.md5(data).hexdigest() == hashlib.md5(BODY).hexdigest()


def test_chunked_body_has_unknown_size(server):
    stream, data = _read(f"{server}/chunked")
    assert stream.size is None
    assert data == BODY


def test_404_names_status_and_url(server):
    with pytest.raises(FetchError, match=r"HTTP 404 .* from http://127\.0\.0\.1:\d+/nothing"):
        _read(f"{server}/nothing")


def test_short_body_is_an_error_not_a_short_image(server):
    with pytest.raises(FetchError, match="broke off|expected"):
        _read(f"{server}/short")


def test_connection_refused_is_said_plainly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connects are refused
        with pytest.raises(FetchError, match="connection refused"):
            _read(f"http://127.0.0.1:{port}/x", timeout=5)


def test_credentials_never_appear_in_errors(server):
    url = server.replace("http://", "http://alice:s3cret@") + "/nothing"
    with pytest.raises(FetchError) as err:
        _read(url)
    assert "s3cret" not in str(err.value) and "alice" not in str(err.value)
    assert redact("https://u:p@h:1/x?y") == "https://h:1/x?y"


@pytest.mark.parametrize("url, message", [
    ("ftp://host/x", "scheme 'ftp' is not supported"),
    ("sftp://root@host/x", "scheme 'sftp' is not supported"),
    ("gopher://host/x", "not supported"),
    ("http:///nohost", "no host"),
    ("http://host/a\nb", "control characters"),
    ("file://otherhost/etc/passwd", "local path"),
])
def test_bad_urls_are_refused(url, message):
    with pytest.raises(FetchError, match=message):
        check_url(url, [Path("/")])


def test_file_urls_only_under_allowed_roots(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    (root / "a.qcow2").write_bytes(b"abc")
    secret = tmp_path / "secret"
    secret.write_bytes(b"nope")
    (root / "link").symlink_to(secret)

    stream, data = _read(f"file://{root}/a.qcow2", file_roots=[root])
    assert (stream.size, data) == (3, b"abc")
    with pytest.raises(FetchError, match="only allowed under"):
        check_url(f"file://{secret}", [root])
    with pytest.raises(FetchError, match="only allowed under"):
        check_url(f"file://{root}/link", [root])  # symlink resolving outside
    with pytest.raises(FetchError, match="only allowed under"):
        check_url(f"file://{root}/../secret", [root])
    with pytest.raises(FetchError, match="none configured"):
        check_url(f"file://{root}/a.qcow2")
    with pytest.raises(FetchError, match="not a regular file"):
        _read(f"file://{root}", file_roots=[root])
    with pytest.raises(FetchError, match="No such file"):
        _read(f"file://{root}/missing", file_roots=[root])


def test_https_verifies_certificates(tmp_path):
    import ssl

    from agentlib import shell

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    shell.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
               "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FetchError, match="TLS certificate verification failed"):
            _read(f"https://127.0.0.1:{srv.server_address[1]}/image")
    finally:
        srv.shutdown()
        srv.server_close()
