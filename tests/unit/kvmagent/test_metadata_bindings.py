"""MetadataService.bindings: the (IP, MAC) pairs the ebtables rules bind, read from the
VM files, again only when a file changed."""

from __future__ import annotations

from agentlib import jsonfile
from kvmagent.drivers.metadata import MetadataService
from kvmagent.metadata_server import vm_file

NS = "br_eth0_l3"


def _write(service: MetadataService, ip: str, mac: str) -> None:
    jsonfile.write(vm_file(service.dir(NS), ip), {"vmIp": ip, "vmMac": mac, "userdata": "x"})


def test_bindings_follow_the_files(tmp_path):
    service = MetadataService(tmp_path, dhcp=None)
    assert service.bindings(NS) == []
    _write(service, "10.0.0.2", "fa:00:00:00:00:02")
    _write(service, "10.0.0.3", "fa:00:00:00:00:03")
    assert sorted(service.bindings(NS)) == [("10.0.0.2", "fa:00:00:00:00:02"),
                                            ("10.0.0.3", "fa:00:00:00:00:03")]
    _write(service, "10.0.0.3", "fa:00:00:00:00:33")  # rewritten: read again
    vm_file(service.dir(NS), "10.0.0.2").unlink()
    assert service.bindings(NS) == [("10.0.0.3", "fa:00:00:00:00:33")]


def test_a_file_is_read_once_while_it_is_unchanged(tmp_path, monkeypatch):
    service = MetadataService(tmp_path, dhcp=None)
    _write(service, "10.0.0.2", "fa:00:00:00:00:02")
    reads = []
    real = jsonfile.read
    monkeypatch.setattr(jsonfile, "read", lambda p, *a: reads.append(p) or real(p, *a))
    service.bindings(NS)
    service.bindings(NS)
    assert len(reads) == 1
