"""Named locks serialise per resource and do not accumulate."""

import threading
import time

import pytest

from agentlib.locks import NamedLocks


def test_same_name_serialises_other_names_do_not():
    locks = NamedLocks()
    inside: list[str] = []
    overlap = []

    def work(name, tag):
        with locks.hold(name):
            inside.append(tag)
            if len([t for t in inside if t.startswith(name)]) > 1:
                overlap.append(tag)
            time.sleep(0.05)
            inside.remove(tag)

    threads = [threading.Thread(target=work, args=("ns1", f"ns1-{i}")) for i in range(4)]
    threads.append(threading.Thread(target=work, args=("ns2", "ns2-0")))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    assert time.monotonic() - started >= 0.2  # the four ns1 holders ran one after another
    assert locks.held() == []


def test_timeout_names_the_lock():
    locks = NamedLocks()
    with locks.hold("vm:1"):
        holder_done = threading.Event()

        def other():
            with pytest.raises(TimeoutError, match="vm:1"), locks.hold("vm:1", timeout=0.05):
                pass
            holder_done.set()

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert holder_done.is_set()
    assert locks.held() == []


def test_multiple_names_in_any_order_do_not_deadlock():
    locks = NamedLocks()

    def a():
        for _ in range(200):
            with locks.hold("x", "y"):
                pass

    def b():
        for _ in range(200):
            with locks.hold("y", "x"):
                pass

    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in ts)
