"""Issue 14, finding 8: with its Ceph cluster not answering, commands queued on one image
fail after one timeout between them, not one timeout each; the agent keeps answering and
uses the cluster again as soon as it answers, without a restart.

"Not answering" is every daemon SIGSTOPped: connections open but nothing replies, as with
a hung or cut-off host (the harder case: nothing is refused). Uses its own cluster: the
session's must stay up."""

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from devcluster.ceph import CephCluster
from tests.fixtures.ceph import rbd_images
from tests.fixtures.cephagent import CephAgent, own_cephagent

pytestmark = pytest.mark.integration

PS = "/ceph/primarystorage"
TIMEOUT = 3
QUEUED = 3


def signal_daemons(cluster: CephCluster, sig: signal.Signals) -> None:
    for daemon in cluster.registry.load():
        if daemon.alive():
            os.kill(daemon.pid, sig)


@pytest.fixture
def frozen_agent(tmp_path) -> Iterator[CephAgent]:
    """A cephagent on a cluster of its own holding ``ceph://p/base@s`` (protected); the
    daemons are thawed before the agent and the cluster stop, whatever the test did."""
    with own_cephagent(tmp_path, TIMEOUT) as agent:
        try:
            agent.call(f"{PS}/addpool", {"poolName": "p", "isCreate": True})
            agent.call(f"{PS}/volume/createempty",
                       {"installPath": "ceph://p/base", "size": 1 << 20})
            agent.call(f"{PS}/snapshot/commit", {"snapshotPath": "ceph://p/base@s"})
            yield agent
        finally:
            signal_daemons(agent.cluster, signal.SIGCONT)


def test_queued_commands_fail_after_one_timeout_and_the_agent_recovers(frozen_agent):
    agent, cluster = frozen_agent, frozen_agent.cluster
    clone = {"srcPath": "ceph://p/base@s", "dstPath": "ceph://p/vm1"}
    signal_daemons(cluster, signal.SIGSTOP)

    with ThreadPoolExecutor(QUEUED) as pool:
        clones = [pool.submit(agent.fail, f"{PS}/volume/clone", clone) for _ in range(QUEUED)]
        # the agent answers other requests while the clones wait on the cluster
        assert agent.post(f"{PS}/echo").status_code == 200
        errors = [c.result() for c in clones]

    # every answer arrives, names the timeout; one clone waited, the queued ones did not
    assert all(f"within {TIMEOUT}s" in e for e in errors), errors
    waited = [e for e in errors if "failed at once" not in e]
    assert len(waited) == 1, errors
    assert "clone ceph://p/base@s to ceph://p/vm1: no answer from the Ceph cluster" in waited[0]
    # other commands fail at once too, saying since when and why
    error = agent.fail(f"{PS}/getvolumesize", {"installPath": "ceph://p/base"})
    assert "has not answered since" in error and "failed at once" in error, error

    # the cluster answers again: the same agent process uses it, no restart
    signal_daemons(cluster, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while True:
        reply = agent.post(f"{PS}/volume/clone", clone).json()
        if reply["success"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply["success"], reply
    assert rbd_images(cluster, "p") == ["base", "vm1"]
    assert agent.proc.alive()
    log = agent.log()
    assert log.count("unreachable (") == 1 and "answers again after" in log, log[-3000:]
    assert "Traceback" not in log
