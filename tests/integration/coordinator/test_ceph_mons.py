"""Add/RemoveMon on a Ceph primary storage with a real cephagent: a mon whose agent
answers for the same cluster is added, one that does not is refused, the last stays."""

import pytest

pytestmark = pytest.mark.integration


def test_mons_are_added_when_their_agent_answers_for_the_cluster_and_the_last_stays(cloud):
    api, ps = cloud.api, cloud.primary_storage

    def config() -> dict:
        return api.ctx.db.get("primary_storage", ps)["config"]

    assert config()["monHosts"] == ["127.0.0.1"]
    api("AddMonToCephPrimaryStorage", uuid=ps, monUrls=["root:pw@localhost"])
    assert config()["monHosts"] == ["127.0.0.1", "localhost"]
    assert all("pw" not in url for url in config()["monUrls"])  # no password kept
    refused = api.post("AddMonToCephPrimaryStorage", uuid=ps, monUrls=["root:pw@127.0.0.9"])
    assert not refused["success"] and "no cephagent answers" in refused["error"]
    assert config()["monHosts"] == ["127.0.0.1", "localhost"]
    api("RemoveMonFromCephPrimaryStorage", uuid=ps, monHostnames=["127.0.0.1"])
    assert config()["monHosts"] == ["localhost"]
    last = api.post("RemoveMonFromCephPrimaryStorage", uuid=ps, monHostnames=["localhost"])
    assert not last["success"] and "no mon left" in last["error"]
    cloud.create_vm("after-mon-change")  # the storage still works through the new mon
