"""How the clients post: sync or async (with how long to wait) through the coordinator's
AgentClient, at one URL or at the first of several whose agent answers."""

import pytest

from coordinator.agentclient import AgentCallError
from coordinator.clients.cephagent import CephAgent
from coordinator.clients.endpoint import Call
from coordinator.clients.kvmagent import KvmAgent
from coordinator.clients.transport import AgentAt, FirstAnswering


class FakeAgents:
    """An AgentClient whose agents answer from ``answers`` (url -> reply or error)."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.sent: list[tuple] = []

    def call(self, url, path, body, timeout=None):
        self.sent.append(("sync", url, path, body, timeout))
        return self._answer(url)

    def call_async(self, url, path, body, timeout):
        self.sent.append(("async", url, path, body, timeout))
        return self._answer(url)

    def _answer(self, url):
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


OK = {"success": True, "error": ""}


def test_one_agent_sync_with_an_optional_timeout_async_with_a_wait():
    agents = FakeAgents({"http://h:7070": OK})
    at = AgentAt(agents, "http://h:7070")
    at.post(Call("/host/ping", {}), None)
    at.post(Call("/vm/stop", {"uuid": "u"}, is_async=True), 30.0)
    assert agents.sent == [("sync", "http://h:7070", "/host/ping", {}, None),
                           ("async", "http://h:7070", "/vm/stop", {"uuid": "u"}, 30.0)]
    with pytest.raises(TypeError, match="/vm/stop is async"):
        at.post(Call("/vm/stop", {}, is_async=True), None)


def test_the_first_agent_that_answers_is_used():
    agents = FakeAgents({"http://m1": AgentCallError("m1: unreachable", unreachable=True),
                         "http://m2": OK, "http://m3": OK})
    FirstAnswering(agents, ("http://m1", "http://m2", "http://m3")).post(
        Call("/ceph/primarystorage/delete", {"installPath": "ceph://p/i"}), None)
    assert [s[1] for s in agents.sent] == ["http://m1", "http://m2"]


def test_a_refusal_is_raised_without_asking_the_next_agent():
    agents = FakeAgents({"http://m1": AgentCallError("m1: image busy"), "http://m2": OK})
    with pytest.raises(AgentCallError, match="image busy") as exc:
        FirstAnswering(agents, ("http://m1", "http://m2")).post(Call("/x", {}), None)
    assert not exc.value.unreachable and len(agents.sent) == 1


def test_none_answering_is_unreachable_naming_each_attempt():
    agents = FakeAgents({u: AgentCallError(f"{u}: refused", unreachable=True)
                         for u in ("http://m1", "http://m2")})
    with pytest.raises(AgentCallError) as exc:
        FirstAnswering(agents, ("http://m1", "http://m2")).post(Call("/x", {}), None)
    assert exc.value.unreachable
    assert str(exc.value) == "no agent answers: http://m1: refused; http://m2: refused"


def test_clients_send_the_built_body_and_return_the_parsed_reply():
    agents = FakeAgents({"http://h:7070": {**OK, "hostUuid": "1" * 32},
                         "http://m1": {**OK, "fsid": "f", "size": 7}})
    assert KvmAgent.at(agents, "http://h:7070").ping(wait=5).host_uuid == "1" * 32
    reply = CephAgent.at(agents, ["http://m1"]).create_snapshot(
        snapshot_path="ceph://p/i@s")
    assert reply.size == 7
    assert agents.sent[-1] == ("sync", "http://m1", "/ceph/primarystorage/snapshot/create",
                               {"snapshotPath": "ceph://p/i@s"}, None)


def test_a_call_built_beforehand_is_run_as_it_is_and_its_reply_returned_raw():
    agents = FakeAgents({"http://h:7070": {**OK, "vmState": "Stopped"}})
    kvm = KvmAgent.at(agents, "http://h:7070")
    kept = Call("/vm/destroy", {"uuid": "u"}, is_async=True)
    assert kvm.run(kept, 60.0) == {**OK, "vmState": "Stopped"}
    assert kvm.run(Call("/host/ping", {})) == {**OK, "vmState": "Stopped"}
    assert agents.sent == [("async", "http://h:7070", "/vm/destroy", {"uuid": "u"}, 60.0),
                           ("sync", "http://h:7070", "/host/ping", {}, None)]


def test_a_client_with_errors_raises_what_they_make_of_a_failure_even_a_body_never_sent():
    agents = FakeAgents({"http://m1": AgentCallError("http://m1/x: image busy")})
    client = CephAgent.at(agents, ["http://m1"], errors=lambda e: LookupError(f"s: {e}"))
    with pytest.raises(LookupError, match="^s: http://m1/x: image busy$"):
        client.delete_volume(install_path="ceph://p/i")
    with pytest.raises(LookupError, match="^s: http://m1/x: image busy$"):
        client.run(Call("/x", {}))  # a command kept earlier (a GC job's)
    with pytest.raises(LookupError, match="^s: /ceph/primarystorage/volume/resize: "):
        client.resize_volume(install_path="ceph://p/i", size=-1)
    assert len(agents.sent) == 2
