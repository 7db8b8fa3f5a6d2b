"""zfleet: the operator's command line.

The coordinator's API, in ZStack's CLI style (``--url`` or ZFLEET_URL, default
http://127.0.0.1:8080):

  zfleet CreateZone name=zone1
  zfleet QueryVmInstance state=Running fields=uuid,name
  zfleet CreateVmInstance name=vm1 imageUuid=... instanceOfferingUuid=... \\
      l3NetworkUuids=... systemTags='userdata::#cloud-config...'
  zfleet shell                      (a >>> prompt)
  zfleet dump-db --keep-amount 14   (an online backup of the database; restore-db)

An agent directly:

  zfleet call http://127.0.0.1:7070/host/ping
  zfleet call http://127.0.0.1:7070/host/connect hostUuid=0123...cdef \\
      sendCommandUrl=http://127.0.0.1:8080/report
  zfleet call --async http://127.0.0.1:7070/vm/start --json '{"vmInstanceUuid": "..."}'
  zfleet openapi http://127.0.0.1:7070

For ``call``, fields are as in httpie: ``key=value`` is a string, ``key:=json`` a raw
JSON value (``memory:=134217728``, ``bootDev:='["hd"]'``). ``--async`` sends
taskuuid/callbackurl headers and waits for the callback on a one-shot receiver.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from agentlib.receiver import CallbackReceiver
from coordinator import apicli, dbbackup

API_NAME = re.compile(r"^[A-Z][A-Za-z0-9]+$")


def parse_fields(pairs: list[str], raw_json: str | None) -> dict:
    body: dict = {}
    if raw_json:
        loaded = json.loads(raw_json)
        if not isinstance(loaded, dict):
            raise ValueError("--json must be a JSON object")
        body.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or key == ":":
            raise ValueError(f"expected key=value or key:=json, got {pair!r}")
        if key.endswith(":"):
            try:
                body[key[:-1]] = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"{key[:-1]}: not valid JSON: {exc}") from None
        else:
            body[key] = value
    return body


def call(args: argparse.Namespace) -> int:
    body = parse_fields(args.fields, args.json)
    if not args.async_:
        resp = requests.post(args.url, json=body, timeout=args.timeout)
        return _print(resp.json() if _is_json(resp) else {"status": resp.status_code,
                                                             "body": resp.text})
    # the callback must reach us from where the agent runs: listen on the address we
    # use to reach the agent's host unless told otherwise
    listen = args.callback_host or ("127.0.0.1" if urlsplit(args.url).hostname in
                                    ("127.0.0.1", "localhost") else "0.0.0.0")
    taskuuid = uuid.uuid4().hex
    with CallbackReceiver(host=listen) as receiver:
        url = receiver.url if listen != "0.0.0.0" else receiver.url.replace(
            "0.0.0.0", _local_address_towards(args.url))
        ack = requests.post(args.url, json=body, timeout=args.timeout,
                            headers={"taskuuid": taskuuid, "callbackurl": url})
        if not ack.ok:
            return _print(ack.json() if _is_json(ack) else {"status": ack.status_code})
        print(f"accepted as task {taskuuid}; waiting for the callback...", file=sys.stderr)
        [reply] = receiver.wait(taskuuid=taskuuid, timeout=args.timeout)
        return _print(reply.body)


def openapi(args: argparse.Namespace) -> int:
    doc = requests.get(args.url.rstrip("/") + "/openapi.json", timeout=args.timeout).json()
    for path, item in sorted(doc["paths"].items()):
        op = item["post"]
        kind = "async" if "callbacks" in op else "sync "
        print(f"{kind} {path:45s} {op.get('summary', '')}")
    return 0


def _is_json(resp: requests.Response) -> bool:
    return resp.headers.get("content-type", "").startswith("application/json")


def _print(reply: dict) -> int:
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("success", False) else 1


def _local_address_towards(url: str) -> str:
    import socket

    parts = urlsplit(url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((parts.hostname, parts.port or 80))
        return s.getsockname()[0]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    url = apicli.DEFAULT_URL
    if len(argv) >= 2 and argv[0] == "--url":
        url, argv = argv[1], argv[2:]
    try:
        if argv and API_NAME.match(argv[0]):
            return apicli.run_api(url, argv[0], argv[1:])
        if argv[:1] == ["shell"]:
            return apicli.shell(url)
    except (ValueError, requests.RequestException) as exc:
        print(f"zfleet: {exc}", file=sys.stderr)
        return 2
    if argv[:1] in (["-h"], ["--help"]):
        _parser().print_help()
        print("\n" + apicli.list_apis(url))
        return 0
    return _agent_command(argv, url)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zfleet", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("call", help="POST a command to an agent endpoint and print the reply")
    c.add_argument("url", help="the agent endpoint, e.g. http://127.0.0.1:7070/host/ping")
    c.add_argument("fields", nargs="*", help="key=value (string) or key:=json fields")
    c.add_argument("--json", help="the command body as a JSON object (fields are merged in)")
    c.add_argument("--async", dest="async_", action="store_true",
                   help="an async endpoint: send taskuuid/callbackurl and wait for the reply")
    c.add_argument("--callback-host", help="address to receive the callback on")
    c.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    c.set_defaults(func=call)
    o = sub.add_parser("openapi", help="list an agent's endpoints from its /openapi.json")
    o.add_argument("url", help="the agent's base URL, e.g. http://127.0.0.1:7070")
    o.add_argument("--timeout", type=float, default=10.0)
    o.set_defaults(func=openapi)
    sub.add_parser("shell", help="an interactive >>> prompt for the coordinator's API")
    d = sub.add_parser("dump-db", help="an online backup of the coordinator's database",
                       description=dbbackup.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--db", type=Path, help="the database file (default: the one the "
                   f"coordinator at --url/ZFLEET_URL uses, else {dbbackup.DEFAULT_DB})")
    d.add_argument("--dir", type=Path, help="where backups go (default: <db dir>/backups)")
    d.add_argument("--file-name", help="the backup's name (default: zfleet-<time>)")
    d.add_argument("--keep-amount", type=int, help="keep this many backups, newest first")
    d.set_defaults(func=dump_db)
    r = sub.add_parser("restore-db", help="replace the database with a backup (stop the "
                       "coordinator first)")
    r.add_argument("backup", type=Path)
    r.add_argument("--db", type=Path, default=dbbackup.DEFAULT_DB, help="the database file")
    r.set_defaults(func=restore_db)
    return ap


def dump_db(args: argparse.Namespace) -> int:
    db = args.db or _coordinator_db(args.coordinator_url)
    made, removed = dbbackup.dump(db, args.dir or db.parent / "backups",
                                  args.file_name, args.keep_amount)
    print(f"backup {made} ({made.stat().st_size} bytes)")
    for old in removed:
        print(f"removed old backup {old}")
    return 0


def restore_db(args: argparse.Namespace) -> int:
    dbbackup.restore(args.backup, args.db)
    print(f"{args.db} restored from {args.backup}")
    return 0


def _coordinator_db(url: str) -> Path:
    """The database of the coordinator at ``url`` when it runs on this machine (its
    /health names it), else the default path."""
    try:
        path = requests.get(f"{url.rstrip('/')}/health", timeout=3).json().get("database")
    except (requests.RequestException, ValueError, AttributeError):
        path = None
    if path and Path(path).exists():
        print(f"database {path} (the coordinator's at {url})", file=sys.stderr)
        return Path(path)
    print(f"no coordinator on this machine answers at {url} (--url or ZFLEET_URL): "
          f"database {dbbackup.DEFAULT_DB}", file=sys.stderr)
    return dbbackup.DEFAULT_DB


def _agent_command(argv: list[str], url: str = apicli.DEFAULT_URL) -> int:
    args = _parser().parse_args(argv)
    args.coordinator_url = url
    try:
        return args.func(args)
    except (ValueError, requests.RequestException, TimeoutError) as exc:
        print(f"zfleet: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
