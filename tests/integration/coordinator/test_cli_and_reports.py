"""zfleet call against a real agent over HTTP; agent reports reach the coordinator."""

import json

import pytest
import requests

from coordinator.app import build as build_coordinator
from coordinator.cli import main as zfleet
from coordinator.config import CoordinatorConfig
from tests.fixtures.agents import ServedAgent

pytestmark = pytest.mark.integration


def test_zfleet_call_sync_async_and_openapi(demo_agent, capsys):
    assert zfleet(["call", demo_agent.url + "/demo/start", "vmName=vm1", "memory:=64"]) == 0
    assert json.loads(capsys.readouterr().out)["vmName"] == "vm1"

    assert zfleet(["call", demo_agent.url + "/demo/start", "vmName=a;b", "memory:=64"]) == 1
    assert "vmName: not a valid name" in capsys.readouterr().out

    assert zfleet(["call", "--async", demo_agent.url + "/demo/sleep", "seconds:=0.05",
                   "--timeout", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["slept"] >= 0.05

    assert zfleet(["openapi", demo_agent.url]) == 0
    out = capsys.readouterr().out
    assert "async /demo/sleep" in out and "sync  /demo/start" in out


def test_agent_reports_arrive_at_the_coordinator(demo_agent, tmp_path):
    coordinator = ServedAgent(build_coordinator(CoordinatorConfig(data_dir=tmp_path,
                                                                  background=False)))
    try:
        demo_agent.agent.reporter.url = coordinator.url + "/report"
        demo_agent.agent.reporter.send("/kvm/reportvmshutdown", {"vmUuid": "abc"})
        demo_agent.agent.reporter.send("/kvm/reportvmstart", {"vmUuid": "abc"})

        def got():
            return requests.get(coordinator.url + "/reports", timeout=2).json()

        from devcluster.procs import wait_for
        reports = wait_for(lambda: len(got()) == 2 and got(), 10, "two reports")
        assert [r["commandpath"] for r in reports] == ["/kvm/reportvmshutdown",
                                                         "/kvm/reportvmstart"]
        bad = requests.post(coordinator.url + "/report", json={"x": 1}, timeout=2)
        assert bad.status_code == 400 and "commandpath" in bad.json()["error"]
    finally:
        coordinator.close()
