"""Local storage volume migration to another host (ZStack's LocalStorageMigrateVolume):
``/localstorage/volume/migrate`` (async: copying takes as long as the bytes need;
cancellable between files) and ``/localstorage/sshkey`` (the agent's public key, for
the coordinator to authorize on the destinations).

The volumes are held (``volume:<path>``, as the other storage commands hold them) and,
with ``vmUuid``, the VM too (``vm:<uuid>``), so the agent neither starts that VM nor
changes those files while they are copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agentlib import ssh
from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.locks import NamedLocks
from agentlib.models import AuthorizeKeyCmd, AuthorizeKeyReply, EmptyCommand
from agentlib.routes import Routes
from agentlib.ssh import Remote, SshIdentity
from agentlib.tasks import Task
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.filestorage import StorageError
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.storage_roots import StorageRoots
from kvmagent.drivers.volume_migration import Volume, VolumeMigration, plan, refuse_in_use
from kvmagent.handlers.localstorage import STATE_FILE
from kvmagent.models.volume_migrate import (
    MigratedFile,
    MigrateVolumeCmd,
    MigrateVolumeReply,
    SshKeyReply,
)

log = logging.getLogger(__name__)

routes = Routes()


@dataclass
class VolumeMigrations:
    """What the handlers work on: the agent's ssh key, the config, the libvirt connection
    (volumes in use) and the agent's locks."""

    identity: SshIdentity
    config: KvmAgentConfig
    libvirt_conn: LibvirtConnection
    locks: NamedLocks


def register(agent: Agent, config: KvmAgentConfig, libvirt_conn: LibvirtConnection) -> None:
    agent.include(routes, VolumeMigrations(SshIdentity(Path(config.data_dir) / "ssh"), config,
                                           libvirt_conn, agent.locks))


@routes.sync("/localstorage/sshkey")
def sshkey(mig: VolumeMigrations, cmd: EmptyCommand) -> SshKeyReply:
    """The agent's ssh public key (made on first use) to authorize on other hosts."""
    return SshKeyReply(public_key=mig.identity.public_key())


@routes.sync("/localstorage/authorizekey")
def authorize_key(mig: VolumeMigrations, cmd: AuthorizeKeyCmd) -> AuthorizeKeyReply:
    """Let another host's agent (``publicKey``) copy volumes here over ssh: added to
    ``--authorized-keys`` once; repeating it changes nothing."""
    added = ssh.authorize_key(mig.config.authorized_keys, cmd.public_key)
    if added:
        log.info("authorized ssh key %s in %s", cmd.public_key.split()[-1],
                 mig.config.authorized_keys)
    return AuthorizeKeyReply(added=added)


@routes.async_("/localstorage/volume/migrate", long=True)
def migrate(mig: VolumeMigrations, cmd: MigrateVolumeCmd, task: Task) -> MigrateVolumeReply:
    """Copy volumes with their backing chains (snapshots, image cache) to another
    host over ssh, verified by sha256; a failure leaves nothing there."""
    roots = StorageRoots(Path(mig.config.data_dir) / STATE_FILE)  # re-read: init may be newer
    field = "srcInstallPath" if cmd.src_install_path else "paths"
    volumes = []
    for path in cmd.volumes:
        try:
            storage = roots.find(path, shared=False)
            top = storage.resolve(path)
        except StorageError as exc:
            raise AgentError(f"{field}: {exc}") from None
        dst_root = PurePosixPath(cmd.dst_storage_root or storage.root)
        dst_top = PurePosixPath(cmd.dst_install_path) if cmd.dst_install_path else None
        volumes.append(Volume(storage, top, dst_root, dst_top))
    locks = [f"volume:{v.top}" for v in volumes]
    locks += [f"vm:{cmd.vm_uuid}"] if cmd.vm_uuid else []
    with mig.locks.hold(*locks):
        refuse_in_use(mig.libvirt_conn.conn, [v.top for v in volumes], cmd.vm_uuid,
                      cmd.volume_type)
        try:
            the_plan = plan(volumes)
        except StorageError as exc:
            raise AgentError(f"{field}: {exc}") from None
        remote = Remote(mig.identity, cmd.dst_host_ip, cmd.dst_ssh_port, cmd.dst_username)
        VolumeMigration(remote, the_plan, task.check_cancelled).run()
    return MigrateVolumeReply(
        dst_install_paths=[str(chain[0].dst) for chain in the_plan.chains],
        files=[MigratedFile(src_path=str(f.src), dst_path=str(f.dst), size=f.size,
                            sha256=f.sha256, seconds=round(f.seconds, 3), reused=f.reused)
               for f in the_plan.files],
    )
