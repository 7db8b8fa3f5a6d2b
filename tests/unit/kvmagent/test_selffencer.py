"""The self-fencer's decision against libvirt's in-process test driver, with an injected
clock and a heartbeat store whose writes fail on demand: only the loss of BOTH the
storage and the coordinator for interval*maxAttempts fences, and only the domains with
an RBD disk in the fencer's pool."""

import json
import stat
import uuid

import libvirt
import pytest

from kvmagent.drivers.heartbeat import HeartbeatError, RadosTarget, heartbeat_object
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.selffencer import (
    FencerConfig,
    SelfFencer,
    SelfFencers,
    rbd_disks_in_pool,
)

KEY = "QVFCL2xKdGxBQUFBQUJBQVpQSVRITG9aeVp0bHRlQT09"
POOL = "pool-a"
TARGET = RadosTarget(POOL, ("10.0.0.1:6789",), "admin", KEY)
CONFIG = FencerConfig(uuid.uuid4().hex, uuid.uuid4().hex, TARGET, interval=1.0,
                      max_attempts=5)  # grace 5 s


def domain_xml(name: str, rbd: str | None = None) -> str:
    disk = ""
    if rbd:
        disk = (f"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
                f"<source protocol='rbd' name='{rbd}'><host name='10.0.0.1' port='6789'/>"
                f"</source><target dev='vda' bus='virtio'/></disk>")
    return (f"<domain type='test'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu>"
            f"<os><type arch='x86_64'>hvm</type></os><devices>{disk}</devices></domain>")


class Store:
    """A heartbeat store that records writes, or fails them while ``failing``."""

    def __init__(self, target, timeout):
        self.target = target
        self.failing = False
        self.writes: list[dict] = []
        self.closed = False

    def write(self, name, payload):
        if self.failing:
            raise HeartbeatError(f"writing {self.target.pool}/{name}: timed out")
        self.writes.append({"name": name, **payload})

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def conn():
    lv = LibvirtConnection("test:///default", lambda _event: None)
    lv.open()
    made = []

    def start(name, rbd=None):
        made.append(name)
        return lv.conn.createXML(domain_xml(name, rbd))

    lv.start = start
    try:
        yield lv
    finally:
        for name in made:
            try:
                lv.conn.lookupByName(name).destroy()
            except libvirt.libvirtError:
                pass
        lv.close()


class Rig:
    """A fencer (not started: the tests call ``tick``) with its clock, the time of the
    coordinator's last contact, and the stores it made."""

    def __init__(self, conn):
        self.clock = Clock()
        self.contact_at = self.clock.now
        self.stores: list[Store] = []
        self.fencer = SelfFencer(CONFIG, conn, lambda: self.contact_at, self.clock,
                                 self._store)

    def _store(self, target, timeout):
        self.stores.append(Store(target, timeout))
        return self.stores[-1]

    def tick(self, after: float = 0.0):
        self.clock.now += after
        self.fencer.tick()


@pytest.fixture
def rig(conn):
    return Rig(conn)


def running(conn, name) -> bool:
    try:
        return bool(conn.conn.lookupByName(name).isActive())
    except libvirt.libvirtError:
        return False


def test_only_rbd_disks_in_the_pool_are_selected():
    assert rbd_disks_in_pool(domain_xml("a", f"{POOL}/vm-root"), POOL) == [f"{POOL}/vm-root"]
    assert rbd_disks_in_pool(domain_xml("b", f"{POOL}x/vm-root"), POOL) == []
    assert rbd_disks_in_pool(domain_xml("c"), POOL) == []


def test_lost_storage_and_coordinator_fences_the_pools_vms_only(conn, rig):
    ours, other_pool, local = (uuid.uuid4().hex for _ in range(3))
    conn.start(ours, f"{POOL}/vm-root")
    conn.start(other_pool, "pool-b/vm-root")
    conn.start(local)
    rig.tick()
    assert rig.stores[0].writes[-1]["counter"] == 1
    rig.stores[0].failing = True

    rig.tick()  # the first failed write: the grace starts now
    rig.tick(after=4.9)
    assert running(conn, ours) and rig.fencer.state.fenced_at is None

    rig.tick(after=0.2)  # storage and coordinator lost for 5.1 s
    assert not running(conn, ours)
    assert running(conn, other_pool) and running(conn, local)
    assert rig.fencer.state.fenced_vms == [ours] and rig.fencer.state.fenced_at is not None
    status = rig.fencer.status()
    assert status["fenced_vms"] == [ours] and status["failing_since"] is not None

    # it keeps checking: an rbd VM started while the host is still cut off goes too
    late = uuid.uuid4().hex
    conn.start(late, f"{POOL}/data")
    rig.tick(after=1)
    assert not running(conn, late) and rig.fencer.state.fenced_vms == [ours, late]


def test_contact_with_the_coordinator_alone_prevents_fencing(conn, rig):
    vm = uuid.uuid4().hex
    conn.start(vm, f"{POOL}/vm-root")
    rig.tick()
    rig.stores[0].failing = True
    for _ in range(30):  # 30 s of failed writes, the coordinator pinging every second
        rig.clock.now += 1
        rig.contact_at = rig.clock.now - 0.5
        rig.tick()
    assert running(conn, vm) and rig.fencer.state.fenced_at is None
    assert rig.fencer.state.failing_since is not None

    rig.tick(after=5)  # the pings stop too: now it fences
    assert not running(conn, vm)


def test_storage_alone_prevents_fencing_and_a_recovery_resets_the_grace(conn, rig):
    vm = uuid.uuid4().hex
    conn.start(vm, f"{POOL}/vm-root")
    for _ in range(30):  # no contact for 30 s, but the heartbeat is written
        rig.tick(after=1)
    assert running(conn, vm) and rig.fencer.state.last_write_ok is not None
    assert [w["counter"] for w in rig.stores[0].writes] == list(range(1, 31))
    assert rig.stores[0].writes[0]["name"] == heartbeat_object(CONFIG.host_uuid)

    store = rig.stores[0]
    store.failing = True
    rig.tick(after=1)  # failing since now
    store.failing = False
    rig.tick(after=4)  # one good write ends the failure
    store.failing = True
    rig.tick(after=4)  # failing again, for 0 s
    assert not rig.fencer.should_fence(rig.clock.now)
    assert running(conn, vm)


def test_setups_persist_privately_and_are_re_adopted(conn, tmp_path):
    clock = Clock()
    stores = []

    def factory(target, timeout):
        stores.append(Store(target, timeout))
        return stores[-1]

    fast = FencerConfig(uuid.uuid4().hex, uuid.uuid4().hex, TARGET, 0.1, 3)
    fencers = SelfFencers(tmp_path / "ha", conn, clock, factory)
    try:
        first = fencers.setup(fast)
        assert fencers.setup(fast) is first  # idempotent: the same fencer
        moved = FencerConfig(fast.ps_uuid, fast.host_uuid, TARGET, 0.2, 3)
        assert fencers.setup(moved) is first and first.config == moved  # reconfigured
        assert stat.S_IMODE(fencers.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(fencers.path.parent.stat().st_mode) == 0o700
        assert KEY in fencers.path.read_text()
        assert KEY not in repr(moved)
    finally:
        fencers.close()
    assert stores and all(s.closed for s in stores)

    again = SelfFencers(tmp_path / "ha", conn, clock, factory)
    try:
        assert again.adopt() == 1
        assert again.get(fast.ps_uuid).config == moved
        assert again.last_contact() == clock.now  # contact counts from the (re)start
        assert again.cancel(fast.ps_uuid) is True
        assert again.cancel(fast.ps_uuid) is False  # idempotent
        assert json.loads(again.path.read_text()) == {}
    finally:
        again.close()
