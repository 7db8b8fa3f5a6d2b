"""cephagent: Ceph primary and backup storage (RBD copy-on-write) on Ceph mon nodes.

One agent serves both ``/ceph/primarystorage/*`` and ``/ceph/backupstorage/*`` for the
cluster its ``--ceph-conf`` names, through the librados/librbd bindings (never the rbd
CLI), with client timeouts so a dead mon or OSD is an error within ``--ceph-timeout``
seconds rather than a hang.
"""

from __future__ import annotations

from agentlib import server
from agentlib.agent import Agent
from agentlib.identity import Identity
from agentlib.progress import ProgressBoard
from agentlib.readiness import register_echo
from cephagent.config import CephAgentConfig
from cephagent.drivers.cluster import CephClient
from cephagent.drivers.download import ImageDownloader
from cephagent.drivers.images import RbdImages
from cephagent.handlers import backup, common, primary
from cephagent.handlers.common import Ceph

PORT = 7762


def build(cfg: CephAgentConfig) -> Agent:
    agent = Agent("cephagent", cfg)
    identity = Identity(cfg.data_dir)
    agent.reporter.url = identity.get("sendCommandUrl")
    client = CephClient(cfg.ceph_conf, cfg.ceph_user, cfg.ceph_timeout)
    agent.on_close(client.close)
    images = RbdImages(client)
    downloader = ImageDownloader(client, images, cfg.tmp_dir or cfg.data_dir / "tmp",
                                 cfg.file_url_roots)
    ceph = Ceph(client, images, downloader, ProgressBoard(agent.reporter), identity,
                agent.reporter, agent.locks)
    register_echo(agent, f"{primary.PREFIX}/echo", f"{backup.PREFIX}/echo")
    for prefix in (primary.PREFIX, backup.PREFIX):
        agent.include(common.routes, ceph, prefix)
    agent.include(primary.routes, ceph)
    agent.include(backup.routes, ceph)
    return agent


def main(argv: list[str] | None = None) -> None:
    server.main("cephagent", build, CephAgentConfig, PORT, __doc__.splitlines()[0], argv)
