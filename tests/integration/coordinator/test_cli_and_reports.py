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


def test_zfleet_api_commands_and_shell_against_a_served_coordinator(tmp_path):
    import subprocess
    import sys

    coordinator = ServedAgent(build_coordinator(CoordinatorConfig(data_dir=tmp_path,
                                                                  background=False)))
    zfleet_cmd = [sys.executable, "-m", "coordinator.cli", "--url", coordinator.url]
    try:
        made = subprocess.run([*zfleet_cmd, "CreateZone", "name=zone 1"],
                              capture_output=True, text=True, timeout=30)
        assert made.returncode == 0, made.stderr
        zone = json.loads(made.stdout)["inventory"]
        typo = subprocess.run([*zfleet_cmd, "CreateZone", "nmae=x"], capture_output=True,
                              text=True, timeout=30)
        assert typo.returncode == 2 and "no field 'nmae'" in typo.stderr
        shell = subprocess.run([*zfleet_cmd, "shell"], capture_output=True, text=True,
                               timeout=30, input=f"QueryZone uuid={zone['uuid']} "
                               "fields=name\nhelp\nNoSuchApi\nexit\n")
        assert shell.returncode == 0, shell.stderr
        assert '"name": "zone 1"' in shell.stdout and ">>> " in shell.stdout
        assert "CreateVmInstance" in shell.stdout  # help lists the APIs
        assert "no API NoSuchApi" in shell.stderr
        helped = subprocess.run([*zfleet_cmd, "--help"], capture_output=True, text=True,
                                timeout=30)
        assert "MigrateVm" in helped.stdout and "zfleet call" in helped.stdout
    finally:
        coordinator.close()
