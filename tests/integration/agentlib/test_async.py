"""Async commands over real HTTP: accept, run, call back; retry, dedupe, cancel."""

import time
import uuid

import pytest
import requests

from agentlib.receiver import CallbackReceiver
from devcluster.procs import free_port
from tests.fixtures.drip import SilentServer

pytestmark = pytest.mark.integration


def call(agent, path, body, taskuuid, callback):
    return requests.post(agent.url + path, json=body, timeout=5,
                         headers={"taskuuid": taskuuid, "callbackurl": callback})


def test_reply_is_posted_to_callbackurl_with_the_taskuuid(demo_agent, receiver):
    t = uuid.uuid4().hex
    ack = call(demo_agent, "/demo/sleep", {"seconds": 0.05}, t, receiver.url)
    assert ack.status_code == 200
    assert ack.json() == {"success": True, "error": "", "taskUuid": t, "status": "accepted"}
    [cb] = receiver.wait(taskuuid=t)
    assert cb.body["success"] is True and cb.body["slept"] >= 0.05
    assert cb.headers["content-type"] == "application/json"


def test_handler_failure_is_called_back_as_success_false(demo_agent, receiver):
    t = uuid.uuid4().hex
    call(demo_agent, "/demo/sleep", {"seconds": 0, "fail": "disk vda is gone"}, t, receiver.url)
    [cb] = receiver.wait(taskuuid=t)
    assert cb.body == {"success": False, "error": "disk vda is gone"}


def test_callback_is_retried_until_the_receiver_comes_up(demo_agent):
    port = free_port()
    t = uuid.uuid4().hex
    call(demo_agent, "/demo/sleep", {"seconds": 0}, t, f"http://127.0.0.1:{port}/callback")
    time.sleep(0.6)  # several delivery attempts fail: nothing listens yet
    with CallbackReceiver(port=port) as late:
        [cb] = late.wait(taskuuid=t, timeout=10)
    assert cb.body["success"] is True


def test_callback_refused_with_4xx_is_not_retried(demo_agent):
    with CallbackReceiver(status=404) as refusing:
        t = uuid.uuid4().hex
        call(demo_agent, "/demo/sleep", {"seconds": 0}, t, refusing.url)
        refusing.wait(taskuuid=t)
        time.sleep(0.5)
        assert len([r for r in refusing.received if r.headers["taskuuid"] == t]) == 1


def test_unreachable_callback_urls_do_not_delay_the_coordinators(demo_agent, receiver):
    """Callbacks to servers that never answer and to names that do not resolve are
    retried for minutes; a callback to a destination that took one before is delivered
    while every one of those still waits (before, they held all 4 delivery threads)."""
    first = uuid.uuid4().hex
    call(demo_agent, "/demo/sleep", {"seconds": 0}, first, receiver.url)
    receiver.wait(taskuuid=first)
    silent = [SilentServer() for _ in range(8)]
    try:
        for i, server in enumerate(silent):
            call(demo_agent, "/demo/sleep", {"seconds": 0}, uuid.uuid4().hex, server.url)
            call(demo_agent, "/demo/sleep", {"seconds": 0}, uuid.uuid4().hex,
                 f"http://no-such-host-{i}.invalid:8080/callback")
        deadline = time.monotonic() + 10
        while sum(s.accepted for s in silent) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(s.accepted for s in silent) >= 3, "the silent servers were not tried"
        t = uuid.uuid4().hex
        call(demo_agent, "/demo/sleep", {"seconds": 0}, t, receiver.url)
        [cb] = receiver.wait(taskuuid=t, timeout=20)
        assert cb.body["success"] is True
        assert sum(s.gave_up for s in silent) == 0, "delivered only after an attempt gave up"
    finally:
        for server in silent:
            server.close()


def test_running_taskuuid_is_not_run_twice(demo_agent, receiver):
    t = uuid.uuid4().hex
    first = call(demo_agent, "/demo/sleep", {"seconds": 0.3}, t, receiver.url)
    second = call(demo_agent, "/demo/sleep", {"seconds": 0.3}, t, receiver.url)
    assert first.json()["status"] == "accepted" and second.json()["status"] == "duplicate"
    receiver.wait(taskuuid=t)
    time.sleep(0.2)
    assert demo_agent.agent.runs[t] == 1
    assert len([r for r in receiver.received if r.headers["taskuuid"] == t]) == 1


def test_finished_taskuuid_repeated_gets_the_stored_reply_again(demo_agent, receiver):
    t = uuid.uuid4().hex
    call(demo_agent, "/demo/sleep", {"seconds": 0}, t, receiver.url)
    [first] = receiver.wait(taskuuid=t)
    again = call(demo_agent, "/demo/sleep", {"seconds": 0}, t, receiver.url)
    assert again.json()["status"] == "redelivered"
    first_cb, second_cb = receiver.wait(taskuuid=t, count=2)
    assert second_cb.body == first_cb.body
    assert demo_agent.agent.runs[t] == 1


def cancel(agent, task):
    return requests.post(agent.url + "/job/cancel", json={"taskUuid": task}, timeout=5).json()


def test_cancel_running_and_queued_tasks(demo_agent, receiver):
    # two workers: a and b run, c waits in the queue
    a, b, c = (uuid.uuid4().hex for _ in range(3))
    for t in (a, b, c):
        call(demo_agent, "/demo/sleep", {"seconds": 5}, t, receiver.url)
    time.sleep(0.1)
    assert cancel(demo_agent, c) == {"success": True, "error": ""}
    [cb_c] = receiver.wait(taskuuid=c)
    assert cb_c.body["success"] is False and "before it started" in cb_c.body["error"]
    assert c not in demo_agent.agent.runs

    started = time.monotonic()
    assert cancel(demo_agent, a)["success"] is True
    [cb_a] = receiver.wait(taskuuid=a)
    assert cb_a.body["success"] is False and "was cancelled" in cb_a.body["error"]
    assert time.monotonic() - started < 2  # it stopped, it did not sleep its 5 s
    cancel(demo_agent, b)
    receiver.wait(taskuuid=b)


def test_cancel_refused_for_unknown_and_uncancellable_tasks(demo_agent, receiver):
    reply = cancel(demo_agent, "no-such-task")
    assert reply["success"] is False and "no queued or running task no-such-task" in reply["error"]
    t = uuid.uuid4().hex
    call(demo_agent, "/demo/uncancellable", {"seconds": 0.3}, t, receiver.url)
    time.sleep(0.1)
    reply = cancel(demo_agent, t)
    assert reply["success"] is False and "cannot be cancelled" in reply["error"]
    [cb] = receiver.wait(taskuuid=t)
    assert cb.body["success"] is True


def test_reports_arrive_in_order_across_a_coordinator_restart(demo_agent):
    port = free_port()
    reporter = demo_agent.agent.reporter
    with CallbackReceiver(port=port) as coordinator:
        reporter.url = coordinator.url
        reporter.send("/kvm/reportvmstart", {"seq": 0})
        coordinator.wait(commandpath="/kvm/reportvmstart")
    # coordinator is down: reports queue up
    for seq in range(1, 6):
        reporter.send("/kvm/reportvmshutdown", {"seq": seq})
    time.sleep(0.3)
    assert reporter.pending() == 5
    with CallbackReceiver(port=port) as restarted:
        got = restarted.wait(commandpath="/kvm/reportvmshutdown", count=5, timeout=15)
    assert [r.body["seq"] for r in got] == [1, 2, 3, 4, 5]
    assert reporter.pending() == 0
