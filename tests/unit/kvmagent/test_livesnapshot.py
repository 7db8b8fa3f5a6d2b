"""Volume snapshots without libvirt daemons: the command models, the snapshot XML, which
disk a volume is, and the block pull's timeout, cancellation and failure paths (against
a fake domain; the files are real qcow2 images)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import libvirt
import pytest
from pydantic import ValidationError

from agentlib.errors import AgentError, Cancelled
from kvmagent.drivers.domain import Disk, Domain, domain_xml
from kvmagent.drivers.filestorage import FileStorage
from kvmagent.drivers.livesnapshot import LiveSnapshots, snapshot_xml
from kvmagent.models.snapshot import MergeSnapshotCmd, TakeSnapshotCmd
from kvmagent.models.vm import VolumeTO

VM = "0123456789abcdef0123456789abcdef"
VOL = "fedcba9876543210fedcba9876543210"


class FakeDomain:
    """What LiveSnapshots calls on a libvirt domain; the block job runs for ``job_polls``
    polls (None: forever)."""

    def __init__(self, disks: list[Disk], job_polls: int | None = 0,
                 snapshot_error: str | None = None):
        self.xml = domain_xml(Domain(uuid=VM, name=VM, domain_type="qemu",
                                     memory_bytes=128 << 20, vcpus=1, disks=disks))
        self.job_polls = job_polls
        self.snapshot_error = snapshot_error
        self.calls: list[tuple] = []

    def name(self) -> str:
        return VM

    def XMLDesc(self, flags: int) -> str:  # noqa: N802 - libvirt's name
        return self.xml

    def snapshotCreateXML(self, xml: str, flags: int):  # noqa: N802
        self.calls.append(("snapshot", xml, flags))
        if self.snapshot_error:
            raise libvirt.libvirtError(self.snapshot_error)

    def blockRebase(self, disk: str, base: str | None, bandwidth: int, flags: int):  # noqa: N802
        self.calls.append(("rebase", disk, base))

    def blockJobInfo(self, disk: str, flags: int) -> dict:  # noqa: N802
        if self.job_polls is None or self.job_polls > 0:
            self.job_polls = None if self.job_polls is None else self.job_polls - 1
            return {"type": 1, "bandwidth": 0, "cur": 1, "end": 2}
        return {}

    def blockJobAbort(self, disk: str, flags: int):  # noqa: N802
        self.calls.append(("abort", disk))
        self.job_polls = 0


def qcow2(path, backing=None):
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    argv += ["-b", str(backing), "-F", "qcow2", str(path)] if backing else [str(path), "1M"]
    subprocess.run(argv, check=True)
    return path


def volume(path, device_id=0) -> VolumeTO:
    return VolumeTO(volume_uuid=VOL, install_path=str(path), device_id=device_id)


# --- models -------------------------------------------------------------------------------


def test_take_snapshot_cmd():
    v = {"volumeUuid": VOL, "installPath": "/ps/v.qcow2", "deviceId": 0}
    cmd = TakeSnapshotCmd.model_validate({"vmUuid": "", "volume": v, "installPath": "/ps/n"})
    assert (cmd.vm_uuid, cmd.full_snapshot, cmd.timeout) == (None, False, 1800)
    for bad, msg in (({"volumeUuid": VM}, "volumeUuid: "),
                     ({"volumeInstallPath": "/ps/other"}, "volumeInstallPath: "),
                     ({"installPath": "/ps/v.qcow2"}, "installPath: the new volume file"),
                     ({"installPath": "/ps/../etc/x"}, "installPath"),
                     ({"vmUuid": "x"}, "vmUuid"),
                     ({"volume": {**v, "deviceType": "ceph", "installPath": "ceph://p/i",
                                  "monInfo": [{"hostname": "mon1"}]}}, "volume.deviceType")):
        with pytest.raises(ValidationError, match=msg):
            TakeSnapshotCmd.model_validate({"volume": v, "installPath": "/ps/n", **bad})


def test_merge_snapshot_cmd():
    v = {"volumeUuid": VOL, "installPath": "/ps/v.qcow2", "deviceId": 0}
    cmd = MergeSnapshotCmd.model_validate({"volume": v, "destPath": "/ps/v.qcow2",
                                           "fullRebase": True})
    assert cmd.src_path is None
    for bad, msg in (({}, "srcPath: needed unless fullRebase"),
                     ({"srcPath": "/ps/b", "destPath": "/ps/x"}, "destPath: /ps/x is not"),
                     ({"srcPath": "/ps/v.qcow2"}, "srcPath: the base must differ")):
        with pytest.raises(ValidationError, match=msg):
            MergeSnapshotCmd.model_validate({"volume": v, "destPath": "/ps/v.qcow2", **bad})


# --- the snapshot and the disk --------------------------------------------------------------


def test_snapshot_xml_snapshots_one_disk_only():
    root = ET.fromstring(snapshot_xml("vdb", "/ps/new.qcow2", ["vda", "hdc"]))
    disks = {d.get("name"): d for d in root.iterfind("disks/disk")}
    assert {n: d.get("snapshot") for n, d in disks.items()} == {
        "vdb": "external", "vda": "no", "hdc": "no"}
    assert disks["vdb"].find("source").get("file") == "/ps/new.qcow2"
    assert disks["vdb"].find("driver").get("type") == "qcow2"


def test_the_volume_is_found_by_target_or_else_by_path(tmp_path):
    a, b = qcow2(tmp_path / "a.qcow2"), qcow2(tmp_path / "b.qcow2")
    dom = FakeDomain([Disk(target="vda", path=str(a)), Disk(target="vdb", path=str(b)),
                      Disk(target="hdc", device="cdrom", bus="ide")])
    live = LiveSnapshots(vms=None)
    assert live.disk(dom, volume(b, 1), {b}).target == "vdb"
    assert live.disk(dom, volume(b, 0), {b}).target == "vdb"  # deviceId stale: the path wins
    missing = tmp_path / "c.qcow2"
    with pytest.raises(AgentError, match=f"no disk reading volume.installPath {missing} "
                                         f"\\(its file disks: vda: {a}, vdb: {b}\\)"):
        live.disk(dom, volume(missing), {missing})


def test_a_failed_snapshot_leaves_no_directory(tmp_path):
    a = qcow2(tmp_path / "a.qcow2")
    disk = Disk(target="vda", path=str(a))
    dom = FakeDomain([disk, Disk(target="vdb", path=str(qcow2(tmp_path / "b.qcow2")))],
                     snapshot_error="disk full")
    new = tmp_path / "snaps" / "deep" / "new.qcow2"
    with pytest.raises(AgentError, match=f"could not snapshot vda \\({a}\\) into {new}: "
                                         "disk full"):
        LiveSnapshots(vms=None).take_snapshot(dom, disk, a, new, FileStorage(tmp_path))
    assert not (tmp_path / "snaps").exists()
    [(_, xml, flags)] = dom.calls
    assert 'name="vdb" snapshot="no"' in xml
    assert flags & libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC


# --- block pull -----------------------------------------------------------------------------


def test_block_pull_waits_for_the_job_and_checks_the_chain(tmp_path):
    base = qcow2(tmp_path / "base.qcow2")
    top = qcow2(tmp_path / "top.qcow2", backing=base)
    disk = Disk(target="vda", path=str(top))
    dom = FakeDomain([disk], job_polls=3)
    LiveSnapshots(vms=None).block_pull(dom, disk, str(base), timeout=5)
    assert dom.calls == [("rebase", "vda", str(base))] and dom.job_polls == 0
    # the job ended, but the top still has a backing file: it failed
    with pytest.raises(AgentError, match=f"ended but its backing file is {base}, not None"):
        LiveSnapshots(vms=None).block_pull(FakeDomain([disk]), disk, None, timeout=5)


def test_block_pull_is_aborted_after_its_timeout_or_on_cancel(tmp_path):
    top = qcow2(tmp_path / "top.qcow2")
    disk = Disk(target="vda", path=str(top))
    dom = FakeDomain([disk], job_polls=None)
    with pytest.raises(AgentError, match=f"block pull of vda \\({top}\\) did not finish "
                                         "within 0.2s; aborted, the volume's backing chain "
                                         "is unchanged"):
        LiveSnapshots(vms=None).block_pull(dom, disk, None, timeout=0.2)
    assert dom.calls == [("rebase", "vda", None), ("abort", "vda")]
    dom = FakeDomain([disk], job_polls=None)
    with pytest.raises(Cancelled, match="was cancelled; aborted"):
        LiveSnapshots(vms=None).block_pull(dom, disk, None, 60, cancelled=lambda: True)
    assert dom.calls[-1] == ("abort", "vda")
