"""``/sftpbackupstorage/*``: connect, ping, download (async, with progress and cancel),
delete, getimagesize, gethash, sshkey and garbage.

The storage root comes from ``connect`` and is kept in the data dir, so a restarted
agent serves the same root before the coordinator reconnects it. It must lie inside the
operator's ``--storage-roots`` and be no system directory, nor hold or lie in the data
dir (its identity and ssh key): ``garbage`` lists and deletes everything under it. Work
on one image holds the lock ``image:<path>``: a repeated download of the same path waits
for the first and then finds the image there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from agentlib import storageroot
from agentlib.agent import Agent
from agentlib.errors import AgentError, BadRequest
from agentlib.identity import Identity
from agentlib.locks import NamedLocks
from agentlib.models import AuthorizeKeyCmd, AuthorizeKeyReply, EmptyCommand
from agentlib.progress import ProgressBoard, ProgressReply
from agentlib.reports import Reporter
from agentlib.routes import Routes
from agentlib.ssh import SshIdentity
from agentlib.ssh import authorize_key as authorize_key_file
from agentlib.tasks import Task
from agentlib.urlfetch import redact
from sftpbsagent.config import SftpBsAgentConfig
from sftpbsagent.drivers import imagefile
from sftpbsagent.drivers.download import Downloader, check_url
from sftpbsagent.drivers.records import ImageRecords, digest
from sftpbsagent.drivers.store import ImageStore, StoreError
from sftpbsagent.models.storage import (
    CapacityReply,
    ConnectCmd,
    DeleteCmd,
    DownloadCmd,
    GarbageCmd,
    GarbageReply,
    GetHashCmd,
    GetImageSizeCmd,
    HashReply,
    ImageReply,
    PingReply,
    ProgressCmd,
    SizeReply,
    SshKeyReply,
)

P = "/sftpbackupstorage"

log = logging.getLogger(__name__)

routes = Routes()


@dataclass
class BackupStorage:
    """What the handlers work on: the connected root (kept in ``identity``), the image
    records, the ssh key, and the agent's locks, reporter and progress board."""

    cfg: SftpBsAgentConfig
    identity: Identity
    records: ImageRecords
    ssh: SshIdentity
    board: ProgressBoard
    reporter: Reporter
    locks: NamedLocks
    downloaders: dict[str, Downloader] = field(default_factory=dict)

    def allowed(self, field: str, root: str) -> None:
        try:
            storageroot.allowed_root(root, self.cfg.storage_roots, self.cfg.data_dir)
        except ValueError as exc:
            raise BadRequest(f"{field}: {exc}") from None

    def store(self) -> ImageStore:
        root = self.identity.get("storagePath")
        if root is None:
            raise AgentError(f"this backup storage is not connected yet: {P}/connect first")
        try:  # kept by an older agent, or --storage-roots changed since
            self.allowed("storagePath", root)
        except BadRequest as exc:
            raise AgentError(f"the connected {exc}: {P}/connect another") from None
        return ImageStore(root)

    def downloader(self) -> Downloader:
        """One per root, so garbage sees every download in flight there."""
        s = self.store()
        if str(s.root) not in self.downloaders:  # setdefault: two first callers get one
            self.downloaders.setdefault(str(s.root), Downloader(
                s, self.ssh, self.cfg.file_url_roots, self.cfg.read_timeout))
        return self.downloaders[str(s.root)]

    def resolve(self, field: str, path: str) -> Path:
        try:
            return self.store().resolve(path)
        except StoreError as exc:
            raise AgentError(f"{field}: {exc}") from None

    def capacity(self, reply: CapacityReply) -> CapacityReply:
        reply.total_capacity, reply.available_capacity = self.store().capacity()
        return reply


def register(agent: Agent, cfg: SftpBsAgentConfig) -> None:
    identity = Identity(cfg.data_dir)
    agent.reporter.url = identity.get("sendCommandUrl")  # reports survive a restart
    agent.include(routes, BackupStorage(
        cfg, identity, ImageRecords(Path(cfg.data_dir) / "images.json"),
        SshIdentity(Path(cfg.data_dir) / "ssh", "zfleet-sftpbsagent"),
        ProgressBoard(agent.reporter), agent.reporter, agent.locks))


@routes.sync(f"{P}/connect")
def connect(bs: BackupStorage, cmd: ConnectCmd) -> PingReply:
    """Serve images under ``storagePath`` (created if missing, must be writable)."""
    bs.allowed("storagePath", cmd.storage_path)
    try:
        ImageStore(cmd.storage_path).init()
    except StoreError as exc:
        raise AgentError(f"storagePath: {exc}") from None
    bs.identity.update(storagePath=os.path.normpath(cmd.storage_path), uuid=cmd.uuid)
    if cmd.send_command_url:
        bs.identity.update(sendCommandUrl=cmd.send_command_url)
        bs.reporter.url = cmd.send_command_url
    return ping(bs, cmd)


@routes.sync(f"{P}/ping", quiet=True)
def ping(bs: BackupStorage, cmd: EmptyCommand) -> PingReply:
    """The storage this agent serves (uuid, root) and its capacity."""
    reply = PingReply(uuid=bs.identity.get("uuid"), storage_path=bs.identity.get("storagePath"))
    return bs.capacity(reply) if reply.storage_path else reply


@routes.async_(f"{P}/download", long=True)
def download(bs: BackupStorage, cmd: DownloadCmd, task: Task) -> ImageReply:
    """Fetch an http/https/file/sftp URL to ``installPath``: streamed, md5-summed,
    inspected with qemu-img, renamed into place read-only. Cancellable; a failure
    leaves nothing behind. Repeating a finished download answers the same facts."""
    d = bs.downloader()
    check_url(cmd.url, bs.cfg.file_url_roots)
    target = bs.resolve("installPath", cmd.install_path)
    with bs.locks.hold(f"image:{target}"):
        known = bs.records.get(target)
        if known is not None and target.is_file():
            if known["urlDigest"] != digest(cmd.url):
                raise AgentError(f"installPath: {target} already holds an image from "
                                 f"{known['urlShown']}, not {redact(cmd.url)}")
            return bs.capacity(ImageReply(**known["facts"]))
        progress = bs.board.start(cmd.image_uuid or str(target), None, task_uuid=task.uuid,
                                  every=bs.cfg.progress_seconds)
        got = d.download(cmd.url, target, progress, task.check_cancelled)
        facts = {"md5_sum": got.md5, "actual_size": got.actual_size,
                 "size": got.virtual_size, "format": got.format}
        bs.records.put(target, cmd.url, redact(cmd.url), facts)
    return bs.capacity(ImageReply(**facts))


@routes.sync(f"{P}/download/progress", quiet=True)
def download_progress(bs: BackupStorage, cmd: ProgressCmd) -> ProgressReply:
    """The latest progress of a download by ``imageUuid``."""
    return bs.board.reply(cmd.image_uuid)


@routes.sync(f"{P}/delete")
def delete(bs: BackupStorage, cmd: DeleteCmd) -> CapacityReply:
    """Delete an image (a missing one is success)."""
    target = bs.resolve("installUrl", cmd.install_url)
    with bs.locks.hold(f"image:{target}"):
        bs.store().delete(target)
        bs.records.remove(target)
    return bs.capacity(CapacityReply())


@routes.sync(f"{P}/getimagesize")
def get_image_size(bs: BackupStorage, cmd: GetImageSizeCmd) -> SizeReply:
    """Virtual and actual size of a stored image."""
    path = bs.resolve("installPath", cmd.install_path)
    try:
        facts = imagefile.inspect(bs.store().image(path), str(path))
    except StoreError as exc:
        raise AgentError(f"installPath: {exc}") from None
    return SizeReply(size=facts.virtual_size, actual_size=path.stat().st_size)


@routes.sync(f"{P}/gethash")
def get_hash(bs: BackupStorage, cmd: GetHashCmd) -> HashReply:
    """md5 of a stored image (read in full: as long as the disk needs)."""
    path = bs.resolve("path", cmd.path)
    try:
        return HashReply(hash=bs.store().md5(path))
    except StoreError as exc:
        raise AgentError(f"path: {exc}") from None


@routes.sync(f"{P}/sshkey")
def sshkey(bs: BackupStorage, cmd: EmptyCommand) -> SshKeyReply:
    """The agent's ssh public key: authorize it on hosts that serve sftp:// URLs."""
    return SshKeyReply(ssh_key=bs.ssh.public_key())


@routes.sync(f"{P}/authorizekey")
def authorize_key(bs: BackupStorage, cmd: AuthorizeKeyCmd) -> AuthorizeKeyReply:
    """Let the holder of ``publicKey`` (a KVM host's kvmagent) log in to pull and
    push images: added to ``--authorized-keys`` once; repeating it changes nothing."""
    added = authorize_key_file(bs.cfg.authorized_keys, cmd.public_key)
    if added:
        log.info("authorized ssh key %s in %s", cmd.public_key.split()[-1],
                 bs.cfg.authorized_keys)
    return AuthorizeKeyReply(added=added)


@routes.sync(f"{P}/garbage")
def garbage(bs: BackupStorage, cmd: GarbageCmd) -> GarbageReply:
    """Files under the root that none of ``installPaths`` owns (downloads in flight
    excepted); with ``remove``, they are deleted."""
    s = bs.store()
    found = s.garbage(cmd.install_paths, frozenset(bs.downloader().in_flight))
    removed = []
    if cmd.remove:
        for path in found:
            with bs.locks.hold(f"image:{path}"):
                if s.delete(path):
                    bs.records.remove(path)
                    removed.append(str(path))
    return bs.capacity(GarbageReply(garbage=[str(p) for p in found], removed=removed))
