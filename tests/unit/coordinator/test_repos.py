"""Typed records over a real (temporary) sqlite database: rows written by the records
or by the dict API read back the same, JSON columns round-trip (``None`` too), a
misspelled field is refused naming it, and each table group's queries."""

import pytest

from coordinator.db import Database, NotFound, new_uuid
from coordinator.repos.gcjobs import GcJobs
from coordinator.repos.hosts import Host, Hosts
from coordinator.repos.images import ImageCache, ImageCaches, ImageCopies, ImageCopy, Images
from coordinator.repos.networks import (
    IpRanges,
    L2Clusters,
    L2Networks,
    L3Networks,
    UsedIp,
    UsedIps,
)
from coordinator.repos.record import from_row
from coordinator.repos.storage import BsZones, PsClusters
from coordinator.repos.vms import Vm, VmNic, VmNics, Vms
from coordinator.repos.volumes import Volume, Volumes

ZONE, CLUSTER = "a" * 32, "b" * 32


@pytest.fixture
def db(tmp_path):
    db = Database(tmp_path / "z.db")
    db.insert("zone", {"uuid": ZONE, "name": "z"})
    db.insert("cluster", {"uuid": CLUSTER, "name": "c", "zone_uuid": ZONE})
    yield db
    db.close()


def _host(name: str, ip: str, **fields) -> Host:
    return Host(uuid=new_uuid(), name=name, zone_uuid=ZONE, cluster_uuid=CLUSTER,
                management_ip=ip, **fields)


def test_a_record_reads_back_as_written_with_its_stamps(db):
    hosts = Hosts(db)
    host = _host("h1", "10.0.0.11", facts={"cpuModelName": "x"})
    hosts.insert(host)
    got = hosts.get(host.uuid)
    assert got.facts == {"cpuModelName": "x"} and got.status == "Connecting"
    assert got.created and got.updated and got.agent_url == "http://10.0.0.11:7070"
    assert got == Host(**{**host.__dict__, "created": got.created, "updated": got.updated})
    hosts.update(host.uuid, status="Connected", facts=None)
    got = hosts.get(host.uuid)
    assert (got.status, got.facts) == ("Connected", None)


def test_rows_written_as_dicts_read_as_records(db):
    uuid = new_uuid()
    db.insert("vm", {"uuid": uuid, "name": "v", "state": "Stopped",
                     "boot_order": ["CdRom", "HardDisk"]})
    vm = Vms(db).get(uuid)
    assert (vm.state, vm.boot_order, vm.host_uuid) == ("Stopped", ["CdRom", "HardDisk"], None)


def test_a_misspelled_field_is_refused_naming_it(db):
    hosts = Hosts(db)
    host = _host("h1", "10.0.0.11")
    hosts.insert(host)
    with pytest.raises(TypeError, match="Host has no field stauts"):
        hosts.update(host.uuid, stauts="Connected")
    with pytest.raises(TypeError):
        Host(uuid=new_uuid(), name="h", zone_uuid=ZONE, cluster_uuid=CLUSTER,
             managment_ip="10.0.0.1")
    assert hosts.get(host.uuid).status == "Connecting"


def test_columns_a_record_does_not_declare_are_left_and_missing_rows_said():
    row = {"uuid": "1" * 32, "name": "v", "added_by_a_later_migration": 1}
    assert from_row(Vm, row) == Vm(uuid="1" * 32, name="v")


def test_get_and_find_of_a_missing_row(db):
    with pytest.raises(NotFound, match="no vm with uuid"):
        Vms(db).get("9" * 32)
    assert Vms(db).find("9" * 32) is None


def test_host_queries(db):
    hosts = Hosts(db)
    h2, h1, h3 = (_host("h2", "10.0.0.12", status="Connected"),
                  _host("h1", "10.0.0.11", status="Connected"),
                  _host("h3", "10.0.0.13", status="Disconnected"))
    for h in (h2, h1, h3):
        hosts.insert(h)
    assert [h.name for h in hosts.in_cluster(CLUSTER)] == ["h1", "h2", "h3"]
    assert [h.name for h in hosts.in_cluster(CLUSTER, "Connected", exclude=h1.uuid)] == ["h2"]
    assert hosts.by_management_ip("10.0.0.13").uuid == h3.uuid
    assert hosts.by_management_ip("10.0.0.99") is None
    assert [h.name for h in hosts.with_status("Disconnected")] == ["h3"]
    assert len(hosts.all()) == 3
    hosts.take_capacity(h1.uuid, 2, 1 << 30)
    hosts.take_capacity(h1.uuid, 1, 1 << 20)
    got = hosts.get(h1.uuid)
    assert (got.allocated_cpu, got.allocated_memory) == (3, (1 << 30) + (1 << 20))
    hosts.release_capacity(h1.uuid, 1, 1 << 30)
    got = hosts.get(h1.uuid)
    assert (got.allocated_cpu, got.allocated_memory) == (2, 1 << 20)
    hosts.release_capacity(h1.uuid, 5, 1 << 30)  # never below 0
    got = hosts.get(h1.uuid)
    assert (got.allocated_cpu, got.allocated_memory) == (0, 0)


def test_vm_and_nic_queries(db):
    vms, nics = Vms(db), VmNics(db)
    host = new_uuid()
    running, stopped = (Vm(uuid=new_uuid(), name=n, host_uuid=host, state=s)
                        for n, s in (("r", "Running"), ("s", "Stopped")))
    vms.insert(running)
    vms.insert(stopped)
    assert [v.name for v in vms.on_host(host, ("Running",))] == ["r"]
    assert {v.name for v in vms.on_host(host)} == {"r", "s"}
    assert vms.in_state_since("Stopped", vms.get(stopped.uuid).updated) == [
        vms.get(stopped.uuid)]
    assert vms.in_state_since("Stopped", 0) == []
    vms.update(running.uuid, boot_order=["CdRom"], state="Stopped")
    assert vms.get(running.uuid).boot_order == ["CdRom"]
    l3 = new_uuid()
    for i in (1, 0):
        nics.insert(VmNic(uuid=new_uuid(), vm_uuid=running.uuid, l3_network_uuid=l3,
                          mac=f"fa:00:00:00:00:0{i}", device_id=i, ip=f"10.0.0.{10 + i}"))
    assert [n.device_id for n in nics.of_vm(running.uuid)] == [0, 1]
    assert len(nics.on_l3(l3)) == 2
    assert vms.count_by_host(("Running", "Stopped")) == {host: 2}
    assert vms.count_by_host(("Starting",)) == {}
    vms.delete(running.uuid)
    assert nics.of_vm(running.uuid) == []  # the NICs go with their VM


def test_a_vm_s_rows_deleted_with_its_root_volume_and_tags_its_data_volumes_detached(db):
    vms, volumes = Vms(db), Volumes(db)
    vm, other = Vm(uuid=new_uuid(), name="v"), Vm(uuid=new_uuid(), name="o")
    vms.insert(vm)
    vms.insert(other)
    ps = new_uuid()
    for name, kind, owner in (("root", "Root", vm), ("data", "Data", vm),
                              ("other", "Root", other)):
        volumes.insert(Volume(uuid=new_uuid(), name=name, type=kind, vm_uuid=owner.uuid,
                              ps_uuid=ps, device_id=0 if kind == "Root" else 1))
    for owner in (vm, other):
        db.insert("system_tag", {"uuid": new_uuid(), "resource_uuid": owner.uuid,
                                 "resource_type": "VmInstanceVO", "tag": "ha::NeverStop"})
    vms.delete_rows(vm.uuid)
    assert vms.find(vm.uuid) is None and vms.find(other.uuid) is not None
    left = {v.name: v for v in volumes.where()}
    assert set(left) == {"data", "other"}
    assert (left["data"].vm_uuid, left["data"].device_id) == (None, None)
    assert left["other"].vm_uuid == other.uuid
    assert [t["resource_uuid"] for t in db.find("system_tag")] == [other.uuid]


def test_volume_queries(db):
    volumes, vm, ps = Volumes(db), new_uuid(), new_uuid()
    for i, status in ((1, "Ready"), (0, "Ready"), (2, "Deleted")):
        volumes.insert(Volume(uuid=new_uuid(), name=f"v{i}", type="Root" if i == 0 else "Data",
                              vm_uuid=vm, ps_uuid=ps, device_id=i, status=status))
    assert [v.name for v in volumes.of_vm(vm)] == ["v0", "v1", "v2"]
    assert [v.name for v in volumes.of_vm(vm, "Ready")] == ["v0", "v1"]
    assert {v.name for v in volumes.on_storage(ps, but_status="Deleted")} == {"v0", "v1"}
    assert [v.name for v in volumes.in_status_since("Deleted", 1e12)] == ["v2"]
    assert volumes.get(volumes.of_vm(vm)[0].uuid).host_uuid == ""  # the column's default


def test_network_records_and_queries(db):
    l2 = new_uuid()
    db.insert("l2_network", {"uuid": l2, "name": "l2", "zone_uuid": ZONE,
                             "type": "L2NoVlanNetwork", "physical_interface": "eth0"})
    l3 = new_uuid()
    db.insert("l3_network", {"uuid": l3, "name": "l3", "zone_uuid": ZONE,
                             "l2_network_uuid": l2})
    assert L2Networks(db).get(l2).vlan is None
    net = L3Networks(db).get(l3)
    assert (net.dns, net.services, net.has_service("DHCP")) == ([], [], False)
    L3Networks(db).update(l3, dns=["10.0.0.1"], services=[{"type": "DHCP"}])
    net = L3Networks(db).get(l3)
    assert net.dns == ["10.0.0.1"] and net.has_service("DHCP")
    assert L3Networks(db).on_l2(l2) == [net]
    rng = new_uuid()
    db.insert("ip_range", {"uuid": rng, "name": "r", "l3_network_uuid": l3,
                           "start_ip": "10.0.0.10", "end_ip": "10.0.0.20",
                           "netmask": "255.255.255.0", "gateway": "10.0.0.1",
                           "network_cidr": "10.0.0.0/24"})
    assert [r.uuid for r in IpRanges(db).of_l3(l3)] == [rng]
    used = UsedIps(db)
    owner = new_uuid()
    for ip, purpose in (("10.0.0.12", "VmNic"), ("10.0.0.10", "DHCP")):
        used.insert(UsedIp(uuid=new_uuid(), l3_network_uuid=l3, ip_range_uuid=rng, ip=ip,
                           ip_int=int(ip.rsplit(".", 1)[1]), owner_uuid=owner,
                           purpose=purpose))
    assert [u.ip for u in used.of_l3(l3)] == ["10.0.0.10", "10.0.0.12"]
    assert [u.ip for u in used.of_l3(l3, "DHCP")] == ["10.0.0.10"]
    assert used.by_ip(l3, "10.0.0.12").purpose == "VmNic"
    assert used.by_ip(l3, "10.0.0.13") is None
    assert len(used.of_owner(owner)) == 2
    assert [u.ip for u in used.in_range(rng, "VmNic")] == ["10.0.0.12"]
    assert used.ints_between(l3, 10, 12) == [10, 12]
    assert used.ints_between(l3, 11, 11) == []
    assert used.release(owner, new_uuid()) == 0  # another L3: nothing of it there
    assert used.release(owner, l3) == 2 and used.of_owner(owner) == []
    used.insert(UsedIp(uuid=new_uuid(), l3_network_uuid=l3, ip_range_uuid=rng,
                       ip="10.0.0.11", ip_int=11, owner_uuid=owner))
    assert used.release(owner) == 1 and used.of_l3(l3) == []


def test_l2_cluster_attachments(db):
    l2 = new_uuid()
    db.insert("l2_network", {"uuid": l2, "name": "l2", "zone_uuid": ZONE,
                             "type": "L2NoVlanNetwork", "physical_interface": "eth0"})
    l2s = L2Clusters(db)
    assert l2s.of(l2) == set()
    l2s.attach(l2, CLUSTER)
    l2s.attach(l2, CLUSTER)  # attached already: fine
    assert l2s.of(l2) == {CLUSTER}
    l2s.detach(l2, CLUSTER)
    assert l2s.of(l2) == set()


def test_image_copies_and_caches(db):
    image, bs, ps = new_uuid(), new_uuid(), new_uuid()
    db.insert("image", {"uuid": image, "name": "img", "url": "http://x/i", "format": "qcow2"})
    db.insert("backup_storage", {"uuid": bs, "name": "bs", "type": "Ceph", "url": "ceph"})
    db.insert("primary_storage", {"uuid": ps, "name": "ps", "type": "Ceph", "url": "ceph",
                                  "zone_uuid": ZONE})
    assert Images(db).get(image).status == "Downloading"
    copies = ImageCopies(db)
    copies.insert(ImageCopy(image_uuid=image, bs_uuid=bs))
    assert copies.update(image, bs, status="Ready", install_path="ceph://p/i") == 1
    copy = copies.get(image, bs)
    assert (copy.status, copy.install_path) == ("Ready", "ceph://p/i")
    assert copies.of_image(image, "Ready") == [copy] and copies.of_image(image, "Deleted") == []
    assert copies.in_status_since("Ready", copy.updated) == [copy]
    with pytest.raises(TypeError, match="ImageCopy has no field path"):
        copies.update(image, bs, path="x")
    copies.delete(image, bs)
    with pytest.raises(NotFound):
        copies.get(image, bs)
    caches = ImageCaches(db)
    caches.insert(ImageCache(uuid=new_uuid(), ps_uuid=ps, image_uuid=image,
                             install_path="ceph://c/i@cache", status="Ready"))
    assert caches.lookup(ps, "", image, "Ready").install_path == "ceph://c/i@cache"
    assert caches.lookup(ps, new_uuid(), image) is None


def test_ready_copies_caches_copied_to_a_host_and_forgotten(db):
    image, ceph, sftp, ps = new_uuid(), new_uuid(), new_uuid(), new_uuid()
    db.insert("image", {"uuid": image, "name": "img", "url": "http://x/i", "format": "qcow2"})
    db.insert("backup_storage", {"uuid": ceph, "name": "c", "type": "Ceph", "url": "ceph",
                                 "fsid": "f1"})
    db.insert("backup_storage", {"uuid": sftp, "name": "s", "type": "SftpBackupStorage",
                                 "url": "/bs"})
    db.insert("primary_storage", {"uuid": ps, "name": "ps", "type": "LocalStorage",
                                  "url": "/ps", "zone_uuid": ZONE})
    copies = ImageCopies(db)
    copies.insert(ImageCopy(image_uuid=image, bs_uuid=ceph, install_path="ceph://b/i",
                            status="Ready"))
    copies.insert(ImageCopy(image_uuid=image, bs_uuid=sftp, install_path="/bs/i"))
    assert copies.ready_on(image, "b.fsid = ?", ("f1",)) == [(ceph, "ceph://b/i")]
    assert copies.ready_on(image, "b.type = ?", ("SftpBackupStorage",)) == []  # not Ready
    caches = ImageCaches(db)
    host1, host2 = new_uuid(), new_uuid()
    caches.insert(ImageCache(uuid=new_uuid(), ps_uuid=ps, image_uuid=image, host_uuid=host1,
                             install_path="/ps/cache/i.qcow2", status="Ready", size=7))
    cache = db.find("image_cache", "host_uuid = ?", (host1,))[0]
    caches.copy_to_host(cache, host2, new_uuid())
    caches.copy_to_host(cache, host2, new_uuid())  # there already: stays as it is
    copied = caches.lookup(ps, host2, image, "Ready")
    assert (copied.install_path, copied.size) == ("/ps/cache/i.qcow2", 7)
    assert len(db.find("image_cache", "host_uuid = ?", (host2,))) == 1
    caches.forget(ps, host1, image)
    assert caches.lookup(ps, host1, image) is None and caches.lookup(ps, host2, image)


def test_storage_attachments_and_pending_gc_hosts(db):
    ps, bs, host = new_uuid(), new_uuid(), new_uuid()
    db.insert("primary_storage", {"uuid": ps, "name": "ps", "type": "Ceph", "url": "ceph",
                                  "zone_uuid": ZONE})
    db.insert("backup_storage", {"uuid": bs, "name": "bs", "type": "Ceph", "url": "ceph"})
    clusters = PsClusters(db)
    clusters.attach(ps, CLUSTER)
    clusters.attach(ps, CLUSTER)  # once
    assert db.find("ps_cluster", "ps_uuid = ?", (ps,)) == [
        {"ps_uuid": ps, "cluster_uuid": CLUSTER}]
    clusters.detach(ps, CLUSTER)
    assert db.find("ps_cluster", "ps_uuid = ?", (ps,)) == []
    BsZones(db).attach(bs, ZONE)
    BsZones(db).attach(bs, ZONE)
    assert db.find("bs_zone", "bs_uuid = ?", (bs,)) == [{"bs_uuid": bs, "zone_uuid": ZONE}]
    for host_uuid, status in ((host, "Pending"), (host, "Pending"), ("", "Pending"),
                              (new_uuid(), "Done")):
        db.insert("gc_job", {"uuid": new_uuid(), "name": "j", "host_uuid": host_uuid,
                             "path": "/p", "body_json": "{}", "status": status})
    assert GcJobs(db).hosts_with_pending() == [host]
