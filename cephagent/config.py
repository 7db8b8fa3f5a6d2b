"""cephagent settings (each also a flag: ``--ceph-conf``, ``--ceph-user``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from agentlib.config import AgentConfig, PathList


class CephAgentConfig(AgentConfig):
    ceph_conf: Path = Field(
        Path("/etc/ceph/ceph.conf"),
        description="ceph.conf of the cluster (mon addresses; the keyring as it says)",
    )
    ceph_user: str = Field(
        "admin", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="cephx client name, without 'client.'",
    )
    ceph_timeout: int = Field(
        10, ge=1, le=600,
        description="seconds a mon or OSD may take before a command fails "
        "(client_mount_timeout, rados_mon_op_timeout, rados_osd_op_timeout)",
    )
    file_url_roots: PathList = Field(
        [],
        description="directories image/download may read file:// URLs from "
        "(comma-separated; none = file URLs refused)",
    )
    tmp_dir: Path | None = Field(
        None, description="where a qcow2 download waits for conversion (none: DATA_DIR/tmp)"
    )

