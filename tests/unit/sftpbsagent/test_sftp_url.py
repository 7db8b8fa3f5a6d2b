"""sftp URLs: each part reaches ssh's argv, so each is checked."""

import pytest

from sftpbsagent.drivers.download import DownloadError, SftpSource, check_url, parse_sftp


def test_parts_and_defaults():
    assert parse_sftp("sftp://backup@10.0.0.5:2222/srv/img%20a.qcow2") == SftpSource(
        "backup", "10.0.0.5", 2222, "/srv/img a.qcow2")
    assert parse_sftp("sftp://bs.example/x.qcow2") == SftpSource("root", "bs.example", 22,
                                                                "/x.qcow2")


@pytest.mark.parametrize("url, message", [
    ("sftp://-oProxyCommand=touch@h/x", "login name"),
    ("sftp://root@-oProxyCommand=touch/x", "valid host"),
    ("sftp://root@h/../etc/shadow", "without '..'"),
    ("sftp://root@h", "absolute"),
    ("sftp://root:secret@h/x", "passwords are not used"),
    ("sftp://root@h:99999/x", "malformed"),
    ("sftp://root@h/x\ny", "control characters"),
])
def test_hostile_parts_are_refused(url, message):
    with pytest.raises(DownloadError, match=message) as err:
        check_url(url, [])
    assert "secret" not in str(err.value)
    assert str(err.value).startswith("url: ")
