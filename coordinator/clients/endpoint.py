"""One agent endpoint as the coordinator calls it: its path, whether the agent runs it
async (the reply comes through the callback), and the agent's own command and reply
models.

A body is built only by :meth:`Endpoint.call`, which validates it as the agent will and
refuses any key the model has no field for, naming it: the agents ignore unknown
fields, so a misspelled optional key would otherwise be dropped without a word. ``None``
values are left out of the body: every optional field of the agents' commands defaults
to ``None`` (the contract test checks it), so leaving one out says the same.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ValidationError

from agentlib.agent import validation_message
from agentlib.models import AgentCommand, AgentReply
from coordinator.agentclient import AgentCallError

R = TypeVar("R", bound=AgentReply)


class UnknownField(TypeError):
    """A key the command model has no field for: a bug in the caller, never sent."""


class InvalidCommand(AgentCallError):
    """A body the agent would refuse with a 400 (said the way the agent says it)."""


@dataclass(frozen=True)
class Call:
    """A command ready to send, or to keep as a GC job: path and wire body."""

    path: str
    body: dict
    is_async: bool = False


@dataclass(frozen=True)
class Endpoint(Generic[R]):
    path: str
    command: type[AgentCommand]
    reply: type[R]
    is_async: bool = False

    def call(self, **fields: Any) -> Call:
        """The command of ``fields`` (snake_case names; nested values as models or as
        dicts), validated, as the agent reads it: camelCase, without ``None`` values."""
        keys = _keys(self.command)
        unknown = [k for k in fields if k not in keys]
        if unknown:
            known = ", ".join(self.command.model_fields) or "none"
            raise UnknownField(f"{self.path}: {self.command.__name__} has no field "
                               f"{', '.join(map(repr, unknown))} (its fields: {known})")
        declared = self.command.model_fields
        try:  # by the wire names, so an error names the field as the agent would
            cmd = self.command.model_validate(
                {declared[keys[k]].alias or keys[k]: v for k, v in fields.items()})
        except ValidationError as exc:
            raise InvalidCommand(f"{self.path}: {validation_message(exc)}") from None
        nested = ignored(cmd, fields)
        if nested:
            raise UnknownField(f"{self.path}: {self.command.__name__} has no field "
                               f"{', '.join(map(repr, nested))}")
        return Call(self.path, cmd.model_dump(by_alias=True, mode="json", exclude_none=True),
                    self.is_async)

    def parse(self, reply: Mapping) -> R:
        try:
            return self.reply.model_validate(reply)
        except ValidationError as exc:
            raise AgentCallError(f"{self.path}: the reply is not a {self.reply.__name__}: "
                                 f"{validation_message(exc)}") from None


def ignored(model: BaseModel, data: Mapping, where: str = "") -> list[str]:
    """The keys of ``data`` (what ``model`` was validated from) that no field of it
    reads, nested ones as ``dhcp.0.macc``: what the agent would drop silently."""
    keys = _keys(type(model))
    out = []
    for key, value in data.items():
        name = keys.get(key)
        if name is None:
            out.append(f"{where}{key}")
            continue
        out += _ignored_in(getattr(model, name), value, f"{where}{key}.")
    return out


def _ignored_in(validated: object, value: object, where: str) -> list[str]:
    if isinstance(validated, BaseModel) and isinstance(value, Mapping):
        return ignored(validated, value, where)
    if isinstance(validated, (list, tuple)) and isinstance(value, (list, tuple)):
        return [k for i, (v, raw) in enumerate(zip(validated, value, strict=False))
                for k in _ignored_in(v, raw, f"{where}{i}.")]
    if isinstance(validated, Mapping) and isinstance(value, Mapping):
        return [k for name, raw in value.items() if name in validated
                for k in _ignored_in(validated[name], raw, f"{where}{name}.")]
    return []


@functools.cache
def _keys(model: type[BaseModel]) -> dict[str, str]:
    """Every key that sets a field of ``model`` (its name, alias, alias choices) -> the
    field's name."""
    out = {}
    for name, field in model.model_fields.items():
        choices = field.validation_alias
        choices = choices.choices if isinstance(choices, AliasChoices) else [choices]
        for key in (name, field.alias, *choices):
            if isinstance(key, str):
                out[key] = name
    return out
