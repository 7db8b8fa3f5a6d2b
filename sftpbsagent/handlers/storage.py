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
from pathlib import Path

from agentlib import storageroot
from agentlib.agent import Agent
from agentlib.errors import AgentError, BadRequest
from agentlib.identity import Identity
from agentlib.models import AuthorizeKeyCmd, AuthorizeKeyReply, EmptyCommand
from agentlib.progress import ProgressBoard, ProgressReply
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

def register(agent: Agent, cfg: SftpBsAgentConfig) -> None:
    identity = Identity(cfg.data_dir)
    records = ImageRecords(Path(cfg.data_dir) / "images.json")
    ssh = SshIdentity(Path(cfg.data_dir) / "ssh", "zfleet-sftpbsagent")
    board = ProgressBoard(agent.reporter)
    downloaders: dict[str, Downloader] = {}
    agent.reporter.url = identity.get("sendCommandUrl")  # reports survive a restart

    def allowed(field: str, root: str) -> None:
        try:
            storageroot.allowed_root(root, cfg.storage_roots, cfg.data_dir)
        except ValueError as exc:
            raise BadRequest(f"{field}: {exc}") from None

    def store() -> ImageStore:
        root = identity.get("storagePath")
        if root is None:
            raise AgentError(f"this backup storage is not connected yet: {P}/connect first")
        try:  # kept by an older agent, or --storage-roots changed since
            allowed("storagePath", root)
        except BadRequest as exc:
            raise AgentError(f"the connected {exc}: {P}/connect another") from None
        return ImageStore(root)

    def downloader() -> Downloader:
        """One per root, so garbage sees every download in flight there."""
        s = store()
        if str(s.root) not in downloaders:  # setdefault: two first callers get the same
            downloaders.setdefault(str(s.root), Downloader(s, ssh, cfg.file_url_roots,
                                                           cfg.read_timeout))
        return downloaders[str(s.root)]

    def resolve(field: str, path: str) -> Path:
        try:
            return store().resolve(path)
        except StoreError as exc:
            raise AgentError(f"{field}: {exc}") from None

    def capacity(reply: CapacityReply) -> CapacityReply:
        reply.total_capacity, reply.available_capacity = store().capacity()
        return reply

    @agent.sync(f"{P}/connect")
    def connect(cmd: ConnectCmd) -> PingReply:
        """Serve images under ``storagePath`` (created if missing, must be writable)."""
        allowed("storagePath", cmd.storage_path)
        try:
            ImageStore(cmd.storage_path).init()
        except StoreError as exc:
            raise AgentError(f"storagePath: {exc}") from None
        identity.update(storagePath=os.path.normpath(cmd.storage_path), uuid=cmd.uuid)
        if cmd.send_command_url:
            identity.update(sendCommandUrl=cmd.send_command_url)
            agent.reporter.url = cmd.send_command_url
        return ping(cmd)

    @agent.sync(f"{P}/ping", quiet=True)
    def ping(cmd: EmptyCommand) -> PingReply:
        """The storage this agent serves (uuid, root) and its capacity."""
        reply = PingReply(uuid=identity.get("uuid"), storage_path=identity.get("storagePath"))
        return capacity(reply) if reply.storage_path else reply

    @agent.async_(f"{P}/download", long=True)
    def download(cmd: DownloadCmd, task: Task) -> ImageReply:
        """Fetch an http/https/file/sftp URL to ``installPath``: streamed, md5-summed,
        inspected with qemu-img, renamed into place read-only. Cancellable; a failure
        leaves nothing behind. Repeating a finished download answers the same facts."""
        d = downloader()
        check_url(cmd.url, cfg.file_url_roots)
        target = resolve("installPath", cmd.install_path)
        with agent.locks.hold(f"image:{target}"):
            known = records.get(target)
            if known is not None and target.is_file():
                if known["urlDigest"] != digest(cmd.url):
                    raise AgentError(f"installPath: {target} already holds an image from "
                                     f"{known['urlShown']}, not {redact(cmd.url)}")
                return capacity(ImageReply(**known["facts"]))
            progress = board.start(cmd.image_uuid or str(target), None, task_uuid=task.uuid,
                                   every=cfg.progress_seconds)
            got = d.download(cmd.url, target, progress, task.check_cancelled)
            facts = {"md5_sum": got.md5, "actual_size": got.actual_size,
                     "size": got.virtual_size, "format": got.format}
            records.put(target, cmd.url, redact(cmd.url), facts)
        return capacity(ImageReply(**facts))

    @agent.sync(f"{P}/download/progress", quiet=True)
    def download_progress(cmd: ProgressCmd) -> ProgressReply:
        """The latest progress of a download by ``imageUuid``."""
        return board.reply(cmd.image_uuid)

    @agent.sync(f"{P}/delete")
    def delete(cmd: DeleteCmd) -> CapacityReply:
        """Delete an image (a missing one is success)."""
        target = resolve("installUrl", cmd.install_url)
        with agent.locks.hold(f"image:{target}"):
            store().delete(target)
            records.remove(target)
        return capacity(CapacityReply())

    @agent.sync(f"{P}/getimagesize")
    def get_image_size(cmd: GetImageSizeCmd) -> SizeReply:
        """Virtual and actual size of a stored image."""
        path = resolve("installPath", cmd.install_path)
        try:
            facts = imagefile.inspect(store().image(path), str(path))
        except StoreError as exc:
            raise AgentError(f"installPath: {exc}") from None
        return SizeReply(size=facts.virtual_size, actual_size=path.stat().st_size)

    @agent.sync(f"{P}/gethash")
    def get_hash(cmd: GetHashCmd) -> HashReply:
        """md5 of a stored image (read in full: as long as the disk needs)."""
        path = resolve("path", cmd.path)
        try:
            return HashReply(hash=store().md5(path))
        except StoreError as exc:
            raise AgentError(f"path: {exc}") from None

    @agent.sync(f"{P}/sshkey")
    def sshkey(cmd: EmptyCommand) -> SshKeyReply:
        """The agent's ssh public key: authorize it on hosts that serve sftp:// URLs."""
        return SshKeyReply(ssh_key=ssh.public_key())

    @agent.sync(f"{P}/authorizekey")
    def authorize_key(cmd: AuthorizeKeyCmd) -> AuthorizeKeyReply:
        """Let the holder of ``publicKey`` (a KVM host's kvmagent) log in to pull and
        push images: added to ``--authorized-keys`` once; repeating it changes nothing."""
        added = authorize_key_file(cfg.authorized_keys, cmd.public_key)
        if added:
            log.info("authorized ssh key %s in %s", cmd.public_key.split()[-1],
                     cfg.authorized_keys)
        return AuthorizeKeyReply(added=added)

    @agent.sync(f"{P}/garbage")
    def garbage(cmd: GarbageCmd) -> GarbageReply:
        """Files under the root that none of ``installPaths`` owns (downloads in flight
        excepted); with ``remove``, they are deleted."""
        s = store()
        found = s.garbage(cmd.install_paths, frozenset(downloader().in_flight))
        removed = []
        if cmd.remove:
            for path in found:
                with agent.locks.hold(f"image:{path}"):
                    if s.delete(path):
                        records.remove(path)
                        removed.append(str(path))
        return capacity(GarbageReply(garbage=[str(p) for p in found], removed=removed))
