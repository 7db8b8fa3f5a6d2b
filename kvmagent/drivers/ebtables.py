"""ebtables chains owned by the agent: created idempotently, rewritten only when they differ.

Each feature keeps its rules in its own chain (policy RETURN, so the rules of other
chains still apply after it), entered by one jump from a built-in chain. Rules are
given in the exact form ``ebtables -L`` prints them (``-p IPv4 --ip-proto udp ...``),
so comparing the listing with the wanted rules tells whether anything must change, and
a repeated command rewrites nothing. ``ebtables`` 1.8.9 (nf_tables backend) works inside
network namespaces; every call is an argv through :mod:`agentlib.shell`.

An ebtables run costs ~10 ms, and each VM created re-checks the chains of its L3: so
what a listing showed is remembered with the nf_tables generation of this network
namespace (a counter the kernel bumps on every ruleset change, by anyone: read over
netlink in microseconds). While the generation is unchanged the listing still holds; a
change of a chain is one ``ebtables-restore --noflush`` (one transaction), and when the
generation then moved by exactly that one, the remembered listing takes the change;
anything else (another program's change, a failure, the legacy backend, a restarted
agent) means the chains are listed again.
"""

from __future__ import annotations

import shlex
import socket
import struct
import threading

from agentlib import shell
from agentlib.errors import AgentError

EBTABLES = "ebtables"
NETLINK_NETFILTER = 12
NFT_GETGEN = (10 << 8) | 16  # NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN
NFT_NEWGEN = (10 << 8) | 15
NFTA_GEN_ID = 1

_guard = threading.Lock()
_known: tuple[int, dict[str, dict[str, list[str]]]] | None = None
"""(generation, table -> its chains) as last listed or changed by this process."""
_nft: bool | None = None  # ebtables is the nf_tables one (what the generation counts)


class EbtablesError(AgentError):
    """An ebtables command failed (the message carries the command and its stderr)."""


def chains(table: str = "filter") -> dict[str, list[str]]:
    """Every chain of ``table`` and its rules as ``ebtables -L`` prints them."""
    return _chains(table)[1]


def _chains(table: str) -> tuple[int | None, dict[str, list[str]]]:
    """(the generation the listing is known to hold at, or None; the listing: a copy)."""
    gen = generation()
    with _guard:
        if gen is not None and _known and _known[0] == gen and table in _known[1]:
            return gen, _copy(_known[1][table])
    found = _list(table)
    if gen is None or generation() != gen:
        return None, found
    _remember(gen, gen, table, found)
    return gen, _copy(found)


def _list(table: str) -> dict[str, list[str]]:
    """One run tells every chain, so both a chain and the jump to it."""
    res = shell.run([EBTABLES, "-t", table, "-L"], check=False)
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in res.stdout.splitlines() if res.rc == 0 else []:
        if line.startswith("Bridge chain: "):
            current = found.setdefault(line[len("Bridge chain: "):].split(",")[0], [])
        elif current is not None and line.strip():
            current.append(line)
    return found


def _remember(gen: int, since: int, table: str, listed: dict[str, list[str]]) -> None:
    """``table`` is ``listed`` at generation ``gen``; what was known of the other tables at
    ``since`` still holds (between the two, only ``table`` changed, by us)."""
    global _known
    with _guard:
        others = _known[1] if _known and _known[0] == since else {}
        _known = gen, {**others, table: _copy(listed)}


def _copy(listed: dict[str, list[str]]) -> dict[str, list[str]]:
    return {chain: list(rules) for chain, rules in listed.items()}


def generation() -> int | None:
    """The nf_tables ruleset generation of this network namespace (None: not known, or
    ebtables is not the nf_tables one, whose changes it would not count)."""
    global _nft
    if _nft is None:
        _nft = "nf_tables" in shell.run([EBTABLES, "-V"], check=False).stdout
    if not _nft:
        return None
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
            sock.send(struct.pack("=LHHLLBBH", 20, NFT_GETGEN, 1, 1, 0, socket.AF_UNSPEC,
                                  0, 0))
            reply = sock.recv(65536)
    except OSError:
        return None
    length, kind = struct.unpack_from("=LH", reply)
    pos = 20  # netlink header, nfgenmsg
    while kind == NFT_NEWGEN and pos + 4 <= min(length, len(reply)):
        size, attr = struct.unpack_from("=HH", reply, pos)
        if attr & 0x3FFF == NFTA_GEN_ID:
            return struct.unpack_from(">L", reply, pos + 4)[0]
        pos += max((size + 3) & ~3, 4)
    return None


def rules(chain: str, table: str = "filter") -> list[str] | None:
    """The rules of ``chain`` as ``ebtables -L`` prints them, or None if it does not exist."""
    return chains(table).get(chain)


def ensure_chain(chain: str, wanted: list[str], jump_from: str = "FORWARD",
                 table: str = "filter") -> bool:
    """Chain ``chain`` holding exactly ``wanted``, jumped to first thing from ``jump_from``.

    True if anything changed.
    """
    since, listed = _chains(table)
    runs = 0
    current = listed.get(chain)
    if current is None:
        _run(table, "-N", chain, "-P", "RETURN")
        current, runs = [], 1
    commands: list[tuple[str, ...]] = []
    if current != wanted:
        _converge(table, chain, current, wanted, lambda _, *args: commands.append(args))
    jumps = listed.get(jump_from, [])
    if f"-j {chain}" not in jumps:
        commands.append(("-I", jump_from, "-j", chain))
        jumps = [f"-j {chain}", *jumps]
    if commands:
        _restore(table, commands)
        runs += 1
    if runs and since is not None and generation() == since + runs:
        _remember(since + runs, since, table, {**listed, chain: wanted, jump_from: jumps})
    return bool(runs)


def _converge(table: str, chain: str, current: list[str], wanted: list[str],
              run=None) -> None:
    """Rules added or removed, order kept (a VM applied or released): only those are
    inserted or deleted, one ebtables command each, and the other VMs' rules never leave
    the chain. Anything else: flush and rebuild. (Rewriting the whole chain on every
    change made 100 VMs on an L3 cost ~10,000 ebtables runs.) ``run(table, *args)``
    takes each command (default: run it)."""
    run = run or _run
    if _is_subsequence(current, wanted):
        position = 0
        for rule in wanted:
            position += 1
            if position > len(current) or current[position - 1] != rule:
                current = [*current[:position - 1], rule, *current[position - 1:]]
                run(table, "-I", chain, str(position), *shlex.split(rule))
    elif _is_subsequence(wanted, current):
        keep = iter(wanted)
        expected = next(keep, None)
        for rule in current:
            if rule == expected:
                expected = next(keep, None)
            else:
                run(table, "-D", chain, *shlex.split(rule))
    else:
        run(table, "-F", chain)
        for rule in wanted:
            run(table, "-A", chain, *shlex.split(rule))


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    items = iter(long)
    return len(short) <= len(long) and all(rule in items for rule in short)


def delete_chain(chain: str, jump_from: str = "FORWARD", table: str = "filter") -> None:
    """Remove the jump and the chain; absent is fine."""
    while f"-j {chain}" in (rules(jump_from, table) or []):
        _run(table, "-D", jump_from, "-j", chain)
    if rules(chain, table) is not None:
        _run(table, "-F", chain)  # nf_tables refuses to delete a chain that has rules
        _run(table, "-X", chain)


def _run(table: str, *args: str) -> None:
    try:
        shell.run([EBTABLES, "-t", table, *args])
    except shell.CommandFailed as exc:
        raise EbtablesError(str(exc)) from None


def _restore(table: str, commands: list[tuple[str, ...]]) -> None:
    """``commands`` in one run and one transaction: all of them, or none."""
    text = "".join(" ".join(args) + "\n" for args in commands)
    try:
        shell.run([f"{EBTABLES}-restore", "--noflush"], input=f"*{table}\n{text}COMMIT\n")
    except shell.CommandFailed as exc:
        raise EbtablesError(str(exc)) from None
