"""``GET /openapi.json``: the agent's endpoints, generated from the registered models.

Async endpoints document the ``taskuuid``/``callbackurl`` headers, the immediate
acknowledgement, and the reply body POSTed to the callback URL. A reply is either the
command's reply model or ``{success: false, error}`` (a failed command has none of the
reply's other fields), and 400/500 answers are that error reply too.
"""

from __future__ import annotations

import typing

from pydantic.json_schema import models_json_schema

if typing.TYPE_CHECKING:
    from agentlib.agent import Agent

REF = "#/components/schemas/{model}"

_ERROR = {
    "type": "object",
    "properties": {"success": {"const": False}, "error": {"type": "string"}},
    "required": ["success", "error"],
}
_ACK = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "error": {"type": "string"},
        "taskUuid": {"type": "string"},
        "status": {"enum": ["accepted", "duplicate", "redelivered"]},
    },
}
_ASYNC_HEADERS = [
    {"name": "taskuuid", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "identifies the task; a repeated taskuuid is not run twice"},
    {"name": "callbackurl", "in": "header", "required": True,
     "schema": {"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 4096},
     "description": "the reply is POSTed here, with the taskuuid header; http(s), a valid "
                    "host and port, never the agent's own address and port"},
]


def build(agent: Agent) -> dict:
    routes = sorted(agent.routes.values(), key=lambda r: r.path)
    wanted = {(r.command, "validation") for r in routes} | {(r.reply, "serialization")
                                                            for r in routes}
    refs, top = models_json_schema(sorted(wanted, key=lambda k: (k[0].__name__, k[1])),
                                   by_alias=True, ref_template=REF)
    schemas = top.get("$defs", {})
    schemas["ErrorReply"] = _ERROR
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(
        model="ErrorReply")}}}}
    errors = {
        "400": {"description": "malformed JSON or body, or an invalid field (named in error)",
                **error},
        "500": {"description": "unexpected agent error (details in the agent log)", **error},
    }
    paths = {}
    for r in routes:
        body = {"content": {"application/json": {"schema": refs[(r.command, "validation")]}}}
        reply = {"content": {"application/json": {"schema": {"anyOf": [
            refs[(r.reply, "serialization")], {"$ref": REF.format(model="ErrorReply")}]}}}}
        op: dict = {
            "operationId": r.path.strip("/").replace("/", "_"),
            "summary": r.summary,
            "description": r.description,
            "requestBody": {"required": True, **body},
        }
        if r.kind == "sync":
            op["responses"] = {"200": {"description": "the reply (success may be false)",
                                       **reply}, **errors}
        else:
            op["parameters"] = _ASYNC_HEADERS
            op["responses"] = {"200": {"description": "accepted; the reply follows at the "
                                       "callback URL",
                                       "content": {"application/json": {"schema": _ACK}}},
                               **errors}
            op["callbacks"] = {"reply": {"{$request.header.callbackurl}": {"post": {
                "requestBody": reply, "responses": {"200": {"description": "received"}}}}}}
            op["x-cancellable"] = r.takes_task
        paths[r.path] = {"post": op}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"zfleet {agent.name}", "version": agent.version,
                 "description": "ZStack agent protocol: POST JSON, {success, error} replies; "
                                "async commands call back to callbackurl."},
        "paths": paths,
        "components": {"schemas": schemas},
    }
