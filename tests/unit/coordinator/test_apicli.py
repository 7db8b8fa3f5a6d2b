"""zfleet <ApiName> key=value: values coerced by the API's own schema."""

import pytest

from coordinator.apicli import CliError, build_body


@pytest.fixture
def apis(coordinator):
    return {a["name"]: a for a in coordinator.ctx.apis.describe()}


def test_lists_numbers_and_tags_follow_the_schema(apis):
    body = build_body(apis["CreateVmInstance"], [
        "name=vm1", "imageUuid=" + "a" * 32, "instanceOfferingUuid=" + "b" * 32,
        "l3NetworkUuids=" + "c" * 32 + "," + "d" * 32,
        "systemTags=userdata::a: 1, b: 2", "systemTags=sshkey::ssh-rsa AAAA x@y"])
    assert body["l3NetworkUuids"] == ["c" * 32, "d" * 32]
    assert body["systemTags"] == ["userdata::a: 1, b: 2", "sshkey::ssh-rsa AAAA x@y"]
    assert build_body(apis["CreateInstanceOffering"], ["cpuNum=2", "memorySize=1073741824",
                                                       "name=o"])["cpuNum"] == 2


def test_query_words_become_conditions(apis):
    body = build_body(apis["QueryVmInstance"], ["name~=web%", "state!=Running",
                                                "memorySize>=1024", "uuid?=a,b",
                                                "fields=uuid,name", "limit=5"])
    assert body["conditions"] == [
        {"name": "name", "op": "~=", "value": "web%"},
        {"name": "state", "op": "!=", "value": "Running"},
        {"name": "memorySize", "op": ">=", "value": "1024"},
        {"name": "uuid", "op": "?=", "value": ["a", "b"]}]
    assert body["fields"] == ["uuid", "name"] and body["limit"] == 5


@pytest.mark.parametrize("api, words, says", [
    ("CreateZone", ["nmae=z"], "no field 'nmae'"),
    ("CreateInstanceOffering", ["cpuNum=two"], "cpuNum: not an integer"),
    ("CreateZone", ["justaword"], "key=value"),
])
def test_mistakes_are_said_before_anything_is_sent(apis, api, words, says):
    with pytest.raises(CliError, match=says):
        build_body(apis[api], words)
