"""The API: ZStack's API names, typed messages, one handler each.

``POST /api/<ApiName>`` with a JSON body; the body is validated against the API's
message model (a 400 naming the field), then the handler runs. APIs that drive agents
(VM creation, image download...) are *long*: they run as jobs with a timeout (ZStack
1.1's API timeout framework; the default can be changed per API with the global config
``apiTimeout/<ApiName>``), and the caller either waits for the reply or takes the job
uuid and polls ``GET /api/result/<jobUuid>``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

LONG_API_TIMEOUT = "3h"  # ZStack 1.1: every long API defaults to 3 hours


class ApiError(Exception):
    """A refused or failed API call; the message says what, on which resource, and why."""


SystemTag = Annotated[str, StringConstraints(min_length=1, max_length=65536,
                                             pattern=r"^[^\n\r\x00]+::[\s\S]*$")]


class ApiMessage(BaseModel):
    """An API body: camelCase on the wire; unknown fields are refused (a typo in an
    operator's command must not be silently ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid", frozen=True)

    system_tags: list[SystemTag] = []
    user_tags: list[str] = []


@dataclass
class ApiSpec:
    name: str
    message: type[ApiMessage]
    handler: Callable
    long: bool

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.handler) or "").split("\n\n")[0].replace("\n", " ")


def api(name: str, *, long: bool = False):
    """Declare a module-level handler ``def f(msg: CreateZoneMsg, ctx)`` (long ones take a
    ``deadline`` too) as the API ``name``; :meth:`Apis.add_module` registers it."""
    def decorate(fn: Callable) -> Callable:
        fn.declared_api = (name, long)
        return fn
    return decorate


class Apis:
    """The registry: ``@apis.register("CreateZone")`` on ``def f(msg: CreateZoneMsg, c)``,
    or the ``@api`` handlers of a module with :meth:`add_module`."""

    def __init__(self) -> None:
        self.specs: dict[str, ApiSpec] = {}

    def register(self, name: str, *, long: bool = False):
        def decorate(fn: Callable) -> Callable:
            hints = typing.get_type_hints(fn)
            first = next(iter(inspect.signature(fn).parameters))
            message = hints.get(first)
            if not (isinstance(message, type) and issubclass(message, ApiMessage)):
                raise TypeError(f"{fn.__qualname__}: first parameter must be an ApiMessage")
            if name in self.specs:
                raise ValueError(f"API {name} registered twice")
            self.specs[name] = ApiSpec(name, message, fn, long)
            return fn
        return decorate

    def add_module(self, module: ModuleType) -> None:
        """Register the module's own ``@api`` handlers."""
        for fn in vars(module).values():
            declared = getattr(fn, "declared_api", None)
            if declared and fn.__module__ == module.__name__:
                name, long = declared
                self.register(name, long=long)(fn)

    def long_timeouts(self) -> dict[str, str]:
        return {name: LONG_API_TIMEOUT for name, spec in self.specs.items() if spec.long}

    def describe(self) -> list[dict]:
        """Every API with its summary and its message's JSON schema (``zfleet --help``)."""
        return [{"name": s.name, "long": s.long, "summary": s.summary,
                 "schema": s.message.model_json_schema(by_alias=True)}
                for s in sorted(self.specs.values(), key=lambda s: s.name)]
