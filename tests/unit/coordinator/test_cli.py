"""zfleet's field syntax: key=value strings, key:=json values."""

import pytest

from coordinator.cli import parse_fields


def test_strings_stay_strings_and_json_is_explicit():
    body = parse_fields(["hostUuid=12345678901234567890123456789012", "memory:=134217728",
                         "bootDev:=[\"hd\",\"cdrom\"]", "name=a=b"], '{"cpuNum": 2}')
    assert body == {"hostUuid": "12345678901234567890123456789012", "memory": 134217728,
                    "bootDev": ["hd", "cdrom"], "name": "a=b", "cpuNum": 2}


@pytest.mark.parametrize("bad", ["novalue", "=x", "n:=not json", ":=1"])
def test_bad_fields_are_refused(bad):
    with pytest.raises(ValueError):
        parse_fields([bad], None)
