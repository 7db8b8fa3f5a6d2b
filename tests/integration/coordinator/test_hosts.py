"""Host tracking with real agents: connect, missed pings, reconnection, a replaced agent."""

import pytest

from coordinator.services import hosts as hostsmod
from devcluster.kvmhost import start_kvmagent
from tests.fixtures.kvm import AGENT_FLAGS

pytestmark = pytest.mark.integration


def test_pings_track_a_host_through_agent_loss_and_replacement(served_coordinator, kvm_hosts):
    api, _ = served_coordinator
    [host] = kvm_hosts(1)
    zone = api("CreateZone", name="z")["inventory"]["uuid"]
    cluster = api("CreateCluster", name="c", zoneUuid=zone)["inventory"]["uuid"]
    inv = api("AddKVMHost", name="h", managementIp=host.mgmt_address,
              clusterUuid=cluster)["inventory"]
    assert inv["status"] == "Connected" and inv["cpuNum"] > 0 and inv["totalMemory"] > 0
    again = api.post("AddKVMHost", name="h2", managementIp=host.mgmt_address,
                     clusterUuid=cluster)
    assert not again["success"] and "managementIp" in again["error"]

    def status() -> str:
        return api.query("QueryHost", uuid=inv["uuid"])[0]["status"]

    api("UpdateGlobalConfig", category="host", name="ping.maxFailure", value="2")
    host.stop_daemon("kvmagent")
    hostsmod.ping_all(api.ctx)
    assert status() == "Connected"  # one miss is not a loss
    hostsmod.ping_all(api.ctx)
    assert status() == "Disconnected"
    assert "unreachable" in api.query("QueryHost", uuid=inv["uuid"])[0]["lastError"]

    start_kvmagent(host, *AGENT_FLAGS)  # same data dir: it still knows its hostUuid
    hostsmod.ping_all(api.ctx)
    assert status() == "Connected"

    # a replaced agent (a re-installed host: no identity) is connected again at once
    host.stop_daemon("kvmagent")
    for f in (host.dir / "data" / "kvmagent").glob("identity*.json"):
        f.unlink()
    start_kvmagent(host, *AGENT_FLAGS)
    ping = api.ctx.agents.call(hostsmod.agent_url({"management_ip": host.mgmt_address,
                                                   "agent_port": 7070}), "/host/ping", {})
    assert ping.get("hostUuid") != inv["uuid"]
    hostsmod.ping_all(api.ctx)
    ping = api.ctx.agents.call(hostsmod.agent_url({"management_ip": host.mgmt_address,
                                                   "agent_port": 7070}), "/host/ping", {})
    assert ping["hostUuid"] == inv["uuid"] and status() == "Connected"
