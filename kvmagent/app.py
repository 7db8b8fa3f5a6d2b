"""kvmagent: the agent on each KVM host (VMs via libvirt, L2, DHCP, EIP, local storage).

It holds one libvirt connection with an event loop: changes to VMs that the agent did
not make are reported to the coordinator at once, and a libvirtd restart is followed by
a reconnect and a ``/kvm/reconnectme`` report. Running VMs are plain libvirt domains, so
an agent restart leaves them running and the new agent finds them by name.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.identity import Identity
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.selffencer import SelfFencers
from kvmagent.drivers.vms import VmDriver
from kvmagent.handlers import (
    ceph_secret,
    dhcp,
    eip,
    ha,
    host,
    hotplug,
    l2,
    localstorage,
    migrate,
    sftp_image,
    snapshot,
    userdata,
    vm,
    volume_migrate,
)
from kvmagent.statecapture import RECONNECT_ME, StateCapture

PORT = 7070


def build(cfg: KvmAgentConfig) -> Agent:
    agent = Agent("kvmagent", cfg)
    identity = Identity(cfg.data_dir)
    capture = StateCapture(agent.reporter, lambda: identity.get("hostUuid"))

    def reconnected() -> None:
        agent.reporter.send(RECONNECT_ME, {"hostUuid": identity.get("hostUuid"),
                                           "reason": f"libvirtd at {cfg.libvirt_uri} "
                                                     "came back"})

    conn = LibvirtConnection(cfg.libvirt_uri, capture.on_event, reconnected)
    conn.open()
    agent.on_close(conn.close)
    fencers = SelfFencers(cfg.data_dir / "selffencers", conn)
    host.register(agent, identity, cfg, conn, on_contact=fencers.contact)
    vms = VmDriver(conn, capture)
    vm.register(agent, vms, cfg)
    hotplug.register(agent, vms, cfg)
    migrate.register(agent, vms)
    ceph_secret.register(agent, conn)
    localstorage.register(agent, cfg)
    snapshot.register(agent, vms, cfg)
    volume_migrate.register(agent, cfg, conn)
    sftp_image.register(agent, cfg)
    l2.register(agent)
    flat_dhcp = dhcp.register(agent, cfg.data_dir)
    eip.register(agent)
    userdata.register(agent, cfg.data_dir, flat_dhcp)
    ha.register(agent, fencers)
    fencers.adopt()
    agent.on_close(fencers.close)
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("kvmagent", build, KvmAgentConfig, PORT, __doc__.splitlines()[0], argv)
