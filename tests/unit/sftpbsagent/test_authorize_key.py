"""authorizekey: a KVM host's key is added once, nothing else can be smuggled in."""

import stat

import pytest

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbOa9rhF0dlXQ7 kvmagent@host1"


def test_a_key_is_added_once_and_other_lines_stay(sftpbs, tmp_path):
    keys = tmp_path / "ssh" / "authorized_keys"
    keys.parent.mkdir()
    keys.write_text("ssh-rsa AAAAB3Nza operator@laptop\n")
    assert sftpbs.call("/sftpbackupstorage/authorizekey", {"publicKey": KEY})["added"]
    again = sftpbs.call("/sftpbackupstorage/authorizekey",
                        {"publicKey": KEY.replace("host1", "renamed")})
    assert again["added"] is False  # the same key under another comment
    assert keys.read_text() == f"ssh-rsa AAAAB3Nza operator@laptop\n{KEY}\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600


@pytest.mark.parametrize("bad", [
    KEY + "\ncommand=\"rm -rf /\" ssh-ed25519 AAAA x",
    'command="/bin/sh" ' + KEY,
    "ssh-dss AAAAB3 old@host",
    "",
])
def test_anything_but_one_key_line_is_refused(sftpbs, tmp_path, bad):
    reply = sftpbs.post("/sftpbackupstorage/authorizekey", {"publicKey": bad})
    assert reply.status_code == 400 and "publicKey" in reply.json()["error"]
    assert not (tmp_path / "ssh" / "authorized_keys").exists()
