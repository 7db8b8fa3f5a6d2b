"""The metadata tree a VM sees (kvmagent.metadata_server.resolve) and the user data limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kvmagent.metadata_server import resolve
from kvmagent.models.userdata import MAX_USERDATA_BYTES, UserdataTO

VM = {"vmIp": "10.0.0.5", "metadata": {"vmUuid": "abc", "vmHostname": "web"},
      "userdata": "#cloud-config\n", "sshKey": "ssh-ed25519 AAAA me@host"}


@pytest.mark.parametrize(("path", "body"), [
    ("", "meta-data/\nuser-data"),
    ("meta-data/", "instance-id\nlocal-hostname\nlocal-ipv4\npublic-keys/"),
    ("meta-data/instance-id", "abc"),
    ("meta-data/local-hostname", "web"),
    ("meta-data/local-ipv4", "10.0.0.5"),
    ("meta-data/public-keys/", "0=me@host"),
    ("meta-data/public-keys/0/", "openssh-key"),
    ("meta-data/public-keys/0/openssh-key", "ssh-ed25519 AAAA me@host\n"),
    ("user-data", "#cloud-config\n"),
    ("meta-data/nothing", None),
])
def test_tree(path, body):
    assert resolve(VM, path) == body


def test_a_vm_without_key_or_user_data():
    vm = {"vmIp": "10.0.0.6", "metadata": {"vmUuid": "def"}}
    assert resolve(vm, "") == "meta-data/"
    assert resolve(vm, "meta-data") == "instance-id\nlocal-hostname\nlocal-ipv4"
    assert resolve(vm, "meta-data/local-hostname") == "def"
    assert resolve(vm, "user-data") is None
    assert resolve(vm, "meta-data/public-keys/") is None


def test_user_data_over_the_limit_names_the_field():
    to = {"bridgeName": "br0", "namespaceName": "br0_x", "vmIp": "10.0.0.5",
          "metadata": {"vmUuid": "abc"}}
    UserdataTO.model_validate({**to, "userdata": "x" * MAX_USERDATA_BYTES})
    with pytest.raises(ValidationError, match="userdata"):
        UserdataTO.model_validate({**to, "userdata": "x" * (MAX_USERDATA_BYTES + 1)})
