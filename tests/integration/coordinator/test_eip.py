"""Distributed EIPs through the API: a "public" client reaches a real guest at its EIP;
detached, it does not; the EIP follows the VM when it migrates."""

import pytest

from devcluster import procs

pytestmark = pytest.mark.integration

PUBLIC = "172.30.9"


def _reaches(client, ip: str) -> bool:
    return client.run(["ping", "-c", "1", "-W", "2", ip], check=False).rc == 0


def test_an_eip_reaches_its_vm_and_follows_it(cloud, simhost_factory):
    api = cloud.api
    client = simhost_factory(roles=("public",))  # the public network's router and client
    client.run(["ip", "addr", "add", f"{PUBLIC}.1/24", "dev", client.nics["public"]])
    l2 = api("CreateL2NoVlanNetwork", name="public", zoneUuid=cloud.ids.zone,
             physicalInterface=cloud.hosts[0].nics["public"])["inventory"]["uuid"]
    api("AttachL2NetworkToCluster", l2NetworkUuid=l2, clusterUuid=cloud.ids.cluster)
    l3 = api("CreateL3Network", name="public-l3", l2NetworkUuid=l2)["inventory"]["uuid"]
    api("AddIpRange", l3NetworkUuid=l3, name="pub", startIp=f"{PUBLIC}.100",
        endIp=f"{PUBLIC}.150", netmask="255.255.255.0", gateway=f"{PUBLIC}.1")
    vm = cloud.create_vm("public-web")
    cloud.wait_console(vm["uuid"], lambda r: r.ip(), "lease")
    vip = api("CreateVip", name="vip1", l3NetworkUuid=l3)["inventory"]
    assert vip["ip"] == f"{PUBLIC}.100"
    eip = api("CreateEip", name="eip1", vipUuid=vip["uuid"],
              vmNicUuid=vm["vmNics"][0]["uuid"])["inventory"]
    assert eip["guestIp"] == vm["vmNics"][0]["ip"]
    procs.wait_for(lambda: _reaches(client, vip["ip"]), 20, "the VM at its EIP")

    api("DetachEip", uuid=eip["uuid"])
    assert not _reaches(client, vip["ip"])
    api("AttachEip", eipUuid=eip["uuid"], vmNicUuid=vm["vmNics"][0]["uuid"])
    procs.wait_for(lambda: _reaches(client, vip["ip"]), 20, "the VM at its EIP again")

    moved = api("MigrateVm", vmInstanceUuid=vm["uuid"])["inventory"]
    assert moved["hostUuid"] != vm["hostUuid"]
    procs.wait_for(lambda: _reaches(client, vip["ip"]), 20, "the EIP on the new host")
    old = next(h for h in cloud.hosts if h is not cloud.host_of(vm["uuid"]))
    assert not [ns for ns in old.run(["ip", "netns", "list"]).stdout.split()
                if ns.startswith("eip-")]

    busy = api.post("DeleteVip", uuid=vip["uuid"])
    assert not busy["success"] and "EIP" in busy["error"]
    api("DeleteEip", uuid=eip["uuid"])
    api("DeleteVip", uuid=vip["uuid"])
    assert not _reaches(client, vip["ip"])
    assert api.query("QueryVip") == [] and api.query("QueryEip") == []
