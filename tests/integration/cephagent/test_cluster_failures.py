"""A dead mon is a clear error within the configured timeout, not a hang; the agent
recovers on its own when the mon comes back, and follows a rebuilt cluster (new fsid)
that ping tells apart at once (ceph.conf changed). Uses its own cluster: the session's
must stay up."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devcluster import procs
from tests.fixtures.cephagent import CephAgent, own_cephagent

pytestmark = pytest.mark.integration

PS = "/ceph/primarystorage"
TIMEOUT = 2


@pytest.fixture
def own_agent(tmp_path) -> Iterator[CephAgent]:
    with own_cephagent(tmp_path, TIMEOUT) as agent:
        yield agent


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def test_stopped_mon_fails_fast_and_the_agent_recovers(own_agent):
    cluster = own_agent.cluster
    fsid = cluster.fsid
    own_agent.call(f"{PS}/addpool", {"poolName": "p", "isCreate": True})
    assert own_agent.call(f"{PS}/ping", {"fsid": fsid, "poolName": "p"})["fsid"] == fsid

    [mon] = [p for p in cluster.registry.load() if p.name == "mon.a"]
    procs.stop(mon)
    error, took = timed(lambda: own_agent.fail(f"{PS}/ping", {"fsid": fsid}))
    assert "no answer from the" in error and f"within {TIMEOUT}s" in error, error
    assert took < 4 * TIMEOUT, f"a dead mon took {took:.1f}s to report"  # not a hang
    # the cluster is remembered as down: a clear error, at once (reconnects in the background)
    error, took = timed(lambda: own_agent.fail(f"{PS}/connect", {}))
    assert "has not answered since" in error and f"within {TIMEOUT}s" in error, error
    assert took < 4 * TIMEOUT, error
    # several at once do not queue behind each other's connect attempts
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: timed(lambda: own_agent.fail(f"{PS}/ping", {})),
                                range(6)))
    assert all("has not answered since" in e for e, _ in results), results
    assert max(t for _, t in results) < 2 * TIMEOUT + 1, results

    # the mon comes back (same data): the next command works, no agent restart needed
    cluster.registry.add(procs.spawn(mon.name, mon.argv, cluster.log_dir / "mon.a.out"))
    deadline = time.monotonic() + 30
    while True:
        reply = own_agent.post(f"{PS}/ping", {"fsid": fsid, "poolName": "p"}).json()
        if reply["success"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply["success"], reply

    # the cluster is rebuilt (new fsid, same ceph.conf path): ping with the old fsid says so
    cluster.stop()
    cluster.start()
    assert cluster.fsid != fsid
    reply = own_agent.post(f"{PS}/ping", {"fsid": fsid}).json()  # ceph.conf changed: reconnects
    assert not reply["success"] and f"is {cluster.fsid}, not {fsid}" in reply["error"], reply
    assert own_agent.call(f"{PS}/connect", {})["fsid"] == cluster.fsid
    assert "Traceback" not in own_agent.log()
