"""libvirt secrets holding cephx keys, which qemu uses to open RBD disks.

A VM's RBD disk names its key by secret uuid (``<auth><secret uuid=...>``), so every
host that may run the VM needs that secret before the VM lands there, by start or by
incoming migration ("Secret not found" on a migration target was a classic failure).
Secrets are persistent (they survive a libvirtd restart) and private (libvirt never
hands the value back through its API); the key is never logged or put in an error.
"""

from __future__ import annotations

import base64
import logging
import uuid as uuidlib
import xml.etree.ElementTree as ET

import libvirt

from agentlib.errors import AgentError
from kvmagent.drivers.libvirt_conn import LibvirtConnection

log = logging.getLogger(__name__)

USAGE_PREFIX = "zfleet-ceph-"
TEST_DRIVER = "TEST"  # virConnectGetType of libvirt's in-process test:///default


def ceph_secret_xml(uuid: str, user: str, usage: str) -> str:
    root = ET.Element("secret", ephemeral="no", private="yes")
    ET.SubElement(root, "uuid").text = uuid
    ET.SubElement(root, "description").text = f"cephx key of client.{user} (zfleet)"
    ET.SubElement(ET.SubElement(root, "usage", type="ceph"), "name").text = usage
    return ET.tostring(root, encoding="unicode")


class SecretDriver:
    def __init__(self, libvirt_conn: LibvirtConnection):
        self.libvirt = libvirt_conn

    def lookup(self, uuid: str) -> libvirt.virSecret | None:
        try:
            return self.libvirt.conn.secretLookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return None
            raise AgentError(f"ceph secret {uuid}: libvirt lookup failed: {exc}") from None

    def set_ceph_secret(self, uuid: str, user_key: str, user: str = "admin") -> bool:
        """Define (or update) secret ``uuid`` with the base64 cephx ``user_key``;
        True if it was created, False if an existing one was updated."""
        uuid = _canonical(uuid)
        if self._without_secrets():
            log.warning("ceph secret %s not stored: libvirt's test driver keeps no secrets "
                        "(and opens no disks that would need them)", uuid)
            return False
        existing = self.lookup(uuid)
        usage = f"{USAGE_PREFIX}{uuid}"
        if existing is not None:
            if existing.usageType() != libvirt.VIR_SECRET_USAGE_TYPE_CEPH:
                raise AgentError(f"ceph secret {uuid}: the uuid is already a libvirt secret "
                                 f"for {existing.usageID()!r}, not a ceph key; not replaced")
            usage = existing.usageID()  # libvirt cannot change an existing secret's usage
        try:
            secret = self.libvirt.conn.secretDefineXML(ceph_secret_xml(uuid, user, usage))
            secret.setValue(base64.b64decode(user_key))
        except libvirt.libvirtError as exc:
            # libvirt's messages name the uuid and usage, never the value
            raise AgentError(f"ceph secret {uuid}: libvirt refused it: {exc}") from None
        log.info("ceph secret %s for client.%s %s", uuid, user,
                 "updated" if existing is not None else "defined")
        return existing is None

    def delete(self, uuid: str) -> bool:
        """Remove secret ``uuid``; False if there was none (idempotent)."""
        uuid = _canonical(uuid)
        if self._without_secrets():
            return False
        secret = self.lookup(uuid)
        if secret is None:
            return False
        try:
            secret.undefine()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return False
            raise AgentError(f"ceph secret {uuid}: libvirt could not remove it: {exc}") from None
        log.info("ceph secret %s removed", uuid)
        return True

    def _without_secrets(self) -> bool:
        """libvirt's test driver (the control-plane benchmark's hosts) has no secret
        driver; only there is a ceph key accepted without being stored."""
        return self.libvirt.conn.getType() == TEST_DRIVER


def _canonical(uuid: str) -> str:
    """libvirt's form (dashed, lowercase), as the disks' ``<secret uuid>`` carry it."""
    return str(uuidlib.UUID(uuid))
