"""Agent settings: defaults < config file (TOML) < environment < command-line flags.

Each agent declares its settings as a pydantic model derived from :class:`AgentConfig`;
every field is also an environment variable (``ZFLEET_<AGENT>_<FIELD>``) and a flag
(``--field-name``), so ``<agent> --help`` documents every setting an operator can change.
"""

from __future__ import annotations

import argparse
import os
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


def _split_commas(v: object) -> object:
    """A flag or environment variable gives a list as one comma-separated string."""
    if isinstance(v, str):
        return [p for p in v.split(",") if p.strip()]
    return v


PathList = Annotated[list[Path], BeforeValidator(_split_commas)]
"""Paths; on a flag or in the environment, comma-separated."""


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("0.0.0.0", description="address to listen on")
    port: int = Field(0, ge=0, le=65535, description="TCP port (0 = the agent's default)")
    data_dir: Path = Field(
        Path("/var/lib/zfleet/AGENT"),
        description="where the agent keeps state it must re-adopt",
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="log level")
    log_file: str | None = Field(None, description="log to this file instead of stderr")
    foreground: bool = Field(
        False, description="serve with the single-process debug server instead of gunicorn"
    )
    threads: int = Field(16, ge=1, le=256, description="HTTP server threads")
    task_workers: int = Field(8, ge=1, le=128, description="threads running async commands")
    long_task_workers: int = Field(
        4, ge=1, le=64, description="threads running long async commands (host scans, image "
        "transfers, migrations, volume copies), apart from task_workers so that these cannot "
        "delay short commands")
    request_timeout: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False, description="seconds a client has to send "
        "a whole request (headers and body); a slower one gets 408 and is disconnected. A "
        "request is read without a server thread until complete, so slow clients hold none")
    callback_retry_seconds: float = Field(
        300.0, gt=0, description="how long to keep retrying a callback or report delivery"
    )


class ConfigError(SystemExit):
    """A bad setting: exits the agent with a message naming the setting and its source."""


def load(
    cls: type[AgentConfig],
    agent: str,
    argv: list[str] | None = None,
    env: typing.Mapping[str, str] | None = None,
    default_port: int = 0,
    description: str = "",
) -> AgentConfig:
    """Parse flags, read ``--config`` and the environment, and validate the result."""
    env = os.environ if env is None else env
    parser = _parser(cls, agent, description, default_port)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if args.config:
        try:
            file_values = tomllib.loads(Path(args.config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{agent}: cannot read config file {args.config}: {exc}") from None
        values.update(file_values)
        sources.update(dict.fromkeys(file_values, f"config file {args.config}"))
    prefix = f"ZFLEET_{agent.upper()}_"
    for name in cls.model_fields:
        if prefix + name.upper() in env:
            values[name] = env[prefix + name.upper()]
            sources[name] = f"environment {prefix + name.upper()}"
    for name in cls.model_fields:
        flag_value = getattr(args, name, None)
        if flag_value is not None:
            values[name] = flag_value
            sources[name] = "--" + name.replace("_", "-")
    if not values.get("port"):
        values["port"] = default_port
    values.setdefault("data_dir", Path("/var/lib/zfleet") / agent)
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{key} ({sources.get(key, 'default')}): {err['msg']}")
        raise ConfigError(f"{agent}: bad configuration: " + "; ".join(problems)) from None


def _parser(
    cls: type[AgentConfig], agent: str, description: str, default_port: int
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=agent,
        description=description,
        epilog=f"Every setting can also be given in the --config TOML file (as its snake_case "
        f"name) or as the environment variable ZFLEET_{agent.upper()}_<NAME>. "
        f"Precedence: flag > environment > file > default. Default port: {default_port}.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with settings")
    for name, field in cls.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = field.description or ""
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=help_text)
        else:
            default = field.default if name != "port" else default_port
            choices = typing.get_args(field.annotation) if typing.get_origin(
                field.annotation) is typing.Literal else None
            parser.add_argument(
                flag, dest=name, default=None, choices=choices,
                metavar="|".join(choices) if choices else name.upper(),
                help=f"{help_text} (default: {default})",
            )
    return parser
