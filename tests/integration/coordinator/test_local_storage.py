"""CreateVmInstance on local storage with an SFTP backup storage: the image is
downloaded into the backup storage, pulled over ssh into the host's cache (the host's
key authorized by the coordinator), and the guest boots from a qcow2 backed by it."""

import shutil

import pytest

from devcluster import democloud
from devcluster.guestimage import MIN_MEMORY_MIB

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
             url=str(host.dir / "local-ps"))["inventory"]["uuid"]
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
    assert root["installPath"].startswith(str(host.dir / "local-ps"))
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

    api("DestroyVmInstance", uuid=vms[0]["uuid"])
    api("ExpungeVmInstance", uuid=vms[0]["uuid"])
    assert not host.run(["test", "-e", root["installPath"]], check=False).rc == 0
    refused = api.post("CreateVmInstance", name="nowhere", imageUuid=image["uuid"],
                       instanceOfferingUuid=offering, l3NetworkUuids=[l3],
                       primaryStorageUuidForRootVolume="0" * 32)
    assert not refused["success"] and "no host can take" in refused["error"]
