"""schemathesis over every agent's own OpenAPI document, each agent in a throwaway
machine (tests/fixtures/isolated.py), as an attacker on the management network would.

Every operation gets ``EXAMPLES`` positive and ``EXAMPLES`` negative (schema-violating)
cases, generated deterministically (hypothesis ``derandomize``: CI sees the same inputs
for the same documents). Half of the async commands' cases get a fresh taskuuid and the
agent's real callback receiver, so their work runs (the other half keep the generated
headers); the callbacks that arrive are checked against the documented reply. A case
fails on a 5xx, a reply that breaks the document (status, content type, body schema),
no reply at all, or an accepted task whose callback never comes; the run fails if the
agent died or stops answering. Failures are collected over the whole run and reported
grouped by endpoint and kind, so one run shows everything.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.isolated import AGENT_FLAGS

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("ZFLEET_FUZZ_EXAMPLES", "20"))  # per operation and mode
CALLBACK_GRACE = 20.0  # seconds the accepted async commands get to call back at the end
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

@dataclass(frozen=True)
class Found:
    agent: str
    path: str
    kind: str  # a failed check's title, "no response", "no callback within ..." or
    # "callback body breaks the document"
    status: int | None
    message: str
    reproduce: str


class Fuzzer:
    """Sends the generated cases to one agent and collects what fails."""

    def __init__(self, agent):
        self.agent = agent
        self.session = requests.Session()
        self.found: list[Found] = []
        self.sent = 0
        self.pending: dict[str, str] = {}  # taskuuid -> path, accepted with our receiver

    def operation(self, op) -> None:
        """``EXAMPLES`` positive and ``EXAMPLES`` negative cases of one operation."""
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], verbosity=Verbosity.quiet,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode), real_callback=st.booleans())
            def run(case, real_callback):
                self.send(op, case, real_callback)

            run()

    def send(self, op, case, real_callback: bool) -> None:
        agent, path = self.agent, op.path
        task = ""
        if real_callback and any(p.name == "taskuuid" for p in op.headers):
            # an async command that will run: else the generated headers go as they are
            task = uuid.uuid4().hex
            if case.headers is None:
                case.headers = {}
            case.headers["taskuuid"] = task
            case.headers["callbackurl"] = agent.receiver.url
        self.sent += 1
        try:
            response = case.call(base_url=agent.url, session=self.session, timeout=30)
        except requests.RequestException as exc:
            self.found.append(Found(agent.name, path, "no response", None,
                                    type(exc).__name__, case.as_curl_command()))
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            self.found.extend(_found(agent.name, path, f, response, case)
                              for f in group.exceptions)
        except Failure as failure:
            self.found.append(_found(agent.name, path, failure, response, case))
        if task and response.status_code == 200 and \
                response.json().get("status") == "accepted":
            self.pending[task] = path


def fuzz(agent, doc: dict) -> tuple[list[Found], int]:
    """Run every operation of ``doc``; (failures, cases sent)."""
    fuzzer = Fuzzer(agent)
    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        fuzzer.operation(result.ok())
    found = fuzzer.found + check_callbacks(agent, doc, fuzzer.pending)
    found += [Found(agent.name, path, f"no callback within {CALLBACK_GRACE:.0f}s", 200,
                    f"taskuuid {task} was accepted", "")
              for task, path in fuzzer.pending.items()]
    return found, fuzzer.sent


def _found(agent: str, path: str, failure: Failure, response, case) -> Found:
    message = (failure.message or "").strip().splitlines()
    return Found(agent, path, failure.title, response.status_code,
                 message[0][:200] if message else "", case.as_curl_command())


def check_callbacks(agent, doc: dict, pending: dict[str, str]) -> list[Found]:
    """Wait (bounded) for the accepted tasks' callbacks and validate each body against
    the reply its endpoint documents; drops the delivered ones from ``pending``."""
    deadline = time.monotonic() + CALLBACK_GRACE
    while time.monotonic() < deadline:
        delivered = {r.headers.get("taskuuid") for r in agent.receiver.received}
        if not set(pending) - delivered:
            break
        time.sleep(0.2)
    found = []
    for got in agent.receiver.received:
        path = pending.pop(got.headers.get("taskuuid"), None)
        if path is None:
            continue
        reply = doc["paths"][path]["post"]["callbacks"]["reply"]
        body_schema = next(iter(reply.values()))["post"]["requestBody"]["content"][
            "application/json"]["schema"]
        try:
            jsonschema.validate(got.body, {**body_schema, "components": doc["components"]})
        except jsonschema.ValidationError as exc:
            found.append(Found(agent.name, path, "callback body breaks the document", None,
                               exc.message[:200], str(got.body)[:300]))
    return found


def report(found: list[Found]) -> str:
    groups: dict[tuple, list[Found]] = defaultdict(list)
    for f in found:
        groups[(f.path, f.kind, f.status)].append(f)
    lines = []
    for (path, kind, status), items in sorted(groups.items(), key=str):
        first = items[0]
        lines.append(f"{first.agent} {path}: {kind} (HTTP {status}) x{len(items)}: "
                     f"{first.message}\n    {first.reproduce}")
    return "\n".join(lines)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(AGENT_FLAGS))
def test_fuzz_agent(name, isolated_agent_factory, capsys):
    agent = isolated_agent_factory(name)
    doc = requests.get(agent.url + "/openapi.json", timeout=10).json()
    started = time.monotonic()
    found, sent = fuzz(agent, doc)
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\n{name}: {len(doc['paths'])} operations, {sent} cases in {seconds:.1f}s, "
              f"{len(found)} failures")
    assert agent.alive(), f"{name} died under fuzzing:\n{agent.log()[-3000:]}"
    assert requests.post(agent.ready_url, timeout=10).ok, f"{name} stopped answering"
    assert not found, f"{len(found)} failures:\n{report(found)}"


def test_harness_reports_server_errors(demo_agent, receiver):
    """The harness finds what it is there for: the demo agent's /demo/start answers 500
    to a negative memory (tests/fixtures/agents.py), a plain in-process agent."""
    doc = requests.get(demo_agent.url + "/openapi.json", timeout=10).json()
    doc["paths"] = {"/demo/start": doc["paths"]["/demo/start"]}
    agent = SimpleNamespace(name="demo", url=demo_agent.url, receiver=receiver)
    found, _ = fuzz(agent, doc)
    assert {(f.path, f.kind, f.status) for f in found} == {("/demo/start", "Server error", 500)}
