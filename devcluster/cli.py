"""zfleet-devcluster: the whole cloud on this machine (what `make up` / `make down` run).

  up      Ceph (1 mon, 1 mgr, 1 OSD), the mgmt/data/public bridges, simulated KVM hosts
          (namespaces + their own libvirtd + kvmagent), the coordinator and the other
          agents; then, through the coordinator's API, a zone with those hosts, Ceph
          primary and backup storage, a flat L3 (DHCP, user data), the guest image and
          a demo VM (CreateVmInstance); prints what runs where.
          After `down` (or a reboot) the same cloud comes back: its database, Ceph
          data and the VMs that were running, with their addresses.
          A running cluster is left as it is.
  down    stop all of it, by pid, from the state in --dir; the cloud's data stays
  reset   down, then remove the cloud's data: the next `up` builds a new cloud
  status  what runs where (--json for machines)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from devcluster.cluster import DevCluster


def print_status(status: dict) -> None:
    print(f"zfleet devcluster in {status['dir']}: "
          f"{'UP' if status['running'] else 'NOT (fully) RUNNING'}")
    ceph = status["ceph"]
    if ceph.get("running"):
        print(f"  ceph          {ceph['health']}  fsid {ceph['fsid']}  mon "
              f"{' '.join(ceph['mon_addrs'])}\n"
              f"                ceph -c {ceph['conf']} -s")
    for name, svc in status["services"].items():
        print(f"  {name:13s} {svc['url']:28s} pid {svc['pid']:<7} "
              f"{'up' if svc['alive'] else 'DEAD'}  log {svc['log']}")
    for name, host in status["hosts"].items():
        lv = host["libvirt"]
        agent = host["daemons"].get("kvmagent", {})
        print(f"  {name:13s} mgmt {host['mgmt_ip']}  netns {host['netns']}  "
              f"{'up' if host['running'] else 'DOWN'}\n"
              f"    kvmagent    {host['kvmagent']:28s} pid {agent.get('pid', '-'):<7} "
              f"{'up' if agent.get('alive') else 'DEAD'}\n"
              f"    libvirtd    pid {lv['libvirtd_pid']}  virsh -c '{lv['uri']}' list --all\n"
              f"                ip netns exec {host['netns']} ip -br addr")
    demo = status.get("demo_vm")
    if demo:
        print(f"  demo VM       {demo['uuid']} on {demo['host']}: DHCP lease {demo['lease']}\n"
              f"                console log {demo['console']}")
    print(f"  database      {status['database']}")
    if status["running"]:
        first = next(iter(status["hosts"].values()), None)
        print(f"\nTry:\n  export ZFLEET_URL={status['services']['coordinator']['url']}\n"
              "  .venv/bin/zfleet QueryVmInstance fields=name,state,hostUuid\n"
              "  .venv/bin/zfleet QueryHost fields=name,status,allocatedMemory\n"
              "  .venv/bin/zfleet dump-db --keep-amount 14   (a backup of that database)\n"
              "  .venv/bin/zfleet --help          (every API)  /  .venv/bin/zfleet shell")
        if demo and demo.get("lease"):
            print(f"  ping -c1 {demo['lease']}            (this machine routes the flat L3)")
        if first:
            print(f"  curl -s -XPOST {first['kvmagent']}/vm/vmsync")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="zfleet-devcluster", description=__doc__.split("\n")[0],
                                 epilog=__doc__.split("\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("run/devcluster"),
                    help="where the cluster's state, data and logs live (default: %(default)s)")
    ap.add_argument("--hosts", type=int, default=2, help="simulated KVM hosts (default: 2)")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="bring everything up and print where it runs")
    sub.add_parser("down", help="stop everything (the cloud's data stays)")
    sub.add_parser("reset", help="stop everything and remove the cloud's data")
    st = sub.add_parser("status", help="what runs where")
    st.add_argument("--json", action="store_true", help="machine-readable")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `status | head` ends quietly
    # a killed `up` (timeout, systemd) takes down what it started, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    cluster = DevCluster(args.dir, hosts=args.hosts)
    started = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {msg}", flush=True)

    if args.command == "up":
        try:
            cluster.up(progress)
        except Exception as exc:  # noqa: BLE001 - one clear line; the logs have the rest
            print(f"zfleet-devcluster: up failed: {exc}", file=sys.stderr)
            return 1
        progress("up")
        print_status(cluster.status())
    elif args.command == "down":
        cluster.down(progress)
        progress("down; `make up` brings the same cloud back, `make reset` removes it")
    elif args.command == "reset":
        cluster.reset(progress)
        progress("reset: nothing is kept; the next `make up` builds a new cloud")
    else:
        status = cluster.status()
        if args.json:
            print(json.dumps(status, indent=1))
        else:
            print_status(status)
        return 0 if status["running"] else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
