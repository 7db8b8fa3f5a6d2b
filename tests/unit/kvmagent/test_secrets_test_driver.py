"""Ceph secrets on libvirt's test driver, which has no secret driver: the control-plane
benchmark's hosts must still take /vm/createcephsecret (VM creation prepares every host
with it) instead of failing the create."""

import libvirt
import pytest

from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.secrets import SecretDriver

UUID = "0123456789abcdef0123456789abcdef"
KEY = "QVFCL2xKdGxBQUFBQUJBQVpQSVRITG9aeVp0bHRlQT09"


@pytest.fixture
def test_driver():
    conn = LibvirtConnection("test:///default", lambda _event: None)
    conn.open()
    try:
        yield conn
    finally:
        conn.close()


def test_the_test_driver_really_has_no_secrets(test_driver):
    with pytest.raises(libvirt.libvirtError) as err:
        test_driver.conn.secretLookupByUUIDString(UUID)
    assert err.value.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT


def test_a_ceph_secret_is_accepted_and_not_stored_there(test_driver):
    secrets = SecretDriver(test_driver)
    assert secrets.set_ceph_secret(UUID, KEY) is False  # nothing defined
    assert secrets.set_ceph_secret(UUID, KEY) is False  # idempotent
    assert secrets.delete(UUID) is False
