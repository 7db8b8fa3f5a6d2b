"""Migration and Ceph secrets without libvirt daemons: the command models, the migration
plan per storage policy, the secret XML, and state capture around incoming migrations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest
from pydantic import ValidationError

from kvmagent.drivers.domain import Disk
from kvmagent.drivers.libvirt_conn import DomainEvent
from kvmagent.drivers.migration import BASE_FLAGS, plan
from kvmagent.drivers.secrets import ceph_secret_xml
from kvmagent.models.ceph_secret import CreateCephSecretCmd
from kvmagent.models.migrate import MigrateVmCmd
from kvmagent.statecapture import StateCapture

VM = "0123456789abcdef0123456789abcdef"
SECRET = "fedcba98-7654-3210-fedc-ba9876543210"
KEY = "AQBmZ2VoAAAAABAAqmRC6cgT6T/ieSmFi6k0zB4I9bq8Eo5KnQ=="

ROOT = Disk(target="vda", path="/vol/root.qcow2")
DATA = Disk(target="vdb", path="/vol/data.qcow2", format="raw")
ISO = Disk(target="hdc", device="cdrom", bus="ide", path="/iso/x.iso", format="raw")
EMPTY_CDROM = Disk(target="hdd", device="cdrom", bus="ide")
RBD = Disk(target="vdc", source_type="network", rbd_name="pool/img", format="raw",
           rbd_hosts=[("10.0.0.1", 6789)], rbd_secret_uuid=SECRET)


# --- models -------------------------------------------------------------------------------


def test_migrate_cmd_defaults_and_refusals():
    cmd = MigrateVmCmd.model_validate({"vmUuid": VM, "destHostIp": "10.0.0.2"})
    assert (cmd.storage_migration_policy, cmd.timeout) == ("shared", 300)
    for bad, field in (({"destHostIp": "10.0.0.2; reboot"}, "destHostIp"),
                       ({"storageMigrationPolicy": "FullCopy"}, "storageMigrationPolicy"),
                       ({"timeout": 0}, "timeout")):
        with pytest.raises(ValidationError, match=field):
            MigrateVmCmd.model_validate({"vmUuid": VM, "destHostIp": "10.0.0.2", **bad})


def test_ceph_secret_cmd_never_shows_the_key():
    cmd = CreateCephSecretCmd.model_validate({"uuid": SECRET, "userKey": KEY})
    assert cmd.user_name == "admin"
    assert KEY not in repr(cmd) and KEY not in str(cmd)
    with pytest.raises(ValidationError) as err:
        CreateCephSecretCmd.model_validate({"uuid": SECRET, "userKey": "secret!not-base64"})
    msgs = [e["msg"] for e in err.value.errors()]
    assert msgs == ["Value error, not a base64 cephx key (value not shown)"]
    with pytest.raises(ValidationError, match="userName"):
        CreateCephSecretCmd.model_validate({"uuid": SECRET, "userKey": KEY,
                                            "userName": "admin key=x"})


# --- plan ---------------------------------------------------------------------------------


def test_shared_policy_copies_nothing():
    p = plan([ROOT, DATA, ISO, RBD], "shared")
    assert (p.flags, p.copy_disks, p.params) == (BASE_FLAGS, [], {})
    assert p.flags & libvirt.VIR_MIGRATE_LIVE and p.flags & libvirt.VIR_MIGRATE_PEER2PEER
    assert not p.flags & libvirt.VIR_MIGRATE_PERSIST_DEST  # zfleet domains stay transient


def test_copy_policy_copies_writable_file_disks_only():
    p = plan([ROOT, DATA, ISO, EMPTY_CDROM, RBD], "copy")
    assert p.flags == BASE_FLAGS | libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert p.params == {libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: ["vda", "vdb"]}
    # nothing local: a plain shared-storage migration
    assert plan([RBD, ISO], "copy").flags == BASE_FLAGS


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="storageMigrationPolicy"):
        plan([ROOT], "IncCopy")


# --- secret XML ---------------------------------------------------------------------------


def test_secret_xml_is_private_persistent_ceph_usage_without_the_key():
    root = ET.fromstring(ceph_secret_xml(SECRET, "admin", f"zfleet-ceph-{SECRET}"))
    assert (root.get("ephemeral"), root.get("private")) == ("no", "yes")
    assert root.findtext("uuid") == SECRET
    assert root.find("usage").get("type") == "ceph"
    assert root.findtext("usage/name") == f"zfleet-ceph-{SECRET}"
    assert "client.admin" in root.findtext("description")


# --- state capture around incoming migrations -----------------------------------------------


class FakeReporter:
    def __init__(self):
        self.sent = []

    def send(self, path, body):
        self.sent.append((path, body["vmUuid"], body["reason"]))


def capture() -> tuple[StateCapture, FakeReporter]:
    reporter = FakeReporter()
    return StateCapture(reporter, lambda: "host"), reporter


def test_a_failed_incoming_migration_is_no_crash():
    cap, reporter = capture()
    cap.on_event(DomainEvent(VM, "started", "migrated"))
    cap.on_event(DomainEvent(VM, "stopped", "failed"))  # aborted: the source still runs it
    assert reporter.sent == []


def test_after_an_incoming_migration_a_crash_is_reported():
    cap, reporter = capture()
    for kind in ("started", "resumed"):
        cap.on_event(DomainEvent(VM, kind, "migrated"))
    cap.on_event(DomainEvent(VM, "stopped", "failed"))
    assert reporter.sent == [("/kvm/reportvmcrash", VM, "failed")]


def test_the_source_reports_nothing_for_a_migration_it_announced():
    cap, reporter = capture()
    cap.expect(VM, "stopped")
    cap.on_event(DomainEvent(VM, "suspended", "1"))
    cap.on_event(DomainEvent(VM, "stopped", "migrated"))
    assert reporter.sent == []
