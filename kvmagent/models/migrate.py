"""Live migration command (ZStack's MigrateVmCmd, the fields zfleet uses)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentlib.models import AgentCommand
from agentlib.types import IPv4, Timeout, Uuid

StorageMigrationPolicy = Literal["shared", "copy"]


class MigrateVmCmd(AgentCommand):
    vm_uuid: Uuid
    dest_host_ip: IPv4
    storage_migration_policy: StorageMigrationPolicy = Field(
        "shared", description="shared: every disk is visible on the destination; copy: "
        "local file disks are copied (the destination file must already exist)")
    timeout: Timeout = Field(300, description="seconds before the migration is aborted")
