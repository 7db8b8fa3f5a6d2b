"""Constrained field types refuse hostile values before any tool sees them."""

import pytest
from pydantic import TypeAdapter, ValidationError

from agentlib.types import (
    AbsPath,
    DisplayName,
    IPv4,
    LinkName,
    MacAddress,
    Netmask,
    SafeName,
    Uuid,
    VolumePath,
)


@pytest.mark.parametrize("typ, good, bad", [
    (SafeName, ["vm-1", "a.b_c:d", "img@1"], ["", "-rf", "a b", "a;b", "a\nb", "../x", "a/b"]),
    (LinkName, ["br0", "zf-0123456789ab"], ["toolongname12345", "br 0", "br;0", "-x"]),
    (Uuid, ["0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"],
     ["0123", "0123456789abcdef0123456789abcdeg", "x" * 32]),
    (MacAddress, ["52:54:00:ab:CD:ef"],
     ["52:54:00:ab:cd", "52-54-00-ab-cd-ef", "zz:54:00:ab:cd:ef"]),
    (AbsPath, ["/var/lib/x.qcow2", "/a//b"], ["rel/path", "/a/../etc", "/a\nb", "/a\x00b"]),
    (IPv4, ["10.0.0.1"], ["10.0.0.256", "::1", "host"]),
    (Netmask, ["255.255.255.0", "24"], ["255.0.255.0", "33"]),
    (DisplayName, ["web server 1", "云主机-1", "a<b>&'\""], ["", "a\nb", "tab\there", "x" * 256]),
    (VolumePath, ["/pool/vol.qcow2", "ceph://rbd/vol-1", "ceph://rbd/img@snap"],
     ["ceph://rbd", "ceph://rbd/a/b", "ceph://../x", "ceph://rbd/img;rm", "rel.qcow2"]),
])
def test_accepts_good_and_refuses_bad(typ, good, bad):
    adapter = TypeAdapter(typ)
    for value in good:
        adapter.validate_python(value)
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)
