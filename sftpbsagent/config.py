"""sftpbsagent settings (each also a flag: ``--file-url-roots``, ``--read-timeout``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from agentlib.config import AgentConfig


class SftpBsAgentConfig(AgentConfig):
    file_url_roots: list[Path] = Field(
        default_factory=list,
        description="directories download may read file:// URLs from "
        "(comma-separated; none = file URLs refused)",
    )
    read_timeout: float = Field(
        60.0, gt=0, le=3600,
        description="seconds a download source may stay silent (connect, then each read) "
        "before the download fails",
    )
    authorized_keys: Path = Field(
        Path("/root/.ssh/authorized_keys"),
        description="where authorizekey adds KVM hosts' keys: the authorized_keys of the "
        "ssh user hosts pull images as (sshd's AuthorizedKeysFile for that user)",
    )
    progress_seconds: float = Field(
        5.0, gt=0, description="at most one /progress/report per download this often"
    )

    @field_validator("file_url_roots", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        """A flag or environment variable gives the roots as one comma-separated string."""
        if isinstance(v, str):
            return [p for p in v.split(",") if p.strip()]
        return v
