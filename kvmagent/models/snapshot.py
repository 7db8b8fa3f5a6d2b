"""Volume snapshot commands for file volumes (ZStack's TakeSnapshotCmd, MergeSnapshotCmd).

ZStack's external-snapshot scheme: the volume's current file becomes the snapshot and a
new qcow2 overlay on it, at ``installPath``, becomes the volume. ``vmUuid`` is empty when
the volume's VM is stopped (ZStack sends ``""``, which is read as absent).
"""

from __future__ import annotations

from pydantic import Field, StrictBool, field_validator, model_validator

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath, Timeout, Uuid
from kvmagent.models.vm import VolumeTO


class VolumeSnapshotCmd(AgentCommand):
    vm_uuid: Uuid | None = None
    """The VM the volume is attached to; its state decides between libvirt and qemu-img."""
    volume: VolumeTO
    timeout: Timeout = Field(1800, description="seconds a running VM's block pull (a "
                           "merge, or flattening for a full snapshot) may take before it "
                           "is aborted (zfleet extension)")

    @field_validator("vm_uuid", mode="before")
    @classmethod
    def _absent_if_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _file_volume(self):
        if self.volume.device_type != "file":
            raise ValueError("volume.deviceType: only file volumes snapshot here (a ceph "
                             "volume's snapshots are cephagent's snapshot/create)")
        return self


class TakeSnapshotCmd(VolumeSnapshotCmd):
    """``/vm/volume/takesnapshot``."""

    volume_uuid: Uuid | None = None
    install_path: AbsPath = Field(description="the new volume file (the overlay)")
    volume_install_path: AbsPath | None = None
    """ZStack sends the volume's current file here too; it must be volume.installPath."""
    full_snapshot: StrictBool = Field(False, description="true: the snapshot gets no backing file "
                                "(the volume is flattened first); false: an incremental one")

    @model_validator(mode="after")
    def _consistent(self):
        current = self.volume.install_path
        if self.volume_uuid is not None and self.volume_uuid != self.volume.volume_uuid:
            raise ValueError(f"volumeUuid: {self.volume_uuid} is not volume.volumeUuid "
                             f"{self.volume.volume_uuid}")
        if self.volume_install_path is not None and self.volume_install_path != current:
            raise ValueError(f"volumeInstallPath: {self.volume_install_path} is not "
                             f"volume.installPath {current}")
        if self.install_path == current:
            raise ValueError(f"installPath: the new volume file must differ from the "
                             f"volume's current file {current}")
        return self


class TakeSnapshotReply(AgentReply):
    snapshot_install_path: str = ""
    """The volume's former file, now the snapshot."""
    new_volume_install_path: str = ""
    """The new overlay: the volume's file from now on."""
    size: int = 0
    """Bytes the snapshot file takes (its file size)."""


class MergeSnapshotCmd(VolumeSnapshotCmd):
    """``/vm/volume/mergesnapshot``: pull the snapshots above ``srcPath`` into the volume
    (``destPath``), so ``srcPath`` becomes its backing file; ``fullRebase`` pulls the
    whole chain, leaving the volume without a backing file."""

    src_path: AbsPath | None = None
    dest_path: AbsPath
    full_rebase: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self):
        if not self.full_rebase and self.src_path is None:
            raise ValueError("srcPath: needed unless fullRebase is true")
        if self.dest_path != self.volume.install_path:
            raise ValueError(f"destPath: {self.dest_path} is not the volume's file "
                             f"(volume.installPath {self.volume.install_path})")
        if not self.full_rebase and self.src_path == self.dest_path:
            raise ValueError("srcPath: the base must differ from destPath")
        return self
