"""The peer scan's verdict on sequences of heartbeat reads: only a counter seen unchanged
for the whole window is Stale; what cannot be judged is Missing, with the reason."""

import pytest

from agentlib.errors import Cancelled
from kvmagent.drivers.heartbeat import HeartbeatError, RadosTarget
from kvmagent.drivers.hostscan import tcp_reachable, watch_heartbeat

TARGET = RadosTarget("pool-a", ("10.0.0.1:6789",), "admin", "a2V5")
FAIL = object()


class Reads:
    """A store answering a scripted sequence of reads (the last one repeats)."""

    def __init__(self, *answers):
        self.target = TARGET
        self.answers = list(answers)
        self.count = 0

    def read(self, name):
        answer = self.answers[min(self.count, len(self.answers) - 1)]
        self.count += 1
        if answer is FAIL:
            raise HeartbeatError(f"reading pool-a/{name}: timed out")
        return None if answer is None else {"counter": answer, "time": 12.5}


def watch(store, window=0.2):
    return watch_heartbeat(store, "zfleet-ha-x", window, 0.02)


def test_a_moving_counter_is_alive_at_once():
    result = watch(Reads(3, 3, 4), window=60)
    assert (result.state, result.counter, result.time) == ("Alive", 4, 12.5)


def test_an_unchanged_counter_for_the_whole_window_is_stale():
    store = Reads(5)
    result = watch(store)
    assert (result.state, result.counter) == ("Stale", 5)
    assert store.count >= 5  # read all along the window, not once


def test_an_object_that_appears_is_alive_and_one_that_vanishes_is_missing():
    assert watch(Reads(None, None, 1), window=60).state == "Alive"
    vanished = watch(Reads(5, 5, None), window=60)
    assert vanished.state == "Missing" and "disappeared" in vanished.error


def test_no_object_or_no_cluster_is_missing_with_the_reason():
    missing = watch(Reads(None))
    assert missing.state == "Missing" and "no heartbeat object zfleet-ha-x" in missing.error
    dark = watch(Reads(FAIL))
    assert dark.state == "Missing" and "timed out" in dark.error


def test_the_window_counts_from_the_first_good_read_and_a_failed_last_read_is_missing():
    late = Reads(FAIL, FAIL, FAIL, 5)  # the cluster answered late: still a whole window
    assert watch(late).state == "Stale" and late.count >= 8
    assert watch(Reads(5, 5, FAIL)).state == "Missing"


def test_a_cancelled_scan_stops():
    def cancelled():
        raise Cancelled("task x was cancelled")

    with pytest.raises(Cancelled):
        watch_heartbeat(Reads(5), "zfleet-ha-x", 60, 0.02, cancelled)


def test_tcp_reachable_on_a_closed_port_is_false():
    assert tcp_reachable("127.0.0.1", 1) is False
