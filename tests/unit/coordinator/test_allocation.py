"""IPs and host capacity under parallel requests: never one IP twice, never over-commit."""

import threading

import pytest

from coordinator import allocator, ipam
from coordinator.api import ApiError
from coordinator.db import new_uuid


def _parallel(n, fn):
    results, errors = [], []

    def run():
        try:
            results.append(fn())
        except ApiError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.fixture
def l3(coordinator):
    zone = coordinator("CreateZone", name="z")["inventory"]["uuid"]
    l2 = coordinator("CreateL2NoVlanNetwork", name="l2", zoneUuid=zone,
                     physicalInterface="eth1")["inventory"]["uuid"]
    l3 = coordinator("CreateL3Network", name="l3", l2NetworkUuid=l2)["inventory"]["uuid"]
    coordinator("AddIpRange", l3NetworkUuid=l3, name="r", startIp="10.5.0.10",
                endIp="10.5.0.29", netmask="255.255.255.0", gateway="10.5.0.1")
    return zone, l2, l3


def test_ips_are_the_lowest_free_and_never_given_twice(coordinator, l3):
    db, l3_uuid = coordinator.ctx.db, l3[2]
    ips, errors = _parallel(25, lambda: ipam.allocate(db, l3_uuid, new_uuid())["ip"])
    assert len(ips) == 20 and len(set(ips)) == 20
    assert sorted(ips, key=ipam.ip_int)[0] == "10.5.0.10"
    assert len(errors) == 5 and all("no free IP" in e for e in errors)
    owner = db.find("used_ip", "ip = '10.5.0.15'")[0]["owner_uuid"]
    ipam.release(db, owner)
    assert ipam.allocate(db, l3_uuid, "x" * 32)["ip"] == "10.5.0.15"  # the gap is reused


def test_static_ip_is_checked(coordinator, l3):
    db, l3_uuid = coordinator.ctx.db, l3[2]
    assert ipam.allocate(db, l3_uuid, "a" * 32, wanted="10.5.0.20")["ip"] == "10.5.0.20"
    with pytest.raises(ApiError, match="in use"):
        ipam.allocate(db, l3_uuid, "b" * 32, wanted="10.5.0.20")
    with pytest.raises(ApiError, match="no IP range"):
        ipam.allocate(db, l3_uuid, "b" * 32, wanted="10.5.1.20")


def test_parallel_allocations_never_overcommit_a_host(coordinator, l3):
    ctx = coordinator.ctx
    zone, l2, _ = l3
    cluster = coordinator("CreateCluster", name="c", zoneUuid=zone)["inventory"]["uuid"]
    ps = new_uuid()
    ctx.db.insert("primary_storage", {"uuid": ps, "name": "ps", "zone_uuid": zone,
                                      "type": "Ceph", "url": "ceph", "fsid": "f"})
    ctx.db.conn().execute("INSERT INTO ps_cluster VALUES (?, ?)", (ps, cluster))
    ctx.db.conn().execute("INSERT INTO l2_cluster VALUES (?, ?)", (l2, cluster))
    coordinator("UpdateGlobalConfig", category="host", name="cpu.overProvisioning.ratio",
                value="2")
    coordinator("UpdateGlobalConfig", category="kvm", name="reservedMemory", value="1G")
    for name in ("h1", "h2"):
        ctx.db.insert("host", {"uuid": new_uuid(), "name": name, "zone_uuid": zone,
                               "cluster_uuid": cluster, "management_ip": f"10.9.0.{name[1]}",
                               "status": "Connected", "cpu_num": 4, "total_memory": 9 << 30,
                               "reserved_memory": 512 << 20})
    # each host: 8 vCPUs (4 x 2), 8 GiB (9 - 1 reserved): 4 VMs of 2 vCPUs / 1 GiB
    need = allocator.Need(2, 1 << 30, (l2,), strategy="LeastVmPreferredHostAllocatorStrategy")

    def one():
        with ctx.db.tx():
            return allocator.allocate(ctx, need, lambda p: True)[0]["name"]

    hosts, errors = _parallel(12, one)
    assert sorted(hosts) == ["h1"] * 4 + ["h2"] * 4
    assert len(errors) == 4 and all("vCPUs free" in e for e in errors), errors
    for h in ctx.db.find("host"):
        assert h["allocated_cpu"] == 8 and h["allocated_memory"] == 4 << 30
    with pytest.raises(ApiError, match="not attached to L2"):
        allocator.allocate(ctx, allocator.Need(1, 1 << 20, (new_uuid(),)), lambda p: True)
