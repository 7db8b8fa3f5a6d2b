"""Loose values are refused: non-finite numbers, booleans that are not true/false, ports
outside 1..65535, unbounded timeouts, in every command model of every agent."""

import importlib
import pkgutil
import types
import typing
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from agentlib.models import AgentCommand
from tests.fixtures.agents import build_demo_agent

AGENT_MODELS = ("agentlib.models", "kvmagent.models", "cephagent.models", "sftpbsagent.models")


def _command_models() -> list[type[AgentCommand]]:
    for name in AGENT_MODELS:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            importlib.import_module(f"{name}.{info.name}")
    found, todo = set(), [AgentCommand]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.split(".")[0] != "tests":
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda m: f"{m.__module__}.{m.__qualname__}")


def _base(annotation) -> object:
    """``bool`` for ``StrictBool | None``, ``int`` for ``Annotated[int, ...]``."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


FIELDS = [(m, name, f) for m in _command_models() for name, f in m.model_fields.items()]


def _adapter(field) -> TypeAdapter:
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(Annotated[field.annotation, *field.metadata])


@pytest.mark.parametrize("model, name, field", [
    x for x in FIELDS if _base(x[2].annotation) is bool], ids=lambda x: getattr(x, "__name__", x))
def test_every_boolean_field_accepts_only_true_and_false(model, name, field):
    adapter = _adapter(field)
    assert adapter.validate_python(True) is True
    for loose in (0, 1, "yes", "true", "1"):
        with pytest.raises(ValidationError):
            adapter.validate_python(loose)


@pytest.mark.parametrize("model, name, field", [
    x for x in FIELDS if _base(x[2].annotation) is int and x[1].endswith("port")],
    ids=lambda x: getattr(x, "__name__", x))
def test_every_port_field_is_bounded(model, name, field):
    adapter = _adapter(field)
    assert adapter.validate_python(65535) == 65535
    for bad in (0, -1, 65536, 10**12):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


@pytest.mark.parametrize("model, name, field", [
    x for x in FIELDS if x[1] == "timeout"], ids=lambda x: getattr(x, "__name__", x))
def test_every_timeout_is_positive_and_bounded(model, name, field):
    adapter = _adapter(field)
    assert adapter.validate_python(30) == 30
    for bad in (0, -1, 10**9):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_command_models_refuse_non_finite_numbers():
    assert all(m.model_config.get("allow_inf_nan") is False for m in _command_models())


@pytest.fixture
def client():
    agent = build_demo_agent()
    yield agent.app.test_client()
    agent.close()


@pytest.mark.parametrize("raw", [b'{"seconds": 1e999}', b'{"seconds": -1e999}',
                                 b'{"seconds": 1' + b"0" * 400 + b"}"])
def test_a_json_number_out_of_range_is_a_400_naming_the_field(client, raw):
    r = client.post("/demo/sleep", data=raw, content_type="application/json",
                    headers={"taskuuid": "t-inf", "callbackurl": "http://127.0.0.1:9/cb"})
    assert r.status_code == 400, r.text
    assert r.get_json()["error"].startswith("seconds: ")
