"""sftpbsagent settings (each also a flag: ``--file-url-roots``, ``--read-timeout``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from agentlib import storageroot
from agentlib.config import AgentConfig, ConfigError, PathList


class SftpBsAgentConfig(AgentConfig):
    file_url_roots: PathList = Field(
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
    storage_roots: PathList = Field(
        default_factory=lambda: [Path("/zstack_bs")],
        description="directories under which connect may put the storage (comma-separated; "
        "system directories and the data dir, which holds the agent's ssh key, are refused)",
    )

    @model_validator(mode="after")
    def _safe_roots(self):
        try:
            storageroot.check_roots(self.storage_roots, self.data_dir)
        except ValueError as exc:
            raise ConfigError(f"sftpbsagent: bad configuration: storage_roots: {exc}") from None
        return self
