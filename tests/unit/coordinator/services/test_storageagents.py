"""The storage agents' errors as the flows see them: a refusal is an ApiError naming the
storage; no agent answering is StorageUnreachable naming the storage and each attempt
(GC keeps the work then); a body the agent would refuse is refused the same way."""

import pytest

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.clients.endpoint import Call
from coordinator.services.storageagents import StorageUnreachable, ceph_agent, sftp_agent

CEPH = {"name": "ceph-ps", "config": {"agentPort": 7762, "monHosts": ["m1", "m2"]}}
SFTP = {"name": "sftp-bs", "hostname": "h", "agent_port": 7171}
OK = {"success": True, "error": ""}


class Ctx:
    def __init__(self, answers: dict):
        self.agents = self
        self.answers = answers
        self.sent: list[tuple] = []

    def call(self, url, path, body, timeout=None):
        self.sent.append((url, path, body))
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


def down(url):
    return AgentCallError(f"{url}: agent unreachable: refused", unreachable=True)


def test_the_first_mon_that_answers_is_used():
    ctx = Ctx({"http://m1:7762": down("http://m1:7762"), "http://m2:7762": {**OK, "size": 3}})
    assert ceph_agent(ctx, CEPH).create_snapshot(snapshot_path="ceph://p/v@s").size == 3
    assert [s[0] for s in ctx.sent] == ["http://m1:7762", "http://m2:7762"]


def test_none_answering_is_storage_unreachable_naming_storage_and_attempts():
    ctx = Ctx({u: down(u) for u in ("http://m1:7762", "http://m2:7762")})
    with pytest.raises(StorageUnreachable) as exc:
        ceph_agent(ctx, CEPH).delete_volume(install_path="ceph://p/v")
    assert str(exc.value) == ("ceph-ps: no cephagent answers: http://m1:7762: agent "
                              "unreachable: refused; http://m2:7762: agent unreachable: "
                              "refused")
    with pytest.raises(StorageUnreachable, match="^sftp-bs: http://h:7171: agent unreach"):
        sftp_agent(Ctx({"http://h:7171": down("http://h:7171")}), SFTP).run(
            Call("/sftpbackupstorage/delete", {"installPath": "/bs/i"}))


def test_a_refusal_or_an_invalid_body_is_an_api_error_naming_the_storage():
    ctx = Ctx({"http://m1:7762": AgentCallError("http://m1:7762/x: image busy"),
               "http://m2:7762": OK})
    with pytest.raises(ApiError) as exc:
        ceph_agent(ctx, CEPH).delete_volume(install_path="ceph://p/v")
    assert type(exc.value) is ApiError and str(exc.value) == "ceph-ps: http://m1:7762/x: " \
        "image busy"
    with pytest.raises(ApiError, match="^sftp-bs: /sftpbackupstorage/connect: ") as exc:
        sftp_agent(Ctx({}), SFTP).connect(storage_path="relative")
    assert type(exc.value) is ApiError
