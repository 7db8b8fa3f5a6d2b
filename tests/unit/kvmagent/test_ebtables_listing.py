"""One ``ebtables -L`` of a table tells every chain, its rules and the jumps to it; what
it showed is reused while the nf_tables generation says nothing changed since."""

import shlex

import pytest

from agentlib import shell
from kvmagent.drivers import ebtables

LISTING = """Bridge table: filter

Bridge chain: INPUT, entries: 0, policy: ACCEPT

Bridge chain: FORWARD, entries: 1, policy: ACCEPT
-j ZD-0123456789

Bridge chain: ZD-0123456789, entries: 2, policy: RETURN
-p ARP -i eth1 --arp-ip-dst 10.0.0.2 -j DROP
-p IPv4 -o eth1 --ip-proto udp --ip-sport 67:68 -j DROP

"""
RULES = ["-p ARP -i eth1 --arp-ip-dst 10.0.0.2 -j DROP",
         "-p IPv4 -o eth1 --ip-proto udp --ip-sport 67:68 -j DROP"]


class Host:
    """The filter table and its generation, as ebtables and the kernel would keep them."""

    def __init__(self):
        self.chains = {"INPUT": [], "FORWARD": [], "OUTPUT": []}
        self.gen = 7
        self.runs = []

    def run(self, argv, check=True, input=None, **kw):
        self.runs.append(argv)
        if argv[-1] == "-L":
            text = "".join(f"Bridge chain: {c}, entries: {len(r)}, policy: ACCEPT\n"
                           + "".join(f"{x}\n" for x in r) + "\n"
                           for c, r in self.chains.items())
            return shell.Result(argv, 0, "Bridge table: filter\n\n" + text, "", 0.0)
        commands = [argv[3:]] if argv[0] == "ebtables" else [
            shlex.split(line) for line in input.splitlines()[1:-1]]
        for args in commands:
            op, chain, rest = args[0], args[1], args[2:]
            if op == "-N":
                self.chains[chain] = []
            elif op == "-I" and rest and rest[0].isdigit():
                self.chains[chain].insert(int(rest[0]) - 1, " ".join(rest[1:]))
            elif op == "-I":
                self.chains[chain].insert(0, " ".join(rest))
            elif op == "-D":
                self.chains[chain].remove(" ".join(rest))
        self.gen += 1
        return shell.Result(argv, 0, "", "", 0.0)


@pytest.fixture
def host(monkeypatch):
    made = Host()
    monkeypatch.setattr(shell, "run", made.run)
    monkeypatch.setattr(ebtables, "generation", lambda: made.gen)
    monkeypatch.setattr(ebtables, "_known", None)
    return made


def test_a_listing_is_read_into_every_chain_and_its_rules(monkeypatch):
    runs = []

    def run(argv, check=True, **kw):
        runs.append(argv)
        return shell.Result(argv, 0, LISTING, "", 0.0)

    monkeypatch.setattr(shell, "run", run)
    monkeypatch.setattr(ebtables, "generation", lambda: None)
    assert ebtables.chains() == {"INPUT": [], "FORWARD": ["-j ZD-0123456789"],
                                 "ZD-0123456789": RULES}
    assert ebtables.rules("ZD-0123456789") == RULES
    assert ebtables.rules("ZM-absent") is None
    runs.clear()
    assert not ebtables.ensure_chain("ZD-0123456789", RULES)
    assert runs == [["ebtables", "-t", "filter", "-L"]]  # a chain as wanted: one run


def test_a_chain_checked_again_costs_no_run_until_the_generation_moves(host):
    assert ebtables.ensure_chain("ZD-x", RULES)
    assert host.chains["ZD-x"] == RULES and host.chains["FORWARD"] == ["-j ZD-x"]
    assert [argv[0] for argv in host.runs] == ["ebtables", "ebtables", "ebtables-restore"]
    host.runs.clear()
    assert not ebtables.ensure_chain("ZD-x", RULES)
    assert ebtables.ensure_chain("ZD-x", [*RULES, "-p ARP -j DROP"])
    assert host.runs == [["ebtables-restore", "--noflush"]]  # the added rule alone
    host.chains["ZD-x"] = []  # another program flushed it
    host.gen += 1
    assert ebtables.ensure_chain("ZD-x", [*RULES, "-p ARP -j DROP"])
    assert host.chains["ZD-x"] == [*RULES, "-p ARP -j DROP"]
