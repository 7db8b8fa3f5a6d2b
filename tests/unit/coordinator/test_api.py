"""``@api`` handlers of a module: registered by ``Apis.add_module`` with their message
and long flag; a handler imported from another module is not registered twice."""

import sys
import types

import pytest

from coordinator.api import ApiMessage, Apis, api


class PingMsg(ApiMessage):
    text: str = ""


@api("Ping")
def ping(msg: PingMsg, ctx) -> dict:
    """Answer."""
    return {"text": msg.text}


@api("SlowPing", long=True)
def slow_ping(msg: PingMsg, ctx, deadline) -> dict:
    """Answer later."""
    return {}


def _module(name: str, **members) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(members)
    return module


def test_a_modules_handlers_are_registered_with_their_message_and_flag():
    apis = Apis()
    apis.add_module(sys.modules[__name__])
    assert {n: (s.message, s.long, s.summary) for n, s in apis.specs.items()} == {
        "Ping": (PingMsg, False, "Answer."), "SlowPing": (PingMsg, True, "Answer later.")}
    assert apis.long_timeouts() == {"SlowPing": "3h"}


def test_handlers_imported_from_elsewhere_are_not_registered_and_names_are_unique():
    apis = Apis()
    apis.add_module(_module("other", ping=ping))
    assert apis.specs == {}
    apis.register("Ping")(ping)
    with pytest.raises(ValueError, match="Ping registered twice"):
        apis.add_module(sys.modules[__name__])
