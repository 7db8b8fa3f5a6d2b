"""VM instances: create (end to end across the agents), start, stop, reboot, destroy,
console address, boot order.

CreateVmInstance is a flow (:mod:`coordinator.flow`): allocate host, primary storage,
IPs and capacity in one transaction -> the root volume (a clone of the image's cache,
made once per image) -> the host prepared for the storage -> bridge, DHCP entry and user
data for each NIC on the host -> ``/vm/start``. A failing step undoes the ones before it
and the error names the step.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from coordinator import allocator, ipam
from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError, ApiMessage
from coordinator.clients.endpoint import Call
from coordinator.clients.kvmagent import KvmAgent
from coordinator.context import Context
from coordinator.db import new_uuid, now
from coordinator.flow import Flow
from coordinator.jobs import Deadline
from coordinator.repos.vms import Vms
from coordinator.services import backends, eips, ha, networks, rootvolumes
from coordinator.services.hosts import kvm
from coordinator.services.lookup import require, tags
from coordinator.services.vmstate import VmState, set_state

log = logging.getLogger(__name__)
T = TypeVar("T")
BOOT_DEVICES = {"HardDisk": "hd", "CdRom": "cdrom"}
UNDO_TIMEOUT = 120.0


def _mac() -> str:
    # locally administered, unicast; the UNIQUE constraint catches the rare repeat
    return "fa:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))


def _userdata(system_tags: list[str]) -> str | None:
    """The ``userdata::`` tag; a one-line value with literal ``\\n`` (as ZStack's CLI
    examples give it) gets its newlines back."""
    values = tags(system_tags, "userdata")
    if not values:
        return None
    text = values[-1]
    return text.replace("\\n", "\n") if "\n" not in text else text


def _vm_tags(ctx: Context, vm_uuid: str) -> list[str]:
    return [r["tag"] for r in ctx.db.find("system_tag", "resource_uuid = ? ORDER BY created",
                                          (vm_uuid,))]


def start_vm(ctx: Context, vm: dict, host: dict, deadline: Deadline) -> None:
    """``vm`` started on ``host`` as the database has it (kvmagent's StartVmCmd)."""
    nics, volumes = [], []
    for nic in ctx.db.find("vm_nic", "vm_uuid = ? ORDER BY device_id", (vm["uuid"],)):
        l3 = ctx.db.get("l3_network", nic["l3_network_uuid"])
        l2 = ctx.db.get("l2_network", l3["l2_network_uuid"])
        nics.append(dict(uuid=nic["uuid"], mac=nic["mac"], device_id=nic["device_id"],
                         bridge_name=networks.bridge_name(l2),
                         nic_internal_name=networks.tap_name(nic)))
    for vol in ctx.db.find("volume", "vm_uuid = ? AND status = 'Ready' ORDER BY device_id",
                           (vm["uuid"],)):
        volumes.append(rootvolumes.volume_to(ctx.db.get("primary_storage", vol["ps_uuid"]),
                                              vol))
    root = next(v for v in volumes if v["volumeUuid"] == vm["root_volume_uuid"])
    iso = iso_path(ctx, vm) if vm.get("iso_uuid") else None
    on_host(ctx, host, lambda agent: agent.start_vm(
        wait=deadline.left(), vm_instance_uuid=vm["uuid"], vm_name=vm["name"],
        memory=vm["memory_size"], cpu_num=vm["cpu_num"], cpu_speed=vm["cpu_speed"] or 0,
        boot_dev=_boot_devices(vm), root_volume=root,
        data_volumes=[v for v in volumes if v is not root], nics=nics,
        timeout=max(1.0, deadline.left()), iso_path=iso,
        console_mode=ctx.gconf.get("kvm", "vm.consoleMode"),
        cpu_mode=ctx.gconf.get("kvm", "vm.cpuMode"),
        cache_mode=ctx.gconf.get("kvm", "vm.cacheMode")))


def iso_path(ctx: Context, vm: dict) -> str:
    """Where the VM's ISO is cached on its host (it was put there by the attach)."""
    rows = ctx.db.find("image_cache", "image_uuid = ? AND host_uuid = ?",
                       (vm["iso_uuid"], vm["host_uuid"] or vm["last_host_uuid"]))
    if not rows:
        raise ApiError(f"VM {vm['name']}: its ISO {vm['iso_uuid']} is not on its host")
    return rows[0]["install_path"]


def _boot_devices(vm: dict) -> list[str]:
    """The boot order; every VM has a cdrom drive (last unless asked otherwise), so an
    ISO can be inserted while it runs."""
    order = [BOOT_DEVICES[b] for b in vm.get("boot_order") or ["HardDisk"]]
    return order if "cdrom" in order else [*order, "cdrom"]


def network_on_host(ctx: Context, vm: dict, host: dict) -> None:
    """Bridges, DHCP entries and user data of all the VM's NICs on ``host``."""
    system_tags = _vm_tags(ctx, vm["uuid"])
    ssh_keys = tags(system_tags, "sshkey")
    for nic in ctx.db.find("vm_nic", "vm_uuid = ? ORDER BY device_id", (vm["uuid"],)):
        networks.apply_nic(ctx, host, vm, nic,
                           nic["l3_network_uuid"] == vm["default_l3_network_uuid"],
                           _userdata(system_tags), ssh_keys[-1] if ssh_keys else None)


def release_commands(ctx: Context, vm: dict) -> list[Call]:
    """The host commands that take the VM's DHCP entries and user data off its host."""
    return [cmd for nic in ctx.db.find("vm_nic", "vm_uuid = ?", (vm["uuid"],))
            for cmd in networks.release_commands(ctx, nic)]


def release_network_on_host(ctx: Context, vm: dict, host: dict) -> None:
    for call in release_commands(ctx, vm):
        kvm(ctx, host).run(call)


def on_host(ctx: Context, host: dict, send: Callable[[KvmAgent], T]) -> T:
    """``send`` to the host's kvmagent; an error is said as the host's (an ApiError)."""
    try:
        return send(kvm(ctx, host))
    except AgentCallError as exc:
        raise ApiError(f"host {host['name']}: {exc}") from None


def delete_rows(ctx: Context, vm_uuid: str) -> None:
    with ctx.db.tx():
        ipam.release(ctx.db, vm_uuid)
        Vms(ctx.db).delete_rows(vm_uuid)


def create(ctx: Context, msg: ApiMessage, deadline: Deadline) -> str:
    """The VM of a CreateVmInstance message, made (and started, InstantStart); its uuid."""
    ha_level = ha.level_from_tags(msg.system_tags)
    offering = require(ctx, "instance_offering", msg.instance_offering_uuid,
                       "instanceOfferingUuid")
    image = require(ctx, "image", msg.image_uuid, "imageUuid")
    if image["status"] != "Ready":
        raise ApiError(f"imageUuid: image {image['name']} is {image['status']}, not Ready")
    l3s = [require(ctx, "l3_network", u, f"l3NetworkUuids.{i}")
           for i, u in enumerate(msg.l3_network_uuids)]
    default_l3 = msg.default_l3_network_uuid or l3s[0]["uuid"]
    if default_l3 not in msg.l3_network_uuids:
        raise ApiError("defaultL3NetworkUuid: not one of l3NetworkUuids")
    root_size = image["size"]
    if msg.root_disk_offering_uuid:
        root_size = max(root_size, require(ctx, "disk_offering", msg.root_disk_offering_uuid,
                                           "rootDiskOfferingUuid")["disk_size"])
    static = {}
    for value in tags(msg.system_tags, "staticIp"):
        l3_uuid, _, ip = value.partition("::")
        static[l3_uuid] = ip
    need = allocator.Need(offering["cpu_num"], offering["memory_size"],
                          tuple(dict.fromkeys(l3["l2_network_uuid"] for l3 in l3s)),
                          msg.primary_storage_uuid_for_root_volume, msg.zone_uuid,
                          msg.cluster_uuid, msg.host_uuid, offering["allocator_strategy"]
                          if offering["allocator_strategy"] != "DefaultHostAllocatorStrategy"
                          else None)
    uuid = msg.resource_uuid or new_uuid()
    root_uuid = new_uuid()
    flow = Flow(f"CreateVmInstance {msg.name}", deadline)

    def allocate() -> tuple[dict, dict]:
        with ctx.db.tx() as db:
            host, ps = allocator.allocate(ctx, need,
                                          lambda p: rootvolumes.can_hold(ctx, p, image))
            db["vm"].insert({
                "uuid": uuid, "name": msg.name, "description": msg.description,
                "zone_uuid": host["zone_uuid"], "cluster_uuid": host["cluster_uuid"],
                "host_uuid": host["uuid"], "last_host_uuid": host["uuid"],
                "image_uuid": image["uuid"], "instance_offering_uuid": offering["uuid"],
                "root_volume_uuid": root_uuid, "default_l3_network_uuid": default_l3,
                "cpu_num": offering["cpu_num"],
                "cpu_speed": offering["cpu_speed"], "memory_size": offering["memory_size"],
                "allocator_strategy": offering["allocator_strategy"], "ha_level": ha_level,
                "platform": image["platform"], "boot_order_json": '["HardDisk"]',
                "created": now(), "updated": now()})
            for i, l3 in enumerate(l3s):
                ip = ipam.allocate(ctx.db, l3["uuid"], uuid, wanted=static.get(l3["uuid"]))
                db["vm_nic"].insert({"uuid": new_uuid(), "vm_uuid": uuid,
                                     "l3_network_uuid": l3["uuid"], "ip": ip["ip"],
                                     "netmask": ip["netmask"], "gateway": ip["gateway"],
                                     "mac": _mac(), "device_id": i, "created": now(),
                                     "updated": now()})
            db["volume"].insert({"uuid": root_uuid, "name": f"ROOT-for-{msg.name}",
                                 "vm_uuid": uuid, "ps_uuid": ps["uuid"], "type": "Root",
                                 "root_image_uuid": image["uuid"], "format": "raw",
                                 "size": root_size, "device_id": 0, "status": "Creating",
                                 "created": now(), "updated": now()})
            for tag in (t for t in msg.system_tags if not t.startswith("ha::")):
                db["system_tag"].insert({"uuid": new_uuid(), "resource_uuid": uuid,
                                         "resource_type": "VmInstanceVO", "tag": tag,
                                         "created": now(), "updated": now()})
            set_state(ctx, uuid, VmState.STARTING)
        return host, ps

    def unallocate() -> None:
        allocator.release(ctx, host["uuid"], offering["cpu_num"], offering["memory_size"])
        delete_rows(ctx, uuid)

    host, ps = flow.step("allocate host, storage and IPs", allocate, unallocate)
    flow.step("prepare host for the storage", lambda: rootvolumes.prepare_host(ctx, ps, host))
    path = flow.step("create root volume", lambda: rootvolumes.create_root_volume(
        ctx, ps, host, image, root_uuid, root_size, deadline),
        lambda: rootvolumes.delete_volume(ctx, ps, rootvolumes.root_volume_path(
            ps, root_uuid), host))
    ctx.db.update("volume", root_uuid, install_path=path, status="Ready",
                  **backends.primary(ps).root_volume_fields(host))
    vm = ctx.db.get("vm", uuid)
    flow.step("network on host", lambda: network_on_host(ctx, vm, host),
              lambda: release_network_on_host(ctx, vm, host))
    if msg.strategy == "InstantStart":
        flow.step("start VM", lambda: start_vm(ctx, vm, host, deadline),
                  lambda: on_host(ctx, host, lambda agent: agent.destroy_vm(
                      uuid=uuid, wait=UNDO_TIMEOUT)))
        set_state(ctx, uuid, VmState.RUNNING)
    else:
        allocator.release(ctx, host["uuid"], offering["cpu_num"], offering["memory_size"])
        set_state(ctx, uuid, VmState.STOPPED)
    log.info("VM %s (%s) %s on host %s", msg.name, uuid,
             "running" if msg.strategy == "InstantStart" else "created", host["name"])
    return uuid


def l2s_of(ctx: Context, vm: dict) -> tuple[str, ...]:
    """The L2 networks the VM's NICs are on (a host must reach all of them)."""
    return tuple(dict.fromkeys(ctx.db.get("l3_network", n["l3_network_uuid"])[
        "l2_network_uuid"] for n in ctx.db.find("vm_nic", "vm_uuid = ?", (vm["uuid"],))))


def start_on(ctx: Context, vm: dict, host: dict, deadline: Deadline,
             reserved: bool = False) -> None:
    """Start the stopped ``vm`` on ``host`` (the caller holds ``vm:<uuid>``): capacity
    (unless the caller ``reserved`` it), network and EIPs there, then ``/vm/start``. A
    failure leaves the VM Stopped and the capacity free."""
    flow = Flow(f"start VM {vm['name']} on {host['name']}", deadline)
    flow.step("reserve capacity", lambda: reserved or allocator.take(
        ctx, host, vm["cpu_num"], vm["memory_size"]), lambda: allocator.release(
        ctx, host["uuid"], vm["cpu_num"], vm["memory_size"]))
    set_state(ctx, vm["uuid"], VmState.STARTING)
    try:
        flow.step("network on host", lambda: network_on_host(ctx, vm, host))
        flow.step("EIPs on host", lambda: eips.apply_on_host(ctx, vm, host))
        flow.step("start VM", lambda: start_vm(ctx, vm, host, deadline))
    except ApiError:
        set_state(ctx, vm["uuid"], VmState.STOPPED, host_uuid=None)
        raise
    set_state(ctx, vm["uuid"], VmState.RUNNING, host_uuid=host["uuid"],
                  last_host_uuid=host["uuid"])


def migrate(ctx: Context, vm: dict, host_uuid: str | None, deadline: Deadline) -> None:
    """Capacity, storage access and network on the destination first; then the live
    migration; then the source lets go. A failure leaves the VM running where it was."""
    if vm["state"] != "Running":
        raise ApiError(f"vmInstanceUuid: VM {vm['name']} is {vm['state']}; only a Running "
                       "VM migrates")
    source = ctx.db.get("host", vm["host_uuid"])
    root = ctx.db.get("volume", vm["root_volume_uuid"])
    ps = ctx.db.get("primary_storage", root["ps_uuid"])
    if not backends.primary(ps).shared:
        raise ApiError(f"vmInstanceUuid: VM {vm['name']}'s volumes are on {ps['type']}; "
                       "live migration here needs shared (Ceph) storage")
    if host_uuid == source["uuid"]:
        raise ApiError(f"hostUuid: VM {vm['name']} already runs on {source['name']}")
    l2s = l2s_of(ctx, vm)
    flow = Flow(f"MigrateVm {vm['name']}", deadline)

    def allocate() -> dict:
        need = allocator.Need(vm["cpu_num"], vm["memory_size"], l2s, ps["uuid"],
                              cluster_uuid=vm["cluster_uuid"], host_uuid=host_uuid,
                              exclude=source["uuid"])
        with ctx.db.tx():
            return allocator.allocate(ctx, need, lambda p: p["uuid"] == ps["uuid"])[0]

    dest = flow.step("allocate destination", allocate, lambda: allocator.release(
        ctx, dest["uuid"], vm["cpu_num"], vm["memory_size"]))
    flow.step("prepare destination for the storage", lambda: rootvolumes.prepare_host(
        ctx, ps, dest))
    flow.step("network on destination", lambda: network_on_host(ctx, vm, dest),
              lambda: release_network_on_host(ctx, vm, dest))
    set_state(ctx, vm["uuid"], VmState.MIGRATING)
    try:
        flow.step("live migration", lambda: on_host(ctx, source, lambda agent: agent.migrate_vm(
            vm_uuid=vm["uuid"], dest_host_ip=dest["management_ip"],
            storage_migration_policy="shared", timeout=max(1.0, deadline.left() - 5),
            wait=deadline.left())))
    finally:
        if ctx.db.get("vm", vm["uuid"])["state"] == VmState.MIGRATING:
            set_state(ctx, vm["uuid"], VmState.RUNNING)
    set_state(ctx, vm["uuid"], VmState.RUNNING, host_uuid=dest["uuid"],
              last_host_uuid=dest["uuid"])
    allocator.release(ctx, source["uuid"], vm["cpu_num"], vm["memory_size"])
    quietly(f"DHCP and EIPs of VM {vm['name']} on {source['name']}",
             lambda: (release_network_on_host(ctx, vm, source),
                      eips.delete_on_host(ctx, vm, source)))
    quietly(f"EIPs of VM {vm['name']} on {dest['name']}",
             lambda: eips.apply_on_host(ctx, vm, dest))
    log.info("VM %s migrated from %s to %s", vm["name"], source["name"], dest["name"])


def stop(ctx: Context, vm: dict, deadline: Deadline, cold: bool = False) -> None:
    """Stop the VM (the caller holds ``vm:<uuid>``); its host's capacity comes back."""
    if vm["state"] in ("Stopped", "Created"):
        return
    host = require(ctx, "host", vm["host_uuid"], "uuid")
    set_state(ctx, vm["uuid"], VmState.STOPPING)
    try:
        on_host(ctx, host, lambda agent: (agent.destroy_vm if cold else agent.stop_vm)(
            uuid=vm["uuid"], wait=deadline.left()))
    except ApiError:
        set_state(ctx, vm["uuid"], VmState(vm["state"]))
        raise
    allocator.release(ctx, host["uuid"], vm["cpu_num"], vm["memory_size"])
    set_state(ctx, vm["uuid"], VmState.STOPPED, host_uuid=None)
    quietly(f"EIPs of VM {vm['name']} on {host['name']}",
            lambda: eips.delete_on_host(ctx, vm, host))


def quietly(what: str, fn) -> None:
    """Clean-up after the VM already moved on: a failure is logged, not raised (the
    agent's ``connect``/``flush`` converge the host later)."""
    try:
        fn()
    except (AgentCallError, ApiError) as exc:
        log.warning("%s not cleaned up: %s", what, exc)


def start(ctx: Context, vm_uuid: str, deadline: Deadline) -> None:
    """Start a stopped VM on the host it last ran on (where its volumes are usable)."""
    vm = require(ctx, "vm", vm_uuid, "uuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        vm = ctx.db.get("vm", vm["uuid"])
        if vm["state"] == "Running":
            return
        if vm["state"] not in ("Stopped", "Created"):
            raise ApiError(f"uuid: VM {vm['name']} is {vm['state']}; only a Stopped VM "
                           "can be started")
        host = ctx.db.get("host", vm["last_host_uuid"])
        if host["status"] != "Connected":
            raise ApiError(f"host {host['name']} of VM {vm['name']} is {host['status']}")
        start_on(ctx, vm, host, deadline)


def stop_locked(ctx: Context, vm_uuid: str, deadline: Deadline, cold: bool) -> None:
    """:func:`stop` under the VM's lock."""
    vm = require(ctx, "vm", vm_uuid, "uuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        stop(ctx, ctx.db.get("vm", vm["uuid"]), deadline, cold=cold)


def reboot(ctx: Context, vm_uuid: str, deadline: Deadline) -> None:
    vm = require(ctx, "vm", vm_uuid, "uuid")
    if vm["state"] != "Running":
        raise ApiError(f"uuid: VM {vm['name']} is {vm['state']}, not Running")
    on_host(ctx, ctx.db.get("host", vm["host_uuid"]), lambda agent: agent.reboot_vm(
        uuid=vm["uuid"], wait=deadline.left()))


def migrate_locked(ctx: Context, vm_uuid: str, host_uuid: str | None,
                   deadline: Deadline) -> None:
    """:func:`migrate` under the VM's lock."""
    vm = require(ctx, "vm", vm_uuid, "vmInstanceUuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        migrate(ctx, ctx.db.get("vm", vm["uuid"]), host_uuid, deadline)


def console_address(ctx: Context, vm_uuid: str) -> dict:
    """The running VM's host address and its console's port and protocol."""
    vm = require(ctx, "vm", vm_uuid, "uuid")
    if vm["state"] != "Running":
        raise ApiError(f"uuid: VM {vm['name']} is {vm['state']}, not Running")
    host = ctx.db.get("host", vm["host_uuid"])
    reply = on_host(ctx, host, lambda agent: agent.get_vnc_port(vm_uuid=vm["uuid"]))
    return {"hostIp": host["management_ip"], "port": reply.port, "protocol": reply.protocol}


def set_boot_order(ctx: Context, vm_uuid: str, order: list[str]) -> None:
    require(ctx, "vm", vm_uuid, "uuid")
    ctx.db.update("vm", vm_uuid, boot_order=order)


def boot_order(ctx: Context, vm_uuid: str) -> list[str]:
    return require(ctx, "vm", vm_uuid, "uuid").get("boot_order") or ["HardDisk"]
