"""A typed libvirt domain: small dataclasses, turned into domain XML and parsed back.

The agent defines VMs from these objects, and parses libvirt's XML back into them to
tell whether a running VM is still the definition it wants and to re-adopt VMs after a
restart; so emitting and parsing live side by side and round-trip:
``parse_domain(domain_xml(d)) == d``. Parsing ignores what libvirt adds and the model
does not hold (addresses, aliases, controllers, the expanded machine type...).

XML is built and read with ElementTree only, so every value is escaped by the XML
library. Every object validates itself on construction and again before it is
emitted (``validate()``), with ValueError messages that start with the field's name:
the driver never hands libvirt a broken domain.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product
from string import ascii_lowercase

__all__ = [
    "ZFLEET_NS", "Disk", "Nic", "Graphics", "Domain",
    "domain_xml", "parse_domain", "disk_xml", "nic_xml", "next_disk_target",
]  # fmt: skip

ZFLEET_NS = "https://zfleet.dev/xmlns/domain/1"
ET.register_namespace("zfleet", ZFLEET_NS)
_VM = f"{{{ZFLEET_NS}}}vm"
_ENTRY = f"{{{ZFLEET_NS}}}entry"

DOMAIN_TYPES = ("kvm", "qemu")
CPU_MODES = ("none", "host-model", "host-passthrough")
DISK_DEVICES = ("disk", "cdrom")
SOURCE_TYPES = ("file", "network")
FORMATS = ("qcow2", "raw")
BUSES = ("virtio", "ide", "scsi", "sata")
CACHES = ("none", "writeback", "writethrough")
NIC_MODELS = ("virtio", "e1000", "rtl8139")
GRAPHICS = ("vnc", "spice")
MACHINE = "pc"  # i440fx: enough for virtio, IDE cdroms and TCG; q35 is not needed
MIB = 1 << 20
MAX_VCPUS = 255  # qemu's limit for the "pc" machine
VNC_PASSWORD_MAX = 8  # qemu uses only the first 8 characters of a VNC password

# Target prefix per bus; IDE on "pc" has two channels of two units: hda..hdd.
_TARGET_PREFIX = {"virtio": "vd", "ide": "hd", "scsi": "sd", "sata": "sd"}
_TARGET = {
    "virtio": re.compile(r"vd[a-z]{1,2}"),
    "ide": re.compile(r"hd[a-d]"),
    "scsi": re.compile(r"sd[a-z]{1,2}"),
    "sata": re.compile(r"sd[a-z]{1,2}"),
}
_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_LINK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
# libvirt throws these tap names away on define and makes up its own (vnet0...).
_GENERATED_LINK_PREFIXES = ("vnet", "macvtap", "macvlan")
_RBD_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_RBD_USER = re.compile(r"[A-Za-z0-9_.-]+")
_RBD_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]*")
_DISK_SERIAL = re.compile(r"[A-Za-z0-9_.+-]+")  # the schema's pattern, minus spaces
# Characters XML 1.0 cannot carry, plus every control character: none belongs in a name.
_NOT_XML_SAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_MEMORY_UNITS = {
    "b": 1, "bytes": 1, "KB": 10**3, "k": 2**10, "KiB": 2**10, "MB": 10**6, "M": 2**20,
    "MiB": 2**20, "GB": 10**9, "G": 2**30, "GiB": 2**30, "TB": 10**12, "T": 2**40,
    "TiB": 2**40,
}  # fmt: skip


# --- validation helpers: each raises ValueError("<field>: <problem>") ------------------


def _text(name: str, value: object, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: must be a non-empty string, got {value!r}")
    if _NOT_XML_SAFE.search(value):
        raise ValueError(f"{name}: must not contain control characters: {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ValueError(f"{name}: not valid: {value!r}")
    return value


def _optional_text(name: str, value: object, pattern: re.Pattern[str] | None = None) -> None:
    if value is not None:
        _text(name, value, pattern)


def _path(name: str, value: object) -> None:
    if not _text(name, value).startswith("/"):
        raise ValueError(f"{name}: must be an absolute path: {value!r}")


def _optional_path(name: str, value: object) -> None:
    if value is not None:
        _path(name, value)


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(allowed)}; got {value!r}")


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}: must be {bound}, got {value}")
    return value


def _boot_order(value: object) -> None:
    if value is not None:
        _int("boot_order", value, 1)


def _uuid(name: str, value: object) -> str:
    """libvirt's form (lowercase, with dashes) of a 32-hex or dashed uuid."""
    return str(uuidlib.UUID(_text(name, value, _UUID)))


def _link(name: str, value: object) -> None:
    _text(name, value, _LINK)


def _first_duplicate(values: Iterable[object]) -> object | None:
    seen: set[object] = set()
    for value in values:
        if value is not None:
            if value in seen:
                return value
            seen.add(value)
    return None


def _nested(prefix: str, call):
    """``call()``, with its error's field prefixed with ``prefix`` (``disks[1].target``)."""
    try:
        return call()
    except ValueError as exc:
        raise ValueError(f"{prefix}.{exc}") from None


# --- the model --------------------------------------------------------------------------


@dataclass(kw_only=True)
class Disk:
    """A disk or cdrom: a local file (qcow2/raw) or an RBD image (``pool/image``).

    A cdrom is always read-only (libvirt makes it so), and may be empty (no path; its
    format is then "raw", as libvirt reports it).
    ``serial`` is what the guest sees as the disk's serial (virtio-blk shows the first
    20 characters), so guest and agent can match disks, e.g. by volume uuid.
    """

    target: str
    device: str = "disk"
    source_type: str = "file"
    path: str | None = None
    rbd_name: str | None = None
    rbd_hosts: list[tuple[str, int]] = field(default_factory=list)
    rbd_secret_uuid: str | None = None
    rbd_user: str = "admin"
    format: str = "qcow2"
    bus: str = "virtio"
    cache: str = "none"
    readonly: bool = False
    boot_order: int | None = None
    serial: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; normalise a cdrom's flags, uuids and host tuples."""
        _one_of("device", self.device, DISK_DEVICES)
        _one_of("source_type", self.source_type, SOURCE_TYPES)
        _one_of("format", self.format, FORMATS)
        _one_of("bus", self.bus, BUSES)
        _one_of("cache", self.cache, CACHES)
        _text("target", self.target)
        if not _TARGET[self.bus].fullmatch(self.target):
            raise ValueError(
                f"target: {self.target!r} is not a {self.bus} target "
                f"(like {_TARGET_PREFIX[self.bus]}a{'' if self.bus == 'ide' else ', ...'})"
            )
        if self.device == "cdrom":
            if self.bus == "virtio":
                raise ValueError("bus: a cdrom cannot be on virtio; use ide, scsi or sata")
            self.readonly = True
            if self.source_type == "file" and self.path is None:
                self.format = "raw"  # libvirt drops an empty drive's format at start
        if not isinstance(self.readonly, bool):
            raise ValueError(f"readonly: must be a bool, got {self.readonly!r}")
        _boot_order(self.boot_order)
        _optional_text("serial", self.serial, _DISK_SERIAL)
        if self.source_type == "file":
            self._validate_file_source()
        else:
            self._validate_rbd_source()

    def _validate_file_source(self) -> None:
        for name in ("rbd_name", "rbd_secret_uuid"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: only for source_type 'network'")
        if self.rbd_hosts:
            raise ValueError("rbd_hosts: only for source_type 'network'")
        if self.path is None and self.device == "disk":
            raise ValueError("path: a file disk needs a path (only a cdrom may be empty)")
        _optional_path("path", self.path)

    def _validate_rbd_source(self) -> None:
        if self.path is not None:
            raise ValueError("path: only for source_type 'file'; an RBD disk has rbd_name")
        if self.rbd_name is None:
            raise ValueError("rbd_name: a network disk needs 'pool/image'")
        _text("rbd_name", self.rbd_name, _RBD_NAME)
        if not isinstance(self.rbd_hosts, list):
            raise ValueError(f"rbd_hosts: must be a list of (host, port), got {self.rbd_hosts!r}")
        hosts = []
        for i, host in enumerate(self.rbd_hosts):
            if not isinstance(host, tuple | list) or len(host) != 2:
                raise ValueError(f"rbd_hosts[{i}]: must be (host, port), got {host!r}")
            hosts.append((_text(f"rbd_hosts[{i}]", host[0], _RBD_HOST),
                          _int(f"rbd_hosts[{i}]", host[1], 1, 65535)))  # fmt: skip
        self.rbd_hosts = hosts
        _text("rbd_user", self.rbd_user, _RBD_USER)
        if self.rbd_secret_uuid is None:
            if self.rbd_user != "admin":
                raise ValueError("rbd_user: needs rbd_secret_uuid (cephx auth)")
        else:
            self.rbd_secret_uuid = _uuid("rbd_secret_uuid", self.rbd_secret_uuid)


@dataclass(kw_only=True)
class Nic:
    """A virtio (or emulated) NIC on a Linux bridge; ``target_dev`` names the host's tap."""

    mac: str
    bridge: str
    model: str = "virtio"
    target_dev: str | None = None
    boot_order: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; normalise the MAC to lowercase, as libvirt reports it."""
        self.mac = _text("mac", self.mac).lower()
        if not _MAC.fullmatch(self.mac):
            raise ValueError(f"mac: not a valid MAC address: {self.mac!r}")
        if int(self.mac[:2], 16) & 1:
            raise ValueError(f"mac: must be unicast (first octet even): {self.mac!r}")
        _link("bridge", self.bridge)
        _one_of("model", self.model, NIC_MODELS)
        if self.target_dev is not None:
            _link("target_dev", self.target_dev)
            if self.target_dev.startswith(_GENERATED_LINK_PREFIXES):
                raise ValueError(
                    f"target_dev: libvirt replaces names starting with "
                    f"{'/'.join(_GENERATED_LINK_PREFIXES)}: {self.target_dev!r}"
                )
        _boot_order(self.boot_order)


@dataclass(kw_only=True)
class Graphics:
    """A VNC or SPICE console; ``port=-1`` lets libvirt pick a free port (autoport)."""

    kind: str = "vnc"
    listen: str = "0.0.0.0"
    port: int = -1
    password: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _one_of("kind", self.kind, GRAPHICS)
        try:
            ipaddress.ip_address(_text("listen", self.listen))
        except ValueError:
            raise ValueError(f"listen: not an IP address: {self.listen!r}") from None
        if self.port != -1:
            _int("port", self.port, 5900, 65535)
        _optional_text("password", self.password)
        if self.kind == "vnc" and self.password and len(self.password) > VNC_PASSWORD_MAX:
            raise ValueError(f"password: VNC uses at most {VNC_PASSWORD_MAX} characters")


@dataclass(kw_only=True)
class Domain:
    """A whole VM definition. ``uuid`` takes 32-hex or dashed form and keeps libvirt's.

    ``sockets``/``cores`` give a topology (sockets * cores == vcpus, one thread each);
    ``cpu_mode`` "none" emits no ``<cpu mode>``. ``serial_log`` makes the serial console a
    file (append='on', which migration needs), else it is a pty. ``metadata`` lands in
    the zfleet namespace of ``<metadata>`` together with the VM's 32-hex uuid.
    ``disks`` are kept sorted by bus, then target (vda < vdz < vdaa), so equality does not
    depend on where libvirt lists a hot-plugged disk (after its bus's lower targets).
    """

    uuid: str
    name: str
    domain_type: str = "kvm"
    memory_bytes: int
    vcpus: int
    sockets: int | None = None
    cores: int | None = None
    cpu_mode: str = "none"
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    graphics: Graphics | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    serial_log: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    smbios_asset_tag: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def vm_uuid(self) -> str:
        """The zfleet (ZStack) form of the uuid: 32 hex digits."""
        return self.uuid.replace("-", "")

    def validate(self) -> None:
        """Check this domain and every device in it (again: lists can change after init)."""
        self.uuid = _uuid("uuid", self.uuid)
        if "/" in _text("name", self.name):
            raise ValueError(f"name: must not contain '/': {self.name!r}")
        _one_of("domain_type", self.domain_type, DOMAIN_TYPES)
        if _int("memory_bytes", self.memory_bytes, 1) % MIB:
            raise ValueError(  # libvirt rounds it up to one at start: the VM would differ
                f"memory_bytes: must be a multiple of 1 MiB, got {self.memory_bytes}"
            )
        _int("vcpus", self.vcpus, 1, MAX_VCPUS)
        self._validate_cpu()
        self._validate_devices()
        _optional_path("kernel", self.kernel)
        _optional_path("initrd", self.initrd)
        _optional_text("cmdline", self.cmdline)
        for name in ("initrd", "cmdline"):
            if getattr(self, name) is not None and self.kernel is None:
                raise ValueError(f"{name}: only with direct kernel boot (set kernel)")
        _optional_path("serial_log", self.serial_log)
        _optional_text("smbios_asset_tag", self.smbios_asset_tag)
        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata: must be a dict of strings, got {self.metadata!r}")
        for key, value in self.metadata.items():
            _text("metadata key", key)
            if not isinstance(value, str) or _NOT_XML_SAFE.search(value):
                raise ValueError(f"metadata[{key!r}]: must be a string without control chars")

    def _validate_cpu(self) -> None:
        _one_of("cpu_mode", self.cpu_mode, CPU_MODES)
        if self.cpu_mode == "host-passthrough" and self.domain_type != "kvm":
            raise ValueError("cpu_mode: host-passthrough needs domain_type 'kvm' (not TCG)")
        if (self.sockets is None) != (self.cores is None):
            raise ValueError("sockets: sockets and cores go together (or neither)")
        if self.sockets is not None:
            _int("sockets", self.sockets, 1)
            _int("cores", self.cores, 1)
            if self.sockets * self.cores != self.vcpus:
                raise ValueError(
                    f"sockets: sockets * cores ({self.sockets} * {self.cores}) "
                    f"must equal vcpus ({self.vcpus})"
                )

    def _validate_devices(self) -> None:
        for name, items, kind in (("disks", self.disks, Disk), ("nics", self.nics, Nic)):
            if not isinstance(items, list):
                raise ValueError(f"{name}: must be a list of {kind.__name__}")
            for i, item in enumerate(items):
                if not isinstance(item, kind):
                    raise ValueError(f"{name}[{i}]: must be a {kind.__name__}, got {item!r}")
                _nested(f"{name}[{i}]", item.validate)
        self.disks = sorted(self.disks, key=lambda d: (d.bus, len(d.target), d.target))
        if self.graphics is not None:
            if not isinstance(self.graphics, Graphics):
                raise ValueError(f"graphics: must be a Graphics, got {self.graphics!r}")
            _nested("graphics", self.graphics.validate)
        checks = (
            ("disks", "target", [d.target for d in self.disks]),
            ("nics", "mac", [n.mac for n in self.nics]),
            ("nics", "target_dev", [n.target_dev for n in self.nics]),
            ("boot_order", "boot order", [x.boot_order for x in [*self.disks, *self.nics]]),
        )
        for name, what, values in checks:
            if (dup := _first_duplicate(values)) is not None:
                raise ValueError(f"{name}: duplicate {what} {dup!r}")


# --- to XML -----------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _disk_element(disk: Disk) -> ET.Element:
    el = ET.Element("disk", type=disk.source_type, device=disk.device)
    _sub(el, "driver", name="qemu", type=disk.format, cache=disk.cache)
    if disk.source_type == "network":
        if disk.rbd_secret_uuid is not None:
            auth = _sub(el, "auth", username=disk.rbd_user)
            _sub(auth, "secret", type="ceph", uuid=disk.rbd_secret_uuid)
        source = _sub(el, "source", protocol="rbd", name=disk.rbd_name)
        for host, port in disk.rbd_hosts:
            _sub(source, "host", name=host, port=str(port))
    elif disk.path is not None:
        _sub(el, "source", file=disk.path)
    _sub(el, "target", dev=disk.target, bus=disk.bus)
    if disk.serial is not None:
        _sub(el, "serial", disk.serial)
    if disk.boot_order is not None:
        _sub(el, "boot", order=str(disk.boot_order))
    if disk.readonly:
        _sub(el, "readonly")
    return el


def _nic_element(nic: Nic) -> ET.Element:
    el = ET.Element("interface", type="bridge")
    _sub(el, "mac", address=nic.mac)
    _sub(el, "source", bridge=nic.bridge)
    if nic.target_dev is not None:
        _sub(el, "target", dev=nic.target_dev)
    _sub(el, "model", type=nic.model)
    if nic.boot_order is not None:
        _sub(el, "boot", order=str(nic.boot_order))
    return el


def _graphics_element(parent: ET.Element, g: Graphics) -> None:
    attrs = {"port": "-1", "autoport": "yes"} if g.port == -1 else {"port": str(g.port)}
    if g.password is not None:
        attrs["passwd"] = g.password
    el = _sub(parent, "graphics", type=g.kind, **attrs, listen=g.listen)
    _sub(el, "listen", type="address", address=g.listen)


def _serial_elements(parent: ET.Element, log: str | None) -> None:
    for tag, target in (("serial", {}), ("console", {"type": "serial"})):
        if log is None:
            el = _sub(parent, tag, type="pty")
        else:
            el = _sub(parent, tag, type="file")
            _sub(el, "source", path=log, append="on")
        _sub(el, "target", **target, port="0")


def _to_string(el: ET.Element) -> str:
    ET.indent(el)
    return ET.tostring(el, encoding="unicode") + "\n"


def domain_xml(d: Domain) -> str:
    """The ``<domain>`` XML for ``conn.defineXML``; validates ``d`` first."""
    d.validate()
    root = ET.Element("domain", type=d.domain_type)
    _sub(root, "name", d.name)
    _sub(root, "uuid", d.uuid)
    # cpu-mode: libvirt rewrites host-model (at start) and "none" into custom models
    vm = ET.SubElement(_sub(root, "metadata"), _VM, {"uuid": d.vm_uuid, "cpu-mode": d.cpu_mode})
    for key, value in d.metadata.items():
        _sub(vm, _ENTRY, key=key, value=value)
    kib = str(d.memory_bytes // 1024)
    _sub(root, "memory", kib, unit="KiB")
    _sub(root, "currentMemory", kib, unit="KiB")
    _sub(root, "vcpu", str(d.vcpus), placement="static")
    if d.smbios_asset_tag is not None:
        chassis = _sub(_sub(root, "sysinfo", type="smbios"), "chassis")
        _sub(chassis, "entry", d.smbios_asset_tag, name="asset")

    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine=MACHINE)
    for tag in ("kernel", "initrd", "cmdline"):
        if getattr(d, tag) is not None:
            _sub(os_el, tag, getattr(d, tag))
    if d.smbios_asset_tag is not None:
        _sub(os_el, "smbios", mode="sysinfo")
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if d.cpu_mode != "none" or d.sockets is not None:
        cpu = _sub(root, "cpu", **({} if d.cpu_mode == "none" else {"mode": d.cpu_mode}))
        if d.sockets is not None:
            topology = {"sockets": d.sockets, "dies": 1, "cores": d.cores, "threads": 1}
            _sub(cpu, "topology", **{k: str(v) for k, v in topology.items()})
    for event, action in (("poweroff", "destroy"), ("reboot", "restart"), ("crash", "destroy")):
        _sub(root, f"on_{event}", action)

    devices = _sub(root, "devices")
    devices.extend(_disk_element(disk) for disk in d.disks)
    if any(disk.bus == "scsi" for disk in d.disks):
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    devices.extend(_nic_element(nic) for nic in d.nics)
    _serial_elements(devices, d.serial_log)
    if d.graphics is not None:
        _sub(devices, "input", type="tablet", bus="usb")
        _graphics_element(devices, d.graphics)
    _sub(devices, "memballoon", model="virtio")
    return _to_string(root)


def disk_xml(disk: Disk) -> str:
    """The ``<disk>`` device XML for ``attachDeviceFlags``/``detachDeviceFlags``."""
    disk.validate()
    return _to_string(_disk_element(disk))


def nic_xml(nic: Nic) -> str:
    """The ``<interface>`` device XML for ``attachDeviceFlags``/``detachDeviceFlags``."""
    nic.validate()
    return _to_string(_nic_element(nic))


def next_disk_target(used: set[str], bus: str = "virtio") -> str:
    """The first target name for ``bus`` not in ``used``: vda, vdb, ... vdz, vdaa, ..."""
    _one_of("bus", bus, BUSES)
    prefix = _TARGET_PREFIX[bus]
    suffixes = "abcd" if bus == "ide" else [
        *ascii_lowercase, *("".join(p) for p in product(ascii_lowercase, repeat=2))
    ]  # fmt: skip
    for suffix in suffixes:
        if prefix + suffix not in used:
            return prefix + suffix
    raise ValueError(f"bus: no free {bus} disk target left")


# --- from XML ---------------------------------------------------------------------------


def _memory_bytes(el: ET.Element | None) -> int:
    if el is None or el.text is None:
        raise ValueError("memory_bytes: the domain has no <memory>")
    unit = el.get("unit", "KiB")
    if unit not in _MEMORY_UNITS:
        raise ValueError(f"memory_bytes: unknown unit {unit!r}")
    return int(el.text) * _MEMORY_UNITS[unit]


def _attr(el: ET.Element | None, path: str, attr: str, default: str | None = None):
    """Attribute ``attr`` of ``el``'s child at ``path`` ("." for ``el``), else ``default``."""
    child = el.find(path) if el is not None else None
    return child.get(attr, default) if child is not None else default


def _int_attr(el: ET.Element | None, path: str, attr: str) -> int | None:
    value = _attr(el, path, attr)
    return int(value) if value is not None else None


def _parse_disk(el: ET.Element) -> Disk:
    source = el.find("source")
    if el.get("type") == "network":
        if _attr(el, "source", "protocol") != "rbd":
            raise ValueError("source: only RBD network disks are modelled")
        secret = _attr(el, "auth/secret", "uuid")
        kw = {
            "rbd_name": source.get("name"),
            "rbd_hosts": [(h.get("name"), int(h.get("port", "6789")))
                          for h in source.findall("host")],
            "rbd_secret_uuid": secret,
            "rbd_user": _attr(el, "auth", "username") if secret is not None else "admin",
        }  # fmt: skip
    elif el.get("type") == "file":
        kw = {"path": _attr(el, "source", "file")}
    else:
        raise ValueError(f"type: disk type {el.get('type')!r} is not modelled")
    return Disk(
        target=_attr(el, "target", "dev"),
        device=el.get("device"),
        source_type=el.get("type"),
        format=_attr(el, "driver", "type", "raw" if source is None else None),
        bus=_attr(el, "target", "bus"),
        cache=_attr(el, "driver", "cache"),
        readonly=el.find("readonly") is not None,
        boot_order=_int_attr(el, "boot", "order"),
        serial=el.findtext("serial"),
        **kw,
    )


def _parse_nic(el: ET.Element) -> Nic:
    if el.get("type") != "bridge":
        raise ValueError(f"type: interface type {el.get('type')!r} is not modelled")
    target_dev = _attr(el, "target", "dev")
    if target_dev is not None and target_dev.startswith(_GENERATED_LINK_PREFIXES):
        target_dev = None  # libvirt named it when the VM started; not part of the definition
    return Nic(
        mac=_attr(el, "mac", "address"),
        bridge=_attr(el, "source", "bridge"),
        model=_attr(el, "model", "type"),
        target_dev=target_dev,
        boot_order=_int_attr(el, "boot", "order"),
    )


def _parse_graphics(el: ET.Element | None) -> Graphics | None:
    if el is None:
        return None
    return Graphics(
        kind=el.get("type"),
        listen=el.get("listen") or _attr(el, "listen", "address"),
        port=-1 if el.get("autoport") == "yes" else _int_attr(el, ".", "port"),
        password=el.get("passwd"),
    )


def _parse_cpu_mode(cpu: ET.Element | None, vm: ET.Element | None) -> str:
    """The mode in the XML, unless libvirt rewrote it into a custom model: it does so for
    "none" (a default model) on define and for host-model when the VM starts, so then
    the mode recorded in our metadata is the definition's."""
    mode = cpu.get("mode") if cpu is not None else None
    if mode not in (None, "custom"):
        return mode
    return vm.get("cpu-mode", "none") if vm is not None else "none"


def parse_domain(xml: str) -> Domain:
    """A :class:`Domain` from domain XML (ours or libvirt's ``XMLDesc``).

    Raises ValueError (naming the field) for XML the model cannot represent, e.g. a
    block-device disk. A live ``XMLDesc(0)`` has no graphics password (libvirt needs
    VIR_DOMAIN_XML_SECURE for that) and the tap names libvirt picked are dropped.
    """
    root = ET.fromstring(xml)
    vm = root.find(f"metadata/{_VM}")
    serial_type = _attr(root, "devices/serial", "type")
    if serial_type not in (None, "file", "pty"):
        raise ValueError(f"serial_log: serial type {serial_type!r} is not modelled")
    return Domain(
        uuid=root.findtext("uuid"),
        name=root.findtext("name"),
        domain_type=root.get("type"),
        memory_bytes=_memory_bytes(root.find("memory")),
        vcpus=int(root.findtext("vcpu", "0")),
        sockets=_int_attr(root, "cpu/topology", "sockets"),
        cores=_int_attr(root, "cpu/topology", "cores"),
        cpu_mode=_parse_cpu_mode(root.find("cpu"), vm),
        disks=[_nested(f"disks[{i}]", lambda el=el: _parse_disk(el))
               for i, el in enumerate(root.findall("devices/disk"))],
        nics=[_nested(f"nics[{i}]", lambda el=el: _parse_nic(el))
              for i, el in enumerate(root.findall("devices/interface"))],
        graphics=_parse_graphics(root.find("devices/graphics")),
        kernel=root.findtext("os/kernel"),
        initrd=root.findtext("os/initrd"),
        cmdline=root.findtext("os/cmdline"),
        serial_log=_attr(root, "devices/serial/source", "path") if serial_type == "file" else None,
        metadata={e.get("key"): e.get("value") for e in root.iterfind(f"metadata/{_VM}/{_ENTRY}")},
        smbios_asset_tag=root.findtext("sysinfo[@type='smbios']/chassis/entry[@name='asset']"),
    )  # fmt: skip
