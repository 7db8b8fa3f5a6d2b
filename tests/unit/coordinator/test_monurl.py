"""Mon URLs: defaults, passwords holding '@' and ':', and a clear error for each
malformed form that never shows the password."""

import pytest

from coordinator.monurl import MonUrl, MonUrlError, parse_mon_url


@pytest.mark.parametrize("url, expected", [
    ("root:password@10.0.0.1", MonUrl("root", "password", "10.0.0.1", 22, 6789)),
    ("root:pw@10.0.0.1:2222", MonUrl("root", "pw", "10.0.0.1", 2222, 6789)),
    ("root:pw@10.0.0.1/?monPort=3300", MonUrl("root", "pw", "10.0.0.1", 22, 3300)),
    ("root:pw@10.0.0.1:2222/?monPort=7000", MonUrl("root", "pw", "10.0.0.1", 2222, 7000)),
    ("root:pw@10.0.0.1/", MonUrl("root", "pw", "10.0.0.1", 22, 6789)),
    ("root:p@ss:w@rd@10.0.0.1:22", MonUrl("root", "p@ss:w@rd", "10.0.0.1", 22, 6789)),
    ("ceph-admin:a:b@c/?d@mon1.example.com/?monPort=6790",
     MonUrl("ceph-admin", "a:b@c/?d", "mon1.example.com", 22, 6790)),
    ("u:@@@10.0.0.2", MonUrl("u", "@@", "10.0.0.2", 22, 6789)),
    ("u: spaced pw @10.0.0.2", MonUrl("u", " spaced pw ", "10.0.0.2", 22, 6789)),
])
def test_parses(url, expected):
    assert parse_mon_url(url) == expected


@pytest.mark.parametrize("url, message", [
    ("", "empty"),
    ("root@10.0.0.1", "no ':' between the ssh user and password"),
    ("root:pw", "no '@'"),
    (":pw@10.0.0.1", "'' is not a valid ssh user name"),
    ("ro ot:pw@10.0.0.1", "not a valid ssh user name"),
    ("root:@10.0.0.1", "the ssh password is empty"),
    ("root:pw@", "expected monIp"),
    ("root:pw@10.0.0.1:", "sshPort '' is not a port"),
    ("root:pw@10.0.0.1:0", "sshPort '0' is not a port"),
    ("root:pw@10.0.0.1:65536", "sshPort '65536' is not a port"),
    ("root:pw@10.0.0.1:22x", "sshPort '22x' is not a port"),
    ("root:pw@10.0.0.1:２２", "is not a port"),
    ("root:pw@10.0.0.1/?monPort=", "monPort '' is not a port"),
    ("root:pw@10.0.0.1/?monPort=abc", "monPort 'abc' is not a port"),
    ("root:pw@10.0.0.1/?port=1", "unknown option 'port=1'"),
    ("root:pw@10.0.0.1/x", "only /?monPort=N may follow"),
    ("root:pw@10.0.0.1:22:33", "is not a port"),
    ("root:pw@999.0.0.1", "not an IPv4 address or host name"),
    ("root:pw@10.0.0", "not an IPv4 address or host name"),
    ("root:pw@-bad.host", "not an IPv4 address or host name"),
    ("root:pw@a;reboot", "not an IPv4 address or host name"),
    ("root:pw@[::1]:22", "IPv6"),
    ("root:pw@10.0.0.1\n", "control characters"),
    ("root:p\nw@10.0.0.1", "control characters"),
])
def test_malformed_is_a_clear_error_without_the_password(url, message):
    with pytest.raises(MonUrlError) as exc:
        parse_mon_url(url)
    assert message in str(exc.value), str(exc.value)
    if ":" in url and "@" in url:
        password = url.split(":", 1)[1].rsplit("@", 1)[0]
        if len(password) > 2:
            assert password not in str(exc.value)


def test_password_never_shows():
    mon = parse_mon_url("root:s3cr3t@10.0.0.1:2222/?monPort=3300")
    assert "s3cr3t" not in repr(mon) and "s3cr3t" not in str(mon)
    assert str(mon) == "root:***@10.0.0.1:2222/?monPort=3300"
    assert mon.mon_addr == "10.0.0.1:3300"
    assert parse_mon_url(str(mon).replace("***", "x")).host == "10.0.0.1"
