"""Checks of what a command names on this host (bridges, files) that a model cannot make.

Shared by VM start and hot-plug so both refuse a missing bridge or file with the same
error, naming the command field, before libvirt is asked (whose own error would name
neither the field nor the host).
"""

from __future__ import annotations

import os

from agentlib.errors import AgentError


def require_bridge(field: str, bridge: str) -> None:
    if not os.path.isdir(f"/sys/class/net/{bridge}/bridge"):
        raise AgentError(f"{field}: no bridge {bridge!r} on this host")


def require_file(field: str, path: str) -> None:
    if not os.path.isfile(path):
        raise AgentError(f"{field}: no such file on this host: {path}")
