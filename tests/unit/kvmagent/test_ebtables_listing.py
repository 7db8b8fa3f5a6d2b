"""One ``ebtables -L`` of a table tells every chain, its rules and the jumps to it."""

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


def test_a_listing_is_read_into_every_chain_and_its_rules(monkeypatch):
    runs = []

    def run(argv, check=True, **kw):
        runs.append(argv)
        return shell.Result(argv, 0, LISTING, "", 0.0)

    monkeypatch.setattr(shell, "run", run)
    assert ebtables.chains() == {
        "INPUT": [], "FORWARD": ["-j ZD-0123456789"],
        "ZD-0123456789": ["-p ARP -i eth1 --arp-ip-dst 10.0.0.2 -j DROP",
                          "-p IPv4 -o eth1 --ip-proto udp --ip-sport 67:68 -j DROP"]}
    assert ebtables.rules("ZD-0123456789") == ebtables.chains()["ZD-0123456789"]
    assert ebtables.rules("ZM-absent") is None
    wanted = ebtables.chains()["ZD-0123456789"]
    runs.clear()
    assert not ebtables.ensure_chain("ZD-0123456789", wanted)
    assert runs == [["ebtables", "-t", "filter", "-L"]]  # a chain as wanted: one run
