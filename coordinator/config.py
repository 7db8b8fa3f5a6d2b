"""Coordinator settings (TOML < ZFLEET_COORDINATOR_* env < flags, as for the agents)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from agentlib.config import AgentConfig


class CoordinatorConfig(AgentConfig):
    data_dir: Path = Field(Path("/var/lib/zfleet/coordinator"),
                           description="where the database lives (zfleet.db)")
    advertise_url: str | None = Field(
        None, description="the URL agents reach this coordinator at, for callbacks and "
        "reports (default: http://<host>:<port>, which must then not be 0.0.0.0)")
    agent_timeout: float = Field(30.0, gt=0, description="timeout of a sync agent call (s)")
    api_workers: int = Field(32, ge=1, le=512, description="threads running long APIs")
    background: bool = Field(True, description="run host pings and other periodic work")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "zfleet.db"

    def base_url(self) -> str | None:
        """Where agents reach this coordinator; None while the port is not known yet (a
        test server binds port 0 and sets it later)."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        if not self.port:
            return None
        if self.host in ("0.0.0.0", "::"):
            raise ValueError("--advertise-url is needed when listening on all addresses: "
                             "agents must know where to call back")
        return f"http://{self.host}:{self.port}"
