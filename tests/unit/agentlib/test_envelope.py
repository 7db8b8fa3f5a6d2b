"""The protocol envelope: validation errors name the field, failures never leak a traceback."""

import pytest

from tests.fixtures.agents import build_demo_agent


@pytest.fixture
def client():
    agent = build_demo_agent()
    yield agent.app.test_client()
    agent.close()


def test_valid_command_is_parsed_and_replied_in_camel_case(client):
    r = client.post("/demo/start", json={"vmName": "vm1", "memory": 128,
                                          "nics": [{"mac": "52:54:00:12:34:56",
                                                    "bridgeName": "br0"}]})
    assert r.status_code == 200
    assert r.get_json() == {"success": True, "error": "", "vmName": "vm1", "memory": 128}


def test_trailing_slash_is_the_same_endpoint(client):
    r = client.post("/demo/start/", json={"vmName": "vm1", "memory": 1})
    assert r.status_code == 200 and r.get_json()["vmName"] == "vm1"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"memory": 1}, "vmName: Field required"),
        ({"vmName": "vm1", "memory": "lots"}, "memory: Input should be a valid integer"),
        ({"vmName": "vm1\nrm -rf /", "memory": 1}, "vmName: not a valid name"),
        ({"vmName": "a;reboot", "memory": 1}, "vmName: not a valid name"),
        ({"vmName": "$(id)", "memory": 1}, "vmName: not a valid name"),
        ({"vmName": "../../etc", "memory": 1}, "vmName: not a valid name"),
        ({"vmName": "vm1", "memory": 1, "nics": [{"mac": "zz", "bridgeName": "br0"}]},
         "nics.0.mac: not a valid MAC address"),
        ({"vmName": "vm1", "memory": 1,
          "nics": [{"mac": "52:54:00:12:34:56", "bridgeName": "a-very-long-bridge"}]},
         "nics.0.bridgeName: String should have at most 15 characters"),
    ],
)
def test_invalid_field_is_a_400_naming_the_field(client, body, field):
    r = client.post("/demo/start", json=body)
    assert r.status_code == 400
    reply = r.get_json()
    assert reply["success"] is False
    assert field in reply["error"]


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "body: not valid JSON"),
    (b"[1, 2]", "body: must be a JSON object, got list"),
    (b'"text"', "body: must be a JSON object, got str"),
    (b"\xff\xfe", "body: not valid JSON"),
    (b'{"vmName": "vm1", "memory": NaN}', "body: not valid JSON (NaN is not JSON)"),
    (b"[" * 100000, "body: JSON nested too deeply"),
])
def test_malformed_body_is_a_400(client, raw, message):
    r = client.post("/demo/start", data=raw, content_type="application/json")
    assert r.status_code == 400
    reply = r.get_json()
    assert reply["success"] is False and reply["error"].startswith(message)


def test_oversized_body_is_a_json_413(client):
    r = client.post("/demo/start", data=b" " * (17 << 20), content_type="application/json")
    assert r.status_code == 413 and r.get_json()["success"] is False


def test_command_failure_is_success_false_with_the_handlers_message(client):
    r = client.post("/demo/start", json={"vmName": "vm1", "memory": 0})
    assert r.status_code == 200
    assert r.get_json() == {"success": False,
                            "error": "cannot start vm1: memory must not be 0"}


def test_unexpected_exception_is_a_json_500_without_traceback(client, caplog):
    r = client.post("/demo/start", json={"vmName": "vm1", "memory": -1})
    assert r.status_code == 500
    body = r.get_json()
    assert body["success"] is False
    assert "RuntimeError: negative memory reached the handler" in body["error"]
    assert "Traceback" not in r.get_data(as_text=True)
    assert "Traceback" in caplog.text  # the log has it


def test_unknown_path_and_method_are_json_errors(client):
    r = client.post("/no/such/thing", json={})
    assert r.status_code == 404
    assert r.get_json()["success"] is False and "/no/such/thing" in r.get_json()["error"]
    r = client.get("/demo/start")
    assert r.status_code == 405 and r.get_json()["success"] is False


def test_async_without_taskuuid_or_callback_is_rejected_before_running(client):
    r = client.post("/demo/sleep", json={"seconds": 0})
    assert r.status_code == 400 and "taskuuid missing" in r.get_json()["error"]
    r = client.post("/demo/sleep", json={"seconds": 0},
                    headers={"taskuuid": "t1", "callbackurl": "file:///etc/passwd"})
    assert r.status_code == 400 and "callbackurl" in r.get_json()["error"]
    r = client.post("/demo/sleep", json={"seconds": "x"},
                    headers={"taskuuid": "t1", "callbackurl": "http://127.0.0.1:9/cb"})
    assert r.status_code == 400 and r.get_json()["error"].startswith("seconds:")


def test_openapi_documents_models_headers_and_callbacks(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    start = doc["paths"]["/demo/start"]["post"]
    ref = start["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"vmName", "memory", "nics"}
    assert set(schema["required"]) == {"vmName", "memory"}
    sleep = doc["paths"]["/demo/sleep"]["post"]
    assert {p["name"] for p in sleep["parameters"]} == {"taskuuid", "callbackurl"}
    assert "reply" in sleep["callbacks"] and sleep["x-cancellable"] is True
    assert doc["paths"]["/demo/uncancellable"]["post"]["x-cancellable"] is False
    assert "/job/cancel" in doc["paths"]
