"""ensure_chain's diff: a chain model follows the ebtables calls; every change ends in
exactly the wanted rules, and an added or removed VM costs one call per rule."""

import random
import shlex

import pytest

from kvmagent.drivers import ebtables


class Chain:
    def __init__(self, rules):
        self.rules = list(rules)
        self.calls = []

    def run(self, table, *args):
        self.calls.append(args)
        op, rest = args[0], args[2:]
        if op == "-F":
            self.rules = []
        elif op == "-A":
            self.rules.append(" ".join(rest))
        elif op == "-I":
            self.rules.insert(int(rest[0]) - 1, " ".join(rest[1:]))
        elif op == "-D":
            self.rules.remove(" ".join(rest))


def rule(i: int) -> str:
    return f"-p IPv4 -s ! 52:54:00:00:00:{i:02x} -o zdo1 --ip-src 10.0.0.{i} -j DROP"


@pytest.fixture
def chain(monkeypatch):
    made = Chain([])
    monkeypatch.setattr(ebtables, "_run", made.run)
    return made


def test_a_vm_added_in_the_middle_or_removed_costs_one_call(chain):
    chain.rules = [rule(i) for i in (1, 2, 4, 5)]
    wanted = [rule(i) for i in (1, 2, 3, 4, 5)]
    ebtables._converge("filter", "ZM-x", list(chain.rules), wanted)
    assert chain.rules == wanted and len(chain.calls) == 1 and chain.calls[0][0] == "-I"
    chain.calls.clear()
    wanted = [rule(i) for i in (1, 3, 4, 5)]
    ebtables._converge("filter", "ZM-x", list(chain.rules), wanted)
    assert chain.rules == wanted and chain.calls == [("-D", "ZM-x", *shlex.split(rule(2)))]


def test_any_change_ends_in_exactly_the_wanted_rules(chain):
    rng = random.Random(7)
    for _ in range(300):
        chain.rules = [rule(i) for i in sorted(rng.sample(range(1, 40), rng.randint(0, 12)))]
        wanted = [rule(i) for i in rng.sample(range(1, 40), rng.randint(0, 12))]
        if rng.random() < 0.5:
            wanted.sort()
        ebtables._converge("filter", "ZM-x", list(chain.rules), wanted)
        assert chain.rules == wanted
