"""``zfleet <ApiName> key=value ...`` and ``zfleet shell``: the coordinator's API from a
terminal, in ZStack's CLI style.

Values are coerced by the API's own schema (from ``GET /api``): a list field takes
``a,b,c``; numbers and booleans are parsed; ``systemTags``/``userTags`` take one tag per
``key=`` (repeat it), since tags contain commas. Query APIs take conditions
(``name=vm1``, ``state!=Running``, ``name~=web%``, ``uuid?=a,b``, ``memorySize>=1024``)
plus ``fields=uuid,name``, ``limit=``, ``start=``, ``sortBy=``, ``sortDirection=``,
``count=true``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time

import requests

from coordinator.query import parse_condition

DEFAULT_URL = os.environ.get("ZFLEET_URL", "http://127.0.0.1:8080")
QUERY_OPTIONS = {"fields", "limit", "start", "sortBy", "sortDirection", "count",
                 "replyWithCount"}
TAG_FIELDS = {"systemTags", "userTags"}


class CliError(ValueError):
    pass


def fetch_apis(url: str, timeout: float = 10) -> dict[str, dict]:
    try:
        reply = requests.get(url.rstrip("/") + "/api", timeout=timeout)
    except requests.RequestException as exc:
        raise CliError(f"the coordinator at {url} is not reachable ({exc}); is it up "
                       "(`make up`)? --url or ZFLEET_URL say where it is") from None
    return {a["name"]: a for a in reply.json()}


def _coerce(name: str, value: str, prop: dict) -> object:
    kinds = {p.get("type") for p in prop.get("anyOf", [prop])}
    if "array" in kinds:
        return [v for v in value.split(",") if v]
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            raise CliError(f"{name}: not an integer: {value!r}") from None
    if "number" in kinds:
        try:
            return float(value)
        except ValueError:
            raise CliError(f"{name}: not a number: {value!r}") from None
    if "boolean" in kinds:
        if value.lower() not in ("true", "false"):
            raise CliError(f"{name}: true or false, not {value!r}")
        return value.lower() == "true"
    if "object" in kinds:
        try:
            return json.loads(value)
        except ValueError:
            raise CliError(f"{name}: a JSON object, not {value!r}") from None
    return value


def build_body(api: dict, args: list[str]) -> dict:
    """The JSON body of ``api`` from ``key=value`` words."""
    props = api["schema"].get("properties", {})
    body: dict = {}
    query = api["name"].startswith("Query")
    for word in args:
        key, sep, value = word.partition("=")
        if query and key not in QUERY_OPTIONS:
            try:
                cond = parse_condition(word)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            body.setdefault("conditions", []).append(cond.model_dump())
            continue
        if not sep or not key:
            raise CliError(f"expected key=value, got {word!r}")
        if key not in props:
            raise CliError(f"{api['name']} has no field {key!r} (fields: "
                           f"{', '.join(sorted(props))})")
        if key in TAG_FIELDS:
            body.setdefault(key, []).append(value)
        else:
            body[key] = _coerce(key, value, props[key])
    return body


def run_api(url: str, name: str, args: list[str], timeout: float = 3 * 3600,
            apis: dict | None = None) -> int:
    apis = apis if apis is not None else fetch_apis(url)
    api = apis.get(name)
    if api is None:
        close = [n for n in apis if n.lower().startswith(name.lower()[:6])]
        raise CliError(f"no API {name}" + (f" (did you mean {', '.join(close[:5])}?)"
                                           if close else " (zfleet --help lists them)"))
    body = build_body(api, args)
    try:
        reply = requests.post(f"{url.rstrip('/')}/api/{name}", json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise CliError(f"{name}: the coordinator at {url} is not reachable ({exc})") from None
    out = reply.json()
    while out.get("jobUuid") and (reply.status_code == 202 or out.get("state") == "Running"):
        # a job the coordinator did not wait for: poll it
        time.sleep(0.2)
        reply = requests.get(f"{url.rstrip('/')}/api/result/{out['jobUuid']}", timeout=60)
        out = reply.json()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0 if out.get("success") else 1


def list_apis(url: str) -> str:
    try:
        apis = fetch_apis(url, timeout=3)
    except CliError as exc:
        return f"APIs: {exc}"
    width = max(len(n) for n in apis)
    lines = [f"  {n:<{width}}  {'(long) ' if a['long'] else ''}{a['summary']}"
             for n, a in sorted(apis.items())]
    return f"APIs of the coordinator at {url}:\n" + "\n".join(lines)


def shell(url: str) -> int:
    """An interactive prompt (``>>>``): ``ApiName key=value ...``; ``help [ApiName]``;
    ``exit``."""
    try:
        import readline  # noqa: F401 - line editing and history at the prompt
    except ImportError:
        pass
    apis = fetch_apis(url)
    print(f"zfleet shell on {url}: ApiName key=value ...; 'help' lists APIs; 'exit' leaves")
    while True:
        try:
            line = input(">>> ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            continue
        if line in ("exit", "quit"):
            return 0
        try:
            words = shlex.split(line)
            if words[0] == "help":
                if len(words) > 1 and words[1] in apis:
                    print(json.dumps(apis[words[1]]["schema"].get("properties", {}),
                                     indent=2))
                else:
                    print(list_apis(url))
                continue
            run_api(url, words[0], words[1:], apis=apis)
        except (CliError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
