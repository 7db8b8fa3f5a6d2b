"""VM HA on a real kvmagent and a real Ceph cluster: the self-fencer's heartbeat object
moves, a peer scan tells Alive from Stale from Missing, setups survive an agent restart,
and a host cut from Ceph destroys its RBD guest (real qemu) only once the coordinator's
pings have stopped too."""

import json
import time
import uuid

import pytest

from devcluster import procs
from devcluster.kvmhost import KVMAGENT_PORT, start_kvmagent
from tests.fixtures.ceph import admin_key, mon_v1
from tests.fixtures.kvm import AGENT_FLAGS

pytestmark = pytest.mark.integration


def access(volume) -> dict:
    host, port = mon_v1(volume.cluster)
    return {"pool": volume.pool, "monHosts": [f"{host}:{port}"],
            "userKey": admin_key(volume.cluster)}


def read_heartbeat(volume, name: str) -> dict | None:
    import rados

    cluster = volume.cluster.rados()
    try:
        with cluster.open_ioctx(volume.pool) as ioctx:
            try:
                return json.loads(ioctx.read(name))
            except rados.ObjectNotFound:
                return None
    finally:
        cluster.shutdown()


def write_heartbeat(volume, name: str, body: dict) -> None:
    cluster = volume.cluster.rados()
    try:
        with cluster.open_ioctx(volume.pool) as ioctx:
            ioctx.write_full(name, json.dumps(body).encode())
    finally:
        cluster.shutdown()


def advancing(volume, name: str, timeout: float = 10) -> int:
    """Wait until the heartbeat counter moves; its value then."""
    first = procs.wait_for(lambda: read_heartbeat(volume, name), timeout, f"{name} written")
    return procs.wait_for(lambda: ((hb := read_heartbeat(volume, name))["counter"]
                                   > first["counter"] and hb["counter"]),
                          timeout, f"{name} counter moving past {first['counter']}")


def fencers(kvm) -> list[dict]:
    reply = kvm.call("/ha/selffencer/status").json()
    assert reply["success"], reply
    return reply["fencers"]


def test_heartbeat_scan_restart_and_bad_input(kvm_host, rbd_clone):
    kvm, ceph = kvm_host, access(rbd_clone)
    ps = uuid.uuid4().hex
    setup = {**ceph, "psUuid": ps, "hostUuid": kvm.host_uuid, "interval": 0.2,
             "maxAttempts": 5}
    for field, value in [("monHosts", ["10.0.0.1"]), ("monHosts", []),
                         ("pool", "a/b"), ("pool", "p\nq"), ("interval", 0), ("interval", True),
                         ("maxAttempts", 1000), ("psUuid", "../../etc"),
                         ("userKey", "not base64!")]:
        bad = kvm.call("/ha/selffencer/setup", {**setup, field: value})
        assert bad.status_code == 400 and bad.json()["error"].startswith(field), bad.text
        assert "not base64!" not in bad.text
    assert fencers(kvm) == []  # nothing started by a refused command

    reply = kvm.call("/ha/selffencer/setup", setup).json()
    assert reply["success"], reply
    name = reply["heartbeatObject"]
    assert name == f"zfleet-ha-{kvm.host_uuid}"
    counter = advancing(rbd_clone, name)
    hb = read_heartbeat(rbd_clone, name)
    assert hb["hostUuid"] == kvm.host_uuid and isinstance(hb["time"], float)
    [before] = fencers(kvm)
    assert kvm.call("/ha/selffencer/setup", setup).json()["success"]
    [status] = fencers(kvm)  # the same fencer: its counter went on
    assert status["psUuid"] == ps and status["counter"] >= before["counter"] >= counter
    assert status["lastWriteOk"] and status["failingSince"] is None

    scan = {**ceph, "targetHostUuid": kvm.host_uuid, "targetIp": kvm.host.mgmt_address,
            "targetPort": KVMAGENT_PORT, "window": 5, "interval": 0.1}
    alive = kvm.call_async("/ha/scanhost", scan)
    assert alive["success"], alive
    assert alive["reachable"] is True and alive["heartbeat"] == "Alive", alive
    assert alive["counter"] > counter and alive["lastWriteTime"]

    nobody = uuid.uuid4().hex  # an object nobody writes, on a port nobody listens at
    write_heartbeat(rbd_clone, f"zfleet-ha-{nobody}", {"hostUuid": nobody, "counter": 7,
                                                       "time": 1.5})
    closed = {**scan, "targetHostUuid": nobody, "targetPort": procs.free_port(),
              "targetIp": mon_v1(rbd_clone.cluster)[0], "window": 1, "interval": 0.2}
    started = time.monotonic()
    stale = kvm.call_async("/ha/scanhost", closed)
    assert time.monotonic() - started >= 1
    assert stale["heartbeat"] == "Stale" and stale["counter"] == 7, stale
    assert stale["reachable"] is False and stale["lastWriteTime"] == 1.5
    missing = kvm.call_async("/ha/scanhost", {**closed, "targetHostUuid": uuid.uuid4().hex})
    assert missing["heartbeat"] == "Missing" and missing["counter"] is None, missing
    assert "no heartbeat object" in missing["heartbeatError"]
    dark = kvm.call_async("/ha/scanhost", {**closed, "monHosts": [
        f"{mon_v1(rbd_clone.cluster)[0]}:{procs.free_port()}"]})
    assert dark["heartbeat"] == "Missing" and "timed out" in dark["heartbeatError"], dark
    bad = kvm.post_async("/ha/scanhost", {**scan, "window": 0})
    assert bad.status_code == 400 and bad.json()["error"].startswith("window")

    # an agent restart re-adopts the fencer: the heartbeat keeps moving
    kvm.host.stop_daemon("kvmagent")
    before = read_heartbeat(rbd_clone, name)["counter"]
    time.sleep(0.5)
    assert read_heartbeat(rbd_clone, name)["counter"] == before  # really stopped
    start_kvmagent(kvm.host, *AGENT_FLAGS)
    [status] = fencers(kvm)
    assert status["psUuid"] == ps and status["interval"] == 0.2
    advancing(rbd_clone, name)

    for _ in range(2):  # cancelling an unknown fencer is a success too
        assert kvm.call("/ha/selffencer/cancel", {"psUuid": ps}).json()["success"]
    assert fencers(kvm) == []
    stopped = read_heartbeat(rbd_clone, name)["counter"]
    time.sleep(0.5)
    assert read_heartbeat(rbd_clone, name)["counter"] == stopped

    logs = [*kvm.host.dir.glob("log/*"), *kvm.host.dir.glob("logs/*")]
    assert logs and not [f for f in logs if ceph["userKey"] in f.read_text(errors="replace")]


def test_a_host_cut_from_ceph_fences_its_rbd_vm_once_the_pings_stop(kvm_host, rbd_clone):
    kvm, ceph = kvm_host, access(rbd_clone)
    secret = str(uuid.uuid4())
    assert kvm.call("/vm/createcephsecret",
                    {"uuid": secret, "userKey": ceph["userKey"]}).json()["success"]
    cmd = kvm.start_cmd(rootVolume=rbd_clone.volume_to(secret))
    vm = cmd["vmInstanceUuid"]
    assert kvm.call_async("/vm/start", cmd)["success"]
    interval, attempts = 0.3, 4
    grace = interval * attempts
    reply = kvm.call("/ha/selffencer/setup", {
        **ceph, "psUuid": uuid.uuid4().hex, "hostUuid": kvm.host_uuid,
        "interval": interval, "maxAttempts": attempts}).json()
    assert reply["success"], reply
    advancing(rbd_clone, reply["heartbeatObject"])

    def inside(path: str) -> dict:
        """A command from inside the host (its mgmt link is down): loopback."""
        out = kvm.host.run(["curl", "-sS", "-m", "5", "-X", "POST", "-H",
                            "Content-Type: application/json", "-d", "{}",
                            f"http://127.0.0.1:{KVMAGENT_PORT}{path}"]).stdout
        return json.loads(out)

    def state() -> str:
        return kvm.host.run(["virsh", "-c", "qemu:///system", "domstate", vm],
                            check=False).stdout.strip()

    assert state() == "running"
    kvm.host.run(["ip", "link", "set", "dev", "eth0", "down"])  # Ceph is on the mgmt net
    try:
        # the coordinator still pings: storage alone lost, nothing is fenced
        deadline = time.monotonic() + grace * 3 + 2
        while time.monotonic() < deadline:
            assert inside("/host/ping")["success"]
            time.sleep(interval)
        [status] = inside("/ha/selffencer/status")["fencers"]
        assert status["failingSince"] is not None, status  # the writes really fail
        assert state() == "running" and status["fencedVms"] == []

        # the pings stop: the host fences itself
        cut = time.monotonic()
        procs.wait_for(lambda: state() != "running", grace + 30, "the fenced VM gone",
                       interval=0.1)
        fenced_after = time.monotonic() - cut
        # the fencer records the VM once libvirt's destroy call has returned
        status = procs.wait_for(lambda: (s := inside("/ha/selffencer/status")["fencers"][0])[
            "fencedVms"] and s, 10, "the fencing recorded")
        assert status["fencedVms"] == [vm] and status["fencedAt"], status
        print(f"fenced {fenced_after:.1f}s after the last ping (grace {grace:.1f}s)")
    finally:
        kvm.host.run(["ip", "link", "set", "dev", "eth0", "up"])
    # storage back: the heartbeat moves again and nothing is restarted
    procs.wait_for(lambda: fencers(kvm)[0]["failingSince"] is None, 15, "heartbeat back")
    assert state() != "running"
