"""Exceptions a handler raises to produce a protocol error reply."""

from __future__ import annotations


class AgentError(Exception):
    """The command failed for a reason the operator can act on.

    The message becomes the reply's ``error`` (``success: false``), so it must say what
    failed, on which resource, and what the tool said — e.g. include a
    :class:`agentlib.shell.CommandFailed` message.
    """


class BadRequest(AgentError):
    """The command is malformed in a way the model cannot express (HTTP 400)."""


class Cancelled(AgentError):
    """The task was cancelled through ``/job/cancel``."""
