"""ebtables chains owned by the agent: created idempotently, rewritten only when they differ.

Each feature keeps its rules in its own chain (policy RETURN, so the rules of other
chains still apply after it), entered by one jump from a built-in chain. Rules are
given in the exact form ``ebtables -L`` prints them (``-p IPv4 --ip-proto udp ...``),
so comparing the listing with the wanted rules tells whether anything must change, and
a repeated command rewrites nothing. ``ebtables`` 1.8.9 (nf_tables backend) works inside
network namespaces; every call is an argv through :mod:`agentlib.shell`.
"""

from __future__ import annotations

import shlex

from agentlib import shell
from agentlib.errors import AgentError

EBTABLES = "ebtables"


class EbtablesError(AgentError):
    """An ebtables command failed (the message carries the command and its stderr)."""


def chains(table: str = "filter") -> dict[str, list[str]]:
    """Every chain of ``table`` and its rules as ``ebtables -L`` prints them: one run
    tells both a chain and the jump to it (an ebtables run costs ~10 ms)."""
    res = shell.run([EBTABLES, "-t", table, "-L"], check=False)
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in res.stdout.splitlines() if res.rc == 0 else []:
        if line.startswith("Bridge chain: "):
            current = found.setdefault(line[len("Bridge chain: "):].split(",")[0], [])
        elif current is not None and line.strip():
            current.append(line)
    return found


def rules(chain: str, table: str = "filter") -> list[str] | None:
    """The rules of ``chain`` as ``ebtables -L`` prints them, or None if it does not exist."""
    return chains(table).get(chain)


def ensure_chain(chain: str, wanted: list[str], jump_from: str = "FORWARD",
                 table: str = "filter") -> bool:
    """Chain ``chain`` holding exactly ``wanted``, jumped to first thing from ``jump_from``.

    True if anything changed.
    """
    changed = False
    listed = chains(table)
    current = listed.get(chain)
    if current is None:
        _run(table, "-N", chain, "-P", "RETURN")
        current, changed = [], True
    if current != wanted:
        _converge(table, chain, current, wanted)
        changed = True
    if f"-j {chain}" not in listed.get(jump_from, []):
        _run(table, "-I", jump_from, "-j", chain)
        changed = True
    return changed


def _converge(table: str, chain: str, current: list[str], wanted: list[str]) -> None:
    """Rules added or removed, order kept (a VM applied or released): only those are
    inserted or deleted, one ebtables call each, and the other VMs' rules never leave
    the chain. Anything else: flush and rebuild. (Rewriting the whole chain on every
    change made 100 VMs on an L3 cost ~10,000 ebtables runs.)"""
    if _is_subsequence(current, wanted):
        position = 0
        for rule in wanted:
            position += 1
            if position > len(current) or current[position - 1] != rule:
                current = [*current[:position - 1], rule, *current[position - 1:]]
                _run(table, "-I", chain, str(position), *shlex.split(rule))
    elif _is_subsequence(wanted, current):
        keep = iter(wanted)
        expected = next(keep, None)
        for rule in current:
            if rule == expected:
                expected = next(keep, None)
            else:
                _run(table, "-D", chain, *shlex.split(rule))
    else:
        _run(table, "-F", chain)
        for rule in wanted:
            _run(table, "-A", chain, *shlex.split(rule))


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
