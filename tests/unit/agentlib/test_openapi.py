"""The OpenAPI document states what the models enforce, and is valid OpenAPI 3."""

import re

import pytest
from openapi_spec_validator import validate
from pydantic import TypeAdapter, ValidationError

from agentlib.types import AbsPath, VolumePath
from tests.fixtures.agents import build_demo_agent


@pytest.fixture
def agent():
    agent = build_demo_agent()
    yield agent
    agent.close()


def _schema(doc: dict, ref: dict) -> dict:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_document_is_valid_openapi_with_required_bodies_and_error_replies(agent):
    doc = agent.app.test_client().get("/openapi.json").get_json()
    validate(doc)
    for path, item in doc["paths"].items():
        op = item["post"]
        assert op["requestBody"]["required"] is True, path
        for code in ("400", "500"):
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorReply"}, (path, code)
    start = doc["paths"]["/demo/start"]["post"]["responses"]["200"]
    # a failed command answers {success: false, error} without the reply's own fields
    assert {"$ref": "#/components/schemas/ErrorReply"} in (
        start["content"]["application/json"]["schema"]["anyOf"])


def test_field_types_carry_their_patterns(agent):
    doc = agent.app.test_client().get("/openapi.json").get_json()
    cmd = _schema(doc, doc["paths"]["/demo/start"]["post"]["requestBody"]["content"][
        "application/json"]["schema"])
    assert cmd["properties"]["vmName"]["pattern"] == "^(?:[A-Za-z0-9][A-Za-z0-9_.:@-]*)$"
    nic = doc["components"]["schemas"]["Nic"]["properties"]
    assert re.fullmatch(nic["mac"]["pattern"], "52:54:00:ab:cd:ef")
    assert not re.fullmatch(nic["mac"]["pattern"], "52:54:00:ab:cd")
    assert nic["bridgeName"]["maxLength"] == 15 and "pattern" in nic["bridgeName"]


@pytest.mark.parametrize("typ", [AbsPath, VolumePath])
@pytest.mark.parametrize("path", [
    "/var/lib/a.qcow2", "/a..b/c", "/", "rel", "/a/../b", "/..", "/a/..", "/a\nb", "/a\x00",
    "ceph://pool/img", "ceph://pool/img@snap", "ceph://pool/../x", "ceph://pool",
])
def test_the_documented_path_pattern_matches_what_the_model_accepts(typ, path):
    adapter = TypeAdapter(typ)
    try:
        adapter.validate_python(path)
        accepted = True
    except ValidationError:
        accepted = False
    assert bool(re.search(adapter.json_schema()["pattern"], path)) is accepted


def test_405_names_the_allowed_methods(agent):
    r = agent.app.test_client().get("/demo/start")
    assert r.status_code == 405 and r.get_json()["success"] is False
    assert "POST" in r.headers["Allow"]
    r = agent.app.test_client().post("/openapi.json")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
