"""CreateVmInstance on local storage with an SFTP backup storage: the image is
downloaded into the backup storage, pulled over ssh into the host's cache (the host's
key authorized by the coordinator), and the guest boots from a qcow2 backed by it."""

import shutil
from pathlib import Path

import pytest

from devcluster import democloud
from devcluster.guestimage import MIN_MEMORY_MIB
from devcluster.kvmhost import storage_dir

pytestmark = pytest.mark.integration


def test_a_vm_on_local_storage_boots_from_an_image_pulled_from_sftp(
        served_coordinator, kvm_hosts, simhost_factory, sftpbs_host, guest_disk):
    api, _ = served_coordinator
    democloud.add_router(simhost_factory(roles=("data",)))
    [host] = kvm_hosts(1)
    shutil.copyfile(guest_disk.qcow2, sftpbs_host.images.directory / "guest.qcow2")
    zone = api("CreateZone", name="z")["inventory"]["uuid"]
    cluster = api("CreateCluster", name="c", zoneUuid=zone)["inventory"]["uuid"]
    api("AddKVMHost", name=host.name, managementIp=host.mgmt_address, clusterUuid=cluster)
    l2 = api("CreateL2NoVlanNetwork", name="flat", zoneUuid=zone,
             physicalInterface=host.nics["data"])["inventory"]["uuid"]
    api("AttachL2NetworkToCluster", l2NetworkUuid=l2, clusterUuid=cluster)
    l3 = api("CreateL3Network", name="l3", l2NetworkUuid=l2)["inventory"]["uuid"]
    api("AddIpRangeByNetworkCidr", l3NetworkUuid=l3, name="r",
        networkCidr=f"{democloud.GUEST_NET}.0/24")
    api("AttachNetworkServiceToL3Network", l3NetworkUuid=l3,
        networkServices={"Flat": ["DHCP", "Userdata"]})
    ps = api("AddLocalPrimaryStorage", name="local", zoneUuid=zone,
             url=str(storage_dir(host) / "local-ps"))["inventory"]["uuid"]
    api("AttachPrimaryStorageToCluster", primaryStorageUuid=ps, clusterUuid=cluster)
    bs = api("AddSftpBackupStorage", name="sftp", hostname=sftpbs_host.host.mgmt_address,
             url=str(sftpbs_host.root))["inventory"]
    assert bs["type"] == "SftpBackupStorage" and bs["totalCapacity"] > 0
    api("AttachBackupStorageToZone", backupStorageUuid=bs["uuid"], zoneUuid=zone)
    image = api("AddImage", name="guest", url=f"{sftpbs_host.images.url}/guest.qcow2",
                backupStorageUuids=[bs["uuid"]])["inventory"]
    assert image["status"] == "Ready" and len(image["md5"]) == 32
    assert image["backupStorageRefs"][0]["installPath"].startswith(str(sftpbs_host.root))
    offering = api("CreateInstanceOffering", name="o", cpuNum=1,
                   memorySize=MIN_MEMORY_MIB << 20)["inventory"]["uuid"]

    vms = [api("CreateVmInstance", name=f"local-{i}", imageUuid=image["uuid"],
               instanceOfferingUuid=offering, l3NetworkUuids=[l3])["inventory"]
           for i in range(2)]
    root = vms[0]["allVolumes"][0]
    assert root["installPath"].startswith(str(storage_dir(host) / "local-ps"))
    [cache] = api.ctx.db.find("image_cache", "image_uuid = ?", (image["uuid"],))
    assert cache["host_uuid"] == vms[0]["hostUuid"]  # pulled once, for both VMs
    info = host.run(["qemu-img", "info", "-U", root["installPath"]]).stdout
    assert cache["install_path"] in info  # the root volume is backed by the cache
    for vm in vms:
        console = host.dir / "data" / "kvmagent" / "consoles" / f"{vm['uuid']}.log"
        from devcluster import procs
        from devcluster.guestconsole import parse_console
        procs.wait_for(lambda c=console, vm=vm: c.exists() and parse_console(
            c.read_text()).ip() == vm["vmNics"][0]["ip"], 120, f"{vm['name']}'s lease")

    # an ISO goes into a running VM's cdrom drive (pulled into the host's cache first)
    iso_file = sftpbs_host.images.directory / "tools.iso"
    iso_file.write_bytes(bytes(0x8001) + b"CD001" + bytes((1 << 20) - 0x8006))
    iso = api("AddImage", name="tools", url=f"{sftpbs_host.images.url}/tools.iso",
              format="iso", mediaType="ISO", backupStorageUuids=[bs["uuid"]])["inventory"]
    refused = api.post("AttachIsoToVmInstance", vmInstanceUuid=vms[1]["uuid"],
                       isoUuid=image["uuid"])
    assert not refused["success"] and "not a Ready ISO" in refused["error"]
    api("AttachIsoToVmInstance", vmInstanceUuid=vms[1]["uuid"], isoUuid=iso["uuid"])

    def cdrom() -> str:
        out = host.run(["virsh", "-c", "qemu:///system", "domblklist", vms[1]["uuid"]]).stdout
        return next(line.split()[1] for line in out.splitlines() if line.startswith(" hdc"))

    assert cdrom().endswith(f"{iso['uuid']}.iso")
    api("DetachIsoFromVmInstance", vmInstanceUuid=vms[1]["uuid"])
    assert cdrom() == "-"

    api("DestroyVmInstance", uuid=vms[0]["uuid"])
    api("ExpungeVmInstance", uuid=vms[0]["uuid"])
    assert not host.run(["test", "-e", root["installPath"]], check=False).rc == 0
    refused = api.post("CreateVmInstance", name="nowhere", imageUuid=image["uuid"],
                       instanceOfferingUuid=offering, l3NetworkUuids=[l3],
                       primaryStorageUuidForRootVolume="0" * 32)
    assert not refused["success"] and "no host can take" in refused["error"]


def test_a_stopped_vms_local_root_volume_moves_to_another_host_and_starts_there(
        served_coordinator, simhost_factory, libvirtd_factory, sftpbs_host, guest_disk,
        tmp_path):
    """Each host has its own local storage at the same path (a bind mount in its mount
    namespace, as separate machines would); the volume really travels over ssh."""
    from devcluster import procs
    from devcluster.guestconsole import parse_console
    from devcluster.sshd import authorized_keys, start_sshd
    from tests.fixtures.kvm import AGENT_FLAGS

    api, _ = served_coordinator
    democloud.add_router(simhost_factory(roles=("data",)))
    ps_path = tmp_path / "local-ps"  # one path; each host mounts its own directory there
    ps_path.mkdir()
    hosts = []
    for _ in range(2):
        host = simhost_factory(roles=("data", "public"))
        own = host.dir / "disk"
        own.mkdir()
        host.bind(own, str(ps_path))
        libvirtd_factory(host)
        start_sshd(host)
        hosts.append(democloud.prepare_kvm_host(
            host, *AGENT_FLAGS, "--authorized-keys", str(authorized_keys(host)),
            "--storage-roots", f"{storage_dir(host)},{ps_path}"))
    shutil.copyfile(guest_disk.qcow2, sftpbs_host.images.directory / "guest.qcow2")
    zone = api("CreateZone", name="z")["inventory"]["uuid"]
    cluster = api("CreateCluster", name="c", zoneUuid=zone)["inventory"]["uuid"]
    for host in hosts:
        api("AddKVMHost", name=host.name, managementIp=host.mgmt_address,
            clusterUuid=cluster)
    l2 = api("CreateL2NoVlanNetwork", name="flat", zoneUuid=zone,
             physicalInterface=hosts[0].nics["data"])["inventory"]["uuid"]
    api("AttachL2NetworkToCluster", l2NetworkUuid=l2, clusterUuid=cluster)
    l3 = api("CreateL3Network", name="l3", l2NetworkUuid=l2)["inventory"]["uuid"]
    api("AddIpRangeByNetworkCidr", l3NetworkUuid=l3, name="r",
        networkCidr=f"{democloud.GUEST_NET}.0/24")
    api("AttachNetworkServiceToL3Network", l3NetworkUuid=l3,
        networkServices={"Flat": ["DHCP"]})
    ps = api("AddLocalPrimaryStorage", name="local", zoneUuid=zone,
             url=str(ps_path))["inventory"]["uuid"]
    api("AttachPrimaryStorageToCluster", primaryStorageUuid=ps, clusterUuid=cluster)
    bs = api("AddSftpBackupStorage", name="sftp", hostname=sftpbs_host.host.mgmt_address,
             url=str(sftpbs_host.root))["inventory"]["uuid"]
    api("AttachBackupStorageToZone", backupStorageUuid=bs, zoneUuid=zone)
    image = api("AddImage", name="guest", url=f"{sftpbs_host.images.url}/guest.qcow2",
                backupStorageUuids=[bs])["inventory"]["uuid"]
    offering = api("CreateInstanceOffering", name="o", cpuNum=1,
                   memorySize=MIN_MEMORY_MIB << 20)["inventory"]["uuid"]
    vm = api("CreateVmInstance", name="mover", imageUuid=image,
             instanceOfferingUuid=offering, l3NetworkUuids=[l3])["inventory"]
    src = next(h for h in hosts if api.query("QueryHost", uuid=vm["hostUuid"])[0][
        "managementIp"] == h.mgmt_address)
    dst = next(h for h in hosts if h is not src)
    dst_uuid = api.query("QueryHost", managementIp=dst.mgmt_address)[0]["uuid"]
    root = vm["allVolumes"][0]

    busy = api.post("LocalStorageMigrateVolume", volumeUuid=root["uuid"],
                    destHostUuid=dst_uuid)
    assert not busy["success"] and "stop it first" in busy["error"]
    api("StopVmInstance", uuid=vm["uuid"])
    moved = api("LocalStorageMigrateVolume", volumeUuid=root["uuid"],
                destHostUuid=dst_uuid)["inventory"]
    assert moved["hostUuid"] == dst_uuid
    inside = Path(root["installPath"]).relative_to(ps_path)  # where each host really has it
    assert (dst.dir / "disk" / inside).exists() and not (src.dir / "disk" / inside).exists()
    api("StartVmInstance", uuid=vm["uuid"])
    assert api.query("QueryVmInstance", uuid=vm["uuid"])[0]["hostUuid"] == dst_uuid
    console = dst.dir / "data" / "kvmagent" / "consoles" / f"{vm['uuid']}.log"
    procs.wait_for(lambda: console.exists() and parse_console(console.read_text()).ip()
                   == vm["vmNics"][0]["ip"], 120, "the moved VM's lease on its new host")
