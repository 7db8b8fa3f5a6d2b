"""Slow clients against an agent under gunicorn (issue 14, finding 6): 20 clients sending
a request one byte a second neither keep others from being answered nor stay connected
past ``--request-timeout``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from devcluster import procs
from tests.fixtures.drip import Dripper
from tests.integration.agentlib.test_server import start_agent

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("part", ["headers", "body"])
def test_dripping_clients_block_nobody_and_are_cut_off(part, tmp_path):
    proc, url = start_agent("vragent", tmp_path, "--request-timeout", "3")
    drippers = []
    try:
        port = urlsplit(url).port
        drippers = [Dripper(port, "/echo", part, limit=60) for _ in range(20)]
        # more drippers than the agent's 16 threads, all of them mid-request
        answer = requests.post(url + "/echo", json={}, timeout=20)
        assert answer.json() == {"success": True, "error": ""}
        for d in drippers:
            assert d.cut.wait(30), "a dripping client is still connected"
            assert d.reply == b"" or d.reply.startswith(b"HTTP/1.1 408 "), d.reply[:100]
        assert any(d.reply for d in drippers)  # told why, not only disconnected
        assert b"request not received within 3s" in next(d.reply for d in drippers if d.reply)
    finally:
        procs.stop(proc)
        for d in drippers:
            d.stop()
