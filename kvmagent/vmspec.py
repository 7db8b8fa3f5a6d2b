"""StartVmCmd -> the typed domain model: ZStack's VM description in libvirt's terms.

Pure: no libvirt, no HTTP. Host-wide modes (console, CPU, cache) come from the agent's
settings unless the command overrides them; a volume's own cache mode wins over both.
"""

from __future__ import annotations

from pathlib import Path

from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.domain import Disk, Domain, Graphics, Nic
from kvmagent.models.vm import NicTO, StartVmCmd, VolumeTO

ASSET_TAG = "zfleet.zstack.io"  # ends in .zstack.io: cloud-init's ds-identify picks Ec2
CDROM_TARGET = "hdc"


def disk_target(volume: VolumeTO) -> str:
    """deviceId 0 is vda (hda without virtio), 1 vdb, ..."""
    return ("vd" if volume.use_virtio else "hd") + chr(ord("a") + volume.device_id)


def volume_disk(volume: VolumeTO, cache: str, boot_order: int | None = None) -> Disk:
    common = {"target": disk_target(volume), "bus": "virtio" if volume.use_virtio else "ide",
              "cache": volume.cache_mode or cache, "boot_order": boot_order,
              "serial": volume.volume_uuid}
    if volume.device_type == "ceph":
        pool_image = volume.install_path.removeprefix("ceph://")
        return Disk(source_type="network", rbd_name=pool_image, format="raw",
                    rbd_hosts=[(m.hostname, m.port) for m in volume.mon_info],
                    rbd_secret_uuid=volume.secret_uuid, **common)
    return Disk(path=volume.install_path, format=volume.format, **common)


def nic_device(nic: NicTO) -> Nic:
    return Nic(mac=nic.mac, bridge=nic.bridge_name, model=nic.model,
               target_dev=nic.nic_internal_name)


def domain_for(cmd: StartVmCmd, cfg: KvmAgentConfig, console_dir: Path) -> Domain:
    cache = cmd.cache_mode or cfg.cache_mode
    order = {dev: i for i, dev in enumerate(cmd.boot_dev, start=1)}
    disks = [volume_disk(cmd.root_volume, cache, order.get("hd"))]
    disks += [volume_disk(v, cache) for v in sorted(cmd.data_volumes, key=lambda v: v.device_id)]
    if cmd.iso_path or "cdrom" in order:
        disks.append(Disk(target=CDROM_TARGET, device="cdrom", path=cmd.iso_path, format="raw",
                          bus="ide", readonly=True, boot_order=order.get("cdrom")))
    return Domain(
        uuid=cmd.vm_instance_uuid,
        name=cmd.vm_instance_uuid,
        domain_type=cfg.domain_type,
        memory_bytes=cmd.memory,
        vcpus=cmd.cpu_num,
        sockets=cmd.socket_num,
        cores=cmd.cpu_on_socket,
        cpu_mode=cmd.cpu_mode or cfg.cpu_mode,
        disks=disks,
        nics=[nic_device(n) for n in sorted(cmd.nics, key=lambda n: n.device_id)],
        graphics=Graphics(kind=cmd.console_mode or cfg.console_mode, listen=cfg.vnc_listen,
                          password=cmd.console_password),
        kernel=cmd.boot_kernel,
        initrd=cmd.boot_initrd,
        cmdline=cmd.boot_cmdline,
        serial_log=str(console_dir / f"{cmd.vm_instance_uuid}.log"),
        metadata={"vm-uuid": cmd.vm_instance_uuid, "vm-name": cmd.vm_name},
        smbios_asset_tag=ASSET_TAG,
    )
