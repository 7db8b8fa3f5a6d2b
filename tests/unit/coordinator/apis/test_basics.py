"""The API over a real sqlite file: inventories, Query conditions, bad input, configs."""

import pytest


def test_create_query_and_delete_a_zone_tree(coordinator):
    zone = coordinator("CreateZone", name="zone1")["inventory"]
    assert zone["name"] == "zone1" and zone["state"] == "Enabled" and zone["createDate"]
    cluster = coordinator("CreateCluster", name="c1", zoneUuid=zone["uuid"])["inventory"]
    assert coordinator.query("QueryCluster", zoneUuid=zone["uuid"])[0]["uuid"] == \
        cluster["uuid"]
    refused = coordinator.post("DeleteZone", uuid=zone["uuid"])
    assert not refused["success"] and "cluster" in refused["error"]
    coordinator("DeleteCluster", uuid=cluster["uuid"])
    coordinator("DeleteZone", uuid=zone["uuid"])
    assert coordinator.query("QueryZone") == []


def test_query_operators_fields_sorting_and_count(coordinator):
    for name, mem in (("small", 64), ("medium", 256), ("large", 1024)):
        coordinator("CreateInstanceOffering", name=name, cpuNum=1, memorySize=mem << 20)

    def q(*conds, **extra):
        return coordinator("QueryInstanceOffering", conditions=[
            {"name": n, "op": o, "value": v} for n, o, v in conds], **extra)

    assert [i["name"] for i in q(("memorySize", ">=", 256 << 20), sortBy="memorySize")[
        "inventories"]] == ["medium", "large"]
    assert [i["name"] for i in q(("name", "~=", "%m%"), sortBy="name")["inventories"]] == \
        ["medium", "small"]
    assert [i["name"] for i in q(("name", "?=", ["small", "large"]), sortBy="name",
                                 sortDirection="desc")["inventories"]] == ["small", "large"]
    assert q(("name", "!=", "small"), fields=["name"])["inventories"][0].keys() == {"name"}
    assert q(count=True)["total"] == 3
    assert q(limit=1, start=1, sortBy="name", replyWithCount=True) == {
        "success": True, "error": "", "total": 3,
        "inventories": [q(("name", "=", "medium"))["inventories"][0]]}


@pytest.mark.parametrize("body, field", [
    ({"conditions": [{"name": "nope", "op": "=", "value": 1}]}, "conditions.0.name"),
    ({"conditions": [{"name": "name", "op": "DROP", "value": 1}]}, "conditions.0.op"),
    ({"conditions": [], "sortBy": "name; DROP TABLE zone"}, "sortBy"),
    ({"fields": ["nope"]}, "fields"),
    ({"limit": -1}, "limit"),
])
def test_bad_queries_name_the_field(coordinator, body, field):
    coordinator("CreateZone", name="z")
    reply = coordinator.post("QueryZone", **body)
    assert not reply["success"] and field in reply["error"], reply
    assert len(coordinator.query("QueryZone")) == 1


@pytest.mark.parametrize("api, body, field", [
    ("CreateZone", {"name": "a\nb"}, "name"),
    ("CreateZone", {"name": "z", "typo": 1}, "typo"),
    ("CreateCluster", {"name": "c", "zoneUuid": "../../etc"}, "zoneUuid"),
    ("CreateCluster", {"name": "c", "zoneUuid": "0" * 32}, "zoneUuid"),
    ("CreateInstanceOffering", {"name": "o", "cpuNum": "two", "memorySize": 1 << 30},
     "cpuNum"),
    ("CreateInstanceOffering", {"name": "o", "cpuNum": 1, "memorySize": (1 << 30) + 1},
     "memorySize"),
    ("AddIpRange", {"l3NetworkUuid": "0" * 32, "name": "r", "startIp": "10.0.0.300",
                    "endIp": "10.0.0.9", "netmask": "255.255.255.0", "gateway": "10.0.0.1"},
     "startIp"),
])
def test_bad_input_names_the_field_and_writes_nothing(coordinator, api, body, field):
    reply = coordinator.post(api, **body)
    assert not reply["success"] and field in reply["error"], reply
    assert coordinator.query("QueryZone") == []
    assert coordinator.query("QueryCluster") == []


def test_unknown_api_and_bad_json(coordinator):
    client = coordinator.coordinator.app.test_client()
    assert client.post("/api/NoSuchApi", json={}).status_code == 404
    bad = client.post("/api/CreateZone", data=b"{not json")
    assert bad.status_code == 400 and "JSON" in bad.json["error"]
    assert client.post("/api/CreateZone", data=b"[1]").status_code == 400


def test_global_configs_are_checked_and_persist(coordinator):
    assert not coordinator.post("UpdateGlobalConfig", category="vm", name="deletionPolicy",
                                value="Sometimes")["success"]
    missing = coordinator.post("UpdateGlobalConfig", category="vm", name="nope", value="1")
    assert "deletionPolicy" in missing["error"]  # says what exists
    coordinator("UpdateGlobalConfig", category="kvm", name="reservedMemory", value="1G")
    assert coordinator.ctx.gconf.get("kvm", "reservedMemory") == 1 << 30
    timeouts = coordinator.query("QueryGlobalConfig", category="apiTimeout")
    assert {"AddImage", "CreateVmInstance"} <= {t["name"] for t in timeouts}
    assert all(t["value"] == "3h" for t in timeouts)  # ZStack 1.1's default
