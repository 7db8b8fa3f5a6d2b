"""GroupCommit: requests waiting for one key are done in one commit; an error reaches
only the request it belongs to."""

from __future__ import annotations

import threading
import time

import pytest

from agentlib.groupcommit import GroupCommit
from agentlib.locks import NamedLocks


def _waiting(locks: NamedLocks, name: str, n: int) -> None:
    """Until ``n`` threads hold or wait for lock ``name`` (its reference count)."""
    for _ in range(500):
        if locks._locks.get(name, (None, 0))[1] >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} waiters for {name} never came")


def _group(commit) -> tuple[NamedLocks, GroupCommit]:
    locks = NamedLocks()
    return locks, GroupCommit(lambda key: locks.hold(key), commit)


def _submit_all(group: GroupCommit, key: str,
                items: list) -> tuple[dict, list[threading.Thread]]:
    out: dict = {}

    def one(item) -> None:
        try:
            out[item] = group.submit(key, item)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out[item] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in items]
    for t in threads:
        t.start()
    return out, threads


def test_requests_that_wait_together_are_committed_together():
    commits = []

    def commit(key, items):
        commits.append((key, sorted(items)))
        return [f"{key}:{i}" for i in items]

    locks, group = _group(commit)
    with locks.hold("ns1"):  # the resource is busy: ten requests queue behind it
        out, threads = _submit_all(group, "ns1", list(range(10)))
        _waiting(locks, "ns1", 11)
    for t in threads:
        t.join(5)
    assert out == {i: f"ns1:{i}" for i in range(10)}
    assert commits == [("ns1", list(range(10)))]


def test_an_error_reaches_only_its_own_request():
    def commit(key, items):
        if 3 in items and len(items) > 1:
            raise RuntimeError("the batch broke")
        if items == [3]:
            raise ValueError("3 is refused")
        return [i * 10 if i != 5 else LookupError("5 is unknown") for i in items]

    locks, group = _group(commit)
    with locks.hold("ns1"):
        out, threads = _submit_all(group, "ns1", list(range(8)))
        _waiting(locks, "ns1", 9)
    for t in threads:
        t.join(5)
    assert isinstance(out.pop(3), ValueError)
    assert isinstance(out.pop(5), LookupError)
    assert out == {i: i * 10 for i in (0, 1, 2, 4, 6, 7)}


def test_a_lone_request_gets_its_own_error():
    locks, group = _group(lambda key, items: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        group.submit("ns1", "x")
    assert locks.held() == []
