"""A Ceph cluster (1 mon, 1 mgr, N OSDs) living entirely under one directory.

Tests, benchmarks and ``make up`` need a real cluster that starts in seconds, never touches
/etc/ceph or /var/lib/ceph, and can run next to another one: every path (data, keyrings,
admin sockets, logs) is under ``root``, the mon listens on free ports (on loopback unless
told otherwise), and the daemons are recorded by pid in ``root/procs.json`` so any
process that knows only ``root`` can stop them. ``root/ceph.conf`` is the single source
of the cluster's identity (fsid, mon addresses), so ``CephCluster(root)`` needs nothing
else.

Tests use memstore (throwaway: the data lives in the OSD's memory). ``make up`` uses
bluestore on a sparse file under ``root/osd/<id>/block``, so its pools and images survive
the daemons: :meth:`CephCluster.resume` starts the same cluster again from its
directory (mon store, keyrings, OSD block files), on the same fsid and mon ports.
Measured here: a bluestore ``start()`` takes ~2 s more than memstore (mkfs), a
``resume()`` about as long as a memstore start.
"""

from __future__ import annotations

import configparser
import json
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentlib import shell
from devcluster import procs

if TYPE_CHECKING:
    import rados

MON, MGR = "a", "x"
OBJECTSTORES = ("memstore", "bluestore")
# librados waits forever by default (and Rados.connect(timeout=) is ignored in Pacific).
CLIENT_TIMEOUTS = {
    "client_mount_timeout": 5,
    "rados_mon_op_timeout": 10,
    "rados_osd_op_timeout": 10,
}
ADMIN_CAPS = ["mon", "allow *", "osd", "allow *", "mds", "allow *", "mgr", "allow *"]
MGR_CAPS = ["mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"]
OSD_CAPS = ["mon", "allow profile osd", "mgr", "allow profile osd", "osd", "allow *"]
MGR_MODULE_SRC = Path("/usr/share/ceph/mgr")  # the packaged default mgr_module_path
MGR_INITIAL_MODULES = "iostat"
PROBE_POOL = "devcluster-probe"
OSD_MEMORY_TARGET = 1 << 30  # bluestore's cache autotunes up to this


class CephStartError(RuntimeError):
    """The cluster did not come up; the message carries the failing daemon's log tail."""


class CephCluster:
    """One cluster under ``root``: ``start()`` builds it from scratch, ``stop()`` kills it."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.registry = procs.Registry(self.root / "procs.json")

    @property
    def conf_path(self) -> Path:
        return self.root / "ceph.conf"

    @property
    def keyring_path(self) -> Path:
        """The client.admin keyring (also named in ceph.conf, so clients find it alone)."""
        return self.root / "keyring"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def fsid(self) -> str:
        return self._conf()["global"]["fsid"]

    @property
    def mon_addrs(self) -> list[str]:
        """The mon's addresses as ``v2:ADDR:PORT`` then ``v1:ADDR:PORT`` (ADDR is the
        ``bind_address`` the cluster was started with, 127.0.0.1 by default).

        Either port also works bare (``127.0.0.1:PORT``, e.g. in a libvirt ``<host>``):
        librados tries msgr v2 and falls back to v1, so the v2 port avoids a retry.
        """
        return self._conf()["global"]["mon_host"].strip("[]").split(",")

    def start(
        self,
        osds: int = 1,
        objectstore: str = "memstore",
        osd_bytes: int = 1 << 30,
        bind_address: str = "127.0.0.1",
    ) -> CephCluster:
        """Build a fresh cluster and return once an OSD is up and in and a client can write.

        The daemons listen on ``bind_address``: loopback unless clients in other network
        namespaces (simulated hosts' qemu) must reach it, e.g. at the root namespace's
        address on the hosts' mgmt bridge. Anything left in ``root`` by an earlier
        cluster is replaced. If a step fails, the daemons already started are stopped
        before the error propagates.
        """
        if osds < 1:
            raise ValueError("a cluster needs at least one OSD")
        if objectstore not in OBJECTSTORES:
            raise ValueError(f"objectstore must be one of {OBJECTSTORES}, not {objectstore!r}")
        if self.running():
            raise CephStartError(f"a cluster is already running under {self.root}")
        try:
            self._build(osds, objectstore, osd_bytes, bind_address)
        except BaseException:
            self.stop()
            raise
        return self

    def persistent(self) -> bool:
        """Whether a cluster whose data survives its daemons (bluestore) lives here."""
        if not self.conf_path.exists():
            return False
        osd = self._conf()["osd"]
        return osd.get("osd_objectstore") == "bluestore" and any(
            (d / "block").exists() for d in (self.root / "osd").glob("*"))

    def resume(self) -> CephCluster:
        """Start the cluster that lives here again, with its data (see :meth:`persistent`),
        and return once its OSDs are up and in and a client can write."""
        if self.running():
            return self
        if not self.persistent():
            raise CephStartError(f"no persistent (bluestore) cluster under {self.root}")
        addr = self._conf()["global"]["public_addr"]
        for mon_addr in self.mon_addrs:
            port = int(mon_addr.rsplit(":", 1)[1])
            if taken := procs.port_taken(addr, port):
                raise CephStartError(f"mon.{MON}: {taken}")
        osds = sorted(int(d.name) for d in (self.root / "osd").glob("*") if d.name.isdigit())
        try:
            started = [self._spawn("mon", MON, ["ceph-mon", "-f", "-i", MON])]
            cluster = self._await(started, self._connect, 20, "mon.a answering")
            try:
                started.append(self._spawn("mgr", MGR, ["ceph-mgr", "-f", "-i", MGR]))
                started += [self._spawn("osd", str(i), ["ceph-osd", "-f", "-i", str(i)])
                            for i in osds]
                self._await_ready(started, cluster)
            finally:
                cluster.shutdown()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every recorded daemon (OSDs, then mgr, then mon); a no-op when none runs."""
        self.registry.stop_all(timeout)

    def running(self) -> bool:
        return any(p.alive() for p in self.registry.load())

    def rados(self, **timeouts: float) -> rados.Rados:
        """A connected client.admin ``rados.Rados`` that fails fast instead of hanging.

        ``timeouts`` override :data:`CLIENT_TIMEOUTS` (any Ceph client option is accepted);
        with them set, ``mon_command`` *returns* ``(-110, ...)`` on timeout.
        """
        import rados  # Debian's CPython 3.11 build only; stop() must work without it.

        conf = {k: str(v) for k, v in {**CLIENT_TIMEOUTS, **timeouts}.items()}
        cluster = rados.Rados(conffile=str(self.conf_path), conf=conf)
        try:
            cluster.connect()
        except BaseException:
            cluster.shutdown()
            raise
        return cluster

    def status(self) -> dict[str, Any]:
        """An operator's summary: identity, where to point clients, health and pids."""
        out: dict[str, Any] = {
            "root": str(self.root),
            "conf": str(self.conf_path),
            "keyring": str(self.keyring_path),
            "running": self.running(),
            "pids": {p.name: p.pid for p in self.registry.load() if p.alive()},
        }
        if self.conf_path.exists():
            out.update(fsid=self.fsid, mon_addrs=self.mon_addrs)
        if not out["running"]:
            out["health"] = "STOPPED"
            return out
        try:
            cluster = self.rados(client_mount_timeout=3, rados_mon_op_timeout=3)
            try:
                out["health"] = _mon_command(cluster, {"prefix": "health"})["status"]
            finally:
                cluster.shutdown()
        except Exception as exc:  # noqa: BLE001 - a summary reports, it does not raise
            out["health"] = f"UNREACHABLE: {exc}"
        return out

    # -- building ------------------------------------------------------------------

    def _build(self, osds: int, objectstore: str, osd_bytes: int, addr: str) -> None:
        self._wipe()
        for d in ("mon", "mgr", "osd", "run", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        v2 = procs.free_port(addr)
        v1 = procs.free_port(addr)
        while v1 == v2:
            v1 = procs.free_port(addr)
        mon_host = f"[v2:{addr}:{v2},v1:{addr}:{v1}]"
        self._write_conf(fsid, mon_host, addr, objectstore, osd_bytes)
        osd_uuids = [str(uuid.uuid4()) for _ in range(osds)]
        self._make_keyrings(osds)
        self._mkfs_mon(fsid, mon_host)
        started = [self._spawn("mon", MON, ["ceph-mon", "-f", "-i", MON])]
        with ThreadPoolExecutor() as pool:  # offline, while the mon comes up; bluestore ~2 s
            list(pool.map(self._mkfs_osd, range(osds), osd_uuids))
        cluster = self._await(started, self._connect, 20, "mon.a answering")
        try:
            self._link_mgr_modules(cluster)
            started.append(self._spawn("mgr", MGR, ["ceph-mgr", "-f", "-i", MGR]))
            for i, osd_uuid in enumerate(osd_uuids):
                _mon_command(cluster, {"prefix": "osd new", "uuid": osd_uuid, "id": i})
                started.append(self._spawn("osd", str(i), ["ceph-osd", "-f", "-i", str(i)]))
            self._await_ready(started, cluster)
        finally:
            cluster.shutdown()

    def _await_ready(self, started: list[procs.Proc], cluster: rados.Rados) -> None:
        """OSDs up at the addresses of the processes just started, a write, an active mgr.

        After a power cut the osdmap still says "up" at the dead OSDs' addresses, so an OSD
        counts only once its address carries its new process's nonce (Ceph daemons use
        their pid); the probe then runs on a new client whose first osdmap is that one —
        the client connected before kept writing to the dead address until timed out.
        """
        osds = {int(p.name.removeprefix("osd.")): p.pid for p in started
                if p.name.startswith("osd.")}
        self._await(started, lambda: _osds_up_in(cluster, osds), 30,
                    f"{len(osds)} OSD(s) up+in")
        self._await(started, self._probe_write, 30, "a client write")
        self._await(started, lambda: _mgr_available(cluster), 30, "mgr.x active")

    def _wipe(self) -> None:
        """Remove what an earlier cluster left (never anything else a caller keeps in root)."""
        for d in ("mon", "mgr", "osd", "run", "log"):
            shutil.rmtree(self.root / d, ignore_errors=True)
        for f in ("ceph.conf", "keyring", "mon.keyring", "monmap"):
            (self.root / f).unlink(missing_ok=True)

    def _write_conf(
        self, fsid: str, mon_host: str, addr: str, objectstore: str, osd_bytes: int
    ) -> None:
        r = self.root
        daemon = {"log_file": f"{r}/log/$name.log", "run_dir": f"{r}/run"}
        if objectstore == "memstore":
            store: dict[str, object] = {"memstore_device_bytes": osd_bytes}  # = capacity
        else:  # a sparse file; skipping the fsck after mkfs saves ~0.8 s per OSD
            store = {
                "bluestore_block_size": osd_bytes,
                "bluestore_block_create": "true",
                "bluestore_fsck_on_mkfs": "false",
                "osd_memory_target": OSD_MEMORY_TARGET,  # 4 GiB by default
            }
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_dict(
            {
                "global": {
                    "fsid": fsid,
                    "mon_host": mon_host,
                    "public_addr": addr,
                    "keyring": str(self.keyring_path),
                    "auth_cluster_required": "cephx",
                    "auth_service_required": "cephx",
                    "auth_client_required": "cephx",
                    "auth_allow_insecure_global_id_reclaim": "false",
                    "ms_bind_ipv6": "false",
                    "osd_pool_default_size": 1,
                    "osd_pool_default_min_size": 1,
                    "osd_pool_default_pg_num": 8,
                    "osd_pool_default_pgp_num": 8,
                    "osd_pool_default_pg_autoscale_mode": "off",
                    "osd_crush_chooseleaf_type": 0,
                    "mon_allow_pool_size_one": "true",
                    "mon_allow_pool_delete": "true",
                    "mon_warn_on_pool_no_redundancy": "false",
                    "mon_data_avail_warn": 2,
                    "mgr_initial_modules": MGR_INITIAL_MODULES,
                    "paxos_propose_interval": 0.05,
                },
                "mon": {**daemon, "mon_data": f"{r}/mon/$id", "keyring": "$mon_data/keyring"},
                "mgr": {
                    **daemon,
                    "mgr_data": f"{r}/mgr/$id",
                    "keyring": "$mgr_data/keyring",
                    "mgr_module_path": f"{r}/mgr/modules",
                },
                "osd": {
                    **daemon,
                    "osd_data": f"{r}/osd/$id",
                    "keyring": "$osd_data/keyring",
                    "cluster_addr": addr,
                    "osd_objectstore": objectstore,
                    **store,
                },
            }
        )
        with open(self.conf_path, "w") as f:
            conf.write(f)

    def _make_keyrings(self, osds: int) -> None:
        """One keyring per entity; the mon's mkfs keyring holds them all, caps included.

        Importing every key at mkfs means no ``auth add`` round trips once the mon runs.
        """
        mon_kr = self.root / "mon.keyring"
        _gen_key(mon_kr, "mon.", ["mon", "allow *"])
        _gen_key(self.keyring_path, "client.admin", ADMIN_CAPS)
        entity_krs = [self.keyring_path, self._data("mgr", MGR) / "keyring"]
        _gen_key(entity_krs[-1], f"mgr.{MGR}", MGR_CAPS)
        for i in range(osds):
            entity_krs.append(self._data("osd", str(i)) / "keyring")
            _gen_key(entity_krs[-1], f"osd.{i}", OSD_CAPS)
        with open(mon_kr, "a") as out:
            for kr in entity_krs:
                out.write(kr.read_text())

    def _link_mgr_modules(self, cluster: rados.Rados) -> None:
        """Give the mgr only the modules it must run: loading all of them takes ~3 s.

        The always-on set depends on the release, so it comes from the mon's mgr map; a
        missing always-on module would turn health to MGR_MODULE_ERROR.
        """
        mgr_map = _mon_command(cluster, {"prefix": "mgr dump"})
        always_on = [m for mods in mgr_map["always_on_modules"].values() for m in mods]
        wanted = {*always_on, *MGR_INITIAL_MODULES.split()}
        d = self.root / "mgr" / "modules"
        d.mkdir(parents=True, exist_ok=True)
        for src in MGR_MODULE_SRC.iterdir():
            if src.name in wanted or src.suffix == ".py":  # .py: mgr_module, mgr_util...
                (d / src.name).symlink_to(src)

    def _mkfs_mon(self, fsid: str, mon_host: str) -> None:
        monmap = self.root / "monmap"
        shell.run(["monmaptool", "--create", "--clobber", "--enable-all-features",
                   "--fsid", fsid, "--addv", MON, mon_host, monmap])  # fmt: skip
        shell.run(["ceph-mon", "--mkfs", "-i", MON, "-c", self.conf_path, "--monmap", monmap,
                   "--keyring", self.root / "mon.keyring"])  # fmt: skip

    def _mkfs_osd(self, i: int, osd_uuid: str) -> None:
        # --no-mon-config: mkfs is offline, so it can run while the mon is still starting.
        shell.run(["ceph-osd", "--mkfs", "-i", i, "--osd-uuid", osd_uuid, "-c", self.conf_path,
                   "--no-mon-config"], timeout=120)  # fmt: skip

    def _data(self, kind: str, ident: str) -> Path:
        d = self.root / kind / ident
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _spawn(self, kind: str, ident: str, argv: list[str]) -> procs.Proc:
        name = f"{kind}.{ident}"
        log = self.log_dir / f"{name}.log"  # the daemon's own log_file: one file per daemon
        return self.registry.add(procs.spawn(name, [*argv, "-c", str(self.conf_path)], log))

    def _connect(self) -> rados.Rados:
        return self.rados(client_mount_timeout=1, rados_mon_op_timeout=5)

    def _probe_write(self) -> bool:
        """Write and read back through a scratch pool, then drop it: proves PGs go active."""
        cluster = self._connect()
        try:
            if not cluster.pool_exists(PROBE_POOL):
                cluster.create_pool(PROBE_POOL)
            with cluster.open_ioctx(PROBE_POOL) as ioctx:
                ioctx.write_full("probe", b"ok")
                ok = ioctx.read("probe") == b"ok"
            cluster.delete_pool(PROBE_POOL)
            return ok
        finally:
            cluster.shutdown()

    def _await(
        self, daemons: list[procs.Proc], predicate: Callable[[], Any], timeout: float, what: str
    ) -> Any:
        """Poll ``predicate`` but give up at once, with its log tail, if a daemon dies."""
        try:
            return procs.wait_for(predicate, timeout, what, watch=daemons)
        except procs.DaemonDied as exc:
            raise CephStartError(str(exc)) from None
        except TimeoutError as exc:
            tails = "\n".join(f"--- {p.log}:\n{procs.log_tail(Path(p.log), 15)}"
                              for p in daemons)
            raise CephStartError(f"{exc}\n{tails}") from None

    def _conf(self) -> configparser.ConfigParser:
        if not self.conf_path.exists():
            raise FileNotFoundError(f"no cluster under {self.root} (no {self.conf_path})")
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(self.conf_path)
        return conf


def _gen_key(path: Path, entity: str, caps: list[str]) -> None:
    """``caps`` alternates service and capability: ["mon", "allow *", "osd", ...]."""
    caps_args = [a for i in range(0, len(caps), 2) for a in ("--cap", caps[i], caps[i + 1])]
    shell.run(["ceph-authtool", "--create-keyring", path, "--gen-key", "-n", entity, *caps_args])


def _mon_command(cluster: rados.Rados, cmd: dict[str, Any]) -> Any:
    """Run a mon command, raising with Ceph's own message when it fails or times out."""
    ret, out, err = cluster.mon_command(json.dumps({"format": "json", **cmd}), b"")
    if ret != 0:
        raise RuntimeError(f"ceph {cmd['prefix']}: rc={ret} {err}")
    return json.loads(out) if out else None


def _osds_up_in(cluster: rados.Rados, pids: dict[int, int]) -> bool:
    """Whether each OSD id is up and in at the address of the process ``pids`` names."""
    dump = {o["osd"]: o for o in _mon_command(cluster, {"prefix": "osd dump"})["osds"]}
    return all(
        i in dump and dump[i]["up"] and dump[i]["in"]
        and {a["nonce"] for a in dump[i]["public_addrs"]["addrvec"]} == {pid}
        for i, pid in pids.items())


def _mgr_available(cluster: rados.Rados) -> bool:
    """Without an active mgr, ``ceph df`` and cluster stats read zero."""
    return bool(_mon_command(cluster, {"prefix": "mgr stat"})["available"])
