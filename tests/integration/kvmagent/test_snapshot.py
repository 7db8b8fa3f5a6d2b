"""Volume snapshots of file volumes through a real kvmagent: live (libvirt disk-only
snapshot and block pull, the guest keeps running) and offline (qemu-img), leaving the
same files and backing chains; data checked with qemu-io patterns. Timings are printed;
run with -s to see them."""

import json
import subprocess
import time
import uuid

import pytest

from devcluster.guestconsole import READY
from devcluster.kvmhost import storage_dir
from kvmagent.drivers.domain import parse_domain

pytestmark = pytest.mark.integration

MIB = 1 << 20


def chain(path) -> list[str]:
    out = subprocess.run(["qemu-img", "info", "--backing-chain", "-U", "--output=json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return [layer["filename"] for layer in json.loads(out)]


def qemu_io(path, *commands: str) -> None:
    argv = ["qemu-io", "-f", "qcow2"]
    for c in commands:
        argv += ["-c", c]
    res = subprocess.run([*argv, str(path)], check=True, capture_output=True, text=True)
    assert "Pattern verification failed" not in res.stdout + res.stderr, res.stdout


def tree(d) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def storage_root(kvm):
    root = storage_dir(kvm.host) / "ps"
    reply = kvm.call("/localstorage/init", {"path": str(root)}).json()
    assert reply["success"], reply
    return root


def snap(kvm, vm, volume, new, **extra) -> tuple[dict, float]:
    sent = time.monotonic()
    reply = kvm.call_async("/vm/volume/takesnapshot", {
        "vmUuid": vm, "volumeUuid": volume["volumeUuid"], "volume": volume,
        "installPath": str(new), "fullSnapshot": False, **extra})
    return reply, time.monotonic() - sent


def merge(kvm, vm, volume, src, **extra) -> tuple[dict, float]:
    sent = time.monotonic()
    reply = kvm.call_async("/vm/volume/mergesnapshot", {
        "vmUuid": vm, "volume": volume, "srcPath": str(src) if src else None,
        "destPath": volume["installPath"], "fullRebase": src is None, **extra})
    return reply, time.monotonic() - sent


def now_at(volume, path) -> dict:
    return {**volume, "installPath": str(path)}


def test_live_then_offline_snapshots_and_merges(kvm_host):
    kvm = kvm_host
    root = storage_root(kvm)
    d = root / "rootVolumes" / "vol-1"
    v1 = d / "v1.qcow2"
    reply = kvm.call("/localstorage/volume/createempty", {"installUrl": str(v1),
                                                          "size": 64 * MIB}).json()
    assert reply["success"], reply
    qemu_io(v1, "write -P 0x11 0 64M")  # data a block pull has to copy
    volume = {"volumeUuid": uuid.uuid4().hex, "deviceId": 0, "installPath": str(v1)}
    cmd = kvm.start_cmd(rootVolume=volume)
    vm = cmd["vmInstanceUuid"]
    events = kvm.host.dir / "log" / "virsh-events.log"
    kvm.host.spawn("virsh-events", ["virsh", "-c", "qemu:///system", "event", "--all",
                                    "--loop"], events)
    assert kvm.call_async("/vm/start", cmd)["success"]
    kvm.wait_console(vm, lambda r: r.ready, "guest boot")
    booted = len(events.read_text().splitlines())  # Resumed and Started, from the start

    # -- live: incremental snapshot ---------------------------------------------------
    v2 = d / "v2.qcow2"
    reply, took = snap(kvm, vm, volume, v2)
    assert reply == {"success": True, "error": "", "snapshotInstallPath": str(v1),
                     "newVolumeInstallPath": str(v2), "size": v1.stat().st_size}
    print(f"\nlive snapshot: call -> callback {took:.3f}s")
    assert chain(v2) == [str(v2), str(v1)]
    [vda] = parse_domain(kvm.virsh("dumpxml", vm)).disks
    assert (vda.target, vda.path, vda.serial) == ("vda", str(v2), volume["volumeUuid"])
    again, _ = snap(kvm, vm, volume, v2)  # a repeated command: done already, same reply
    assert again == reply and chain(v2) == [str(v2), str(v1)]

    # running, so qemu-img must not touch it: without vmUuid it is refused, unchanged
    before = tree(root)
    refused, _ = snap(kvm, "", now_at(volume, v2), d / "x.qcow2")
    assert refused["success"] is False
    assert f"volume.installPath: cannot snapshot {v2}: it is in use" in refused["error"]
    assert tree(root) == before

    v3 = d / "snapshots" / "v3.qcow2"  # a directory that does not exist yet
    reply, took = snap(kvm, vm, now_at(volume, v2), v3)
    assert reply["success"] and reply["newVolumeInstallPath"] == str(v3), reply
    assert chain(v3) == [str(v3), str(v2), str(v1)]

    # -- live: merges -----------------------------------------------------------------
    volume = now_at(volume, v3)
    reply, _ = merge(kvm, vm, volume, v1)
    assert reply == {"success": True, "error": ""}
    assert chain(v3) == [str(v3), str(v1)]
    error = merge(kvm, vm, volume, v2)[0]["error"]
    assert error.startswith(f"srcPath: {v2} is not in the backing chain of {v3}")

    v4 = d / "v4.qcow2"  # full: v3 gets v1's data (a 64 MiB pull), then the overlay
    reply, took = snap(kvm, vm, volume, v4, fullSnapshot=True)
    assert reply["success"], reply
    print(f"live full snapshot (64 MiB pull + snapshot): {took:.3f}s")
    assert chain(v4) == [str(v4), str(v3)]
    volume = now_at(volume, v4)
    reply, _ = merge(kvm, vm, volume, None, timeout=0.001)  # the copy takes longer
    assert reply["error"] == (f"vm {vm}: the block pull of vda ({v4}) did not finish within "
                              "0.001s; aborted, the volume's backing chain is unchanged")
    assert chain(v4) == [str(v4), str(v3)]
    reply, took = merge(kvm, vm, volume, None)
    assert reply == {"success": True, "error": ""}
    print(f"live block pull of a 64 MiB volume: call -> callback {took:.3f}s")
    assert chain(v4) == [str(v4)]

    assert kvm.virsh("domstate", vm).strip() == "running"
    assert [tag for tag, _ in kvm.console(vm).events].count(READY) == 1
    time.sleep(0.5)  # a report would be sent at once
    assert [r for r in kvm.receiver.received if r.headers.get("commandpath")] == []
    # libvirt emitted no lifecycle event (the guest was never paused), only block jobs
    since_boot = events.read_text().splitlines()[booted:]
    assert [e for e in since_boot if "'lifecycle'" in e] == [], since_boot
    assert any("Block Pull for vda completed" in e for e in since_boot), since_boot

    # -- offline: the same operations on the stopped volume ------------------------------
    assert kvm.call_async("/vm/stop", {"uuid": vm, "timeout": 20})["success"]
    qemu_io(v4, "read -P 0x11 0 64M")  # everything the pulls copied
    qemu_io(v4, "write -P 0x3c 0 1M")
    v5 = d / "v5.qcow2"
    reply, took = snap(kvm, "", volume, v5)  # ZStack sends an empty vmUuid when stopped
    assert reply == {"success": True, "error": "", "snapshotInstallPath": str(v4),
                     "newVolumeInstallPath": str(v5), "size": v4.stat().st_size}
    print(f"offline snapshot: call -> callback {took:.3f}s")
    assert chain(v5) == [str(v5), str(v4)]
    volume = now_at(volume, v5)
    qemu_io(v5, "write -P 0x5a 1M 1M")
    v6 = d / "snapshots" / "v6.qcow2"
    reply, _ = snap(kvm, vm, volume, v6)  # its VM is named but stopped: offline too
    assert reply["success"], reply
    assert chain(v6) == [str(v6), str(v5), str(v4)]
    volume = now_at(volume, v6)
    assert merge(kvm, vm, volume, v4)[0]["success"]
    assert chain(v6) == [str(v6), str(v4)]
    v7 = d / "v7.qcow2"
    reply, _ = snap(kvm, "", volume, v7, fullSnapshot=True)
    assert reply["success"], reply
    assert chain(v7) == [str(v7), str(v6)]
    volume = now_at(volume, v7)
    reply, took = merge(kvm, "", volume, None)
    assert reply == {"success": True, "error": ""}
    print(f"offline full merge: {took:.3f}s")
    assert chain(v7) == [str(v7)]
    qemu_io(v7, "read -P 0x3c 0 1M", "read -P 0x5a 1M 1M", "read -P 0x11 2M 62M")


def test_paths_outside_the_storage_are_refused_and_change_nothing(kvm_host):
    kvm = kvm_host
    root = storage_root(kvm)
    v1 = root / "v1.qcow2"
    assert kvm.call("/localstorage/volume/createempty", {"installUrl": str(v1),
                                                         "size": MIB}).json()["success"]
    elsewhere = kvm.host.dir / "elsewhere"
    elsewhere.mkdir()
    outside = elsewhere / "o.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(outside), "1M"], check=True)
    (root / "link").symlink_to(elsewhere)
    volume = {"volumeUuid": uuid.uuid4().hex, "deviceId": 0, "installPath": str(v1)}
    before = tree(root), tree(elsewhere)

    error = snap(kvm, "", volume, elsewhere / "new.qcow2")[0]["error"]
    assert error.startswith(f"installPath: {elsewhere / 'new.qcow2'} is outside the "
                            f"local storage root {root}")
    error = snap(kvm, "", volume, root / "link" / "new.qcow2")[0]["error"]
    assert error.startswith("installPath:") and "resolves to" in error
    error = snap(kvm, "", now_at(volume, outside), root / "new.qcow2")[0]["error"]
    assert error.startswith(f"volume.installPath: {outside} is outside every storage root")
    error = snap(kvm, "", now_at(volume, root / "missing.qcow2"), root / "n.qcow2")[0]["error"]
    assert error.startswith(f"volume.installPath: volume {root / 'missing.qcow2'} not found")
    taken = root / "taken.qcow2"
    taken.write_bytes(b"not an overlay")
    before = tree(root), tree(elsewhere)
    error = snap(kvm, "", volume, taken)[0]["error"]
    assert error == f"installPath: {taken} already exists: the new volume file must be a new path"
    error = merge(kvm, "", volume, outside)[0]["error"]
    assert error.startswith(f"srcPath: {outside} is outside the local storage root")
    error = merge(kvm, "", volume, root / "other.qcow2")[0]["error"]
    assert error.startswith(f"srcPath: {root / 'other.qcow2'} is not in the backing chain")
    assert (tree(root), tree(elsewhere)) == before

    for body in ({"volume": volume, "installPath": "relative.qcow2"},
                 {"volume": volume, "installPath": f"{root}/../x.qcow2"},
                 {"volume": volume, "installPath": str(v1)},
                 {"volume": volume},
                 {"vmUuid": "not-a-uuid", "volume": volume, "installPath": str(root / "n")}):
        ack = kvm.post_async("/vm/volume/takesnapshot", body)
        assert ack.status_code == 400 and ack.json()["success"] is False, ack.text
    ack = kvm.post_async("/vm/volume/mergesnapshot", {"volume": volume, "fullRebase": True,
                                                      "destPath": str(root / "other")})
    assert ack.status_code == 400 and "destPath" in ack.json()["error"]
    ack = kvm.post_async("/vm/volume/mergesnapshot", {"volume": volume, "destPath": str(v1)})
    assert ack.status_code == 400 and "srcPath: needed unless fullRebase" in ack.json()["error"]
    assert (tree(root), tree(elsewhere)) == before
