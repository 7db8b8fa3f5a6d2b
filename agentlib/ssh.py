"""An agent's ssh identity and its ssh/scp client, for copying files to and from other
hosts (kvmagent: volume migration, image pulls; sftpbsagent: sftp:// downloads).

The key pair is made on first use under the agent's data dir; the coordinator reads
the public key (e.g. ``/localstorage/sshkey``) and authorizes it on the other hosts, as
ZStack distributes its own key. ssh and scp run from argv lists with every option
given (``-F none``: no user or system config decides anything), in batch mode: a
missing key or a prompt fails at once instead of hanging the agent.

A remote command is a shell string on the other host whatever one does, so it is only
ever built with :func:`shlex.join` from an argv list of validated values.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agentlib import shell
from agentlib.errors import AgentError

KEY_NAME = "id_ed25519"
CONNECT_TIMEOUT = 10
_KEYGEN_LOCK = threading.Lock()
"""One for all identities: two handlers of an agent share a key directory."""


class SshError(AgentError):
    """ssh or scp failed; the message names the host and carries their stderr."""


def authorize_key(authorized_keys: Path, public_key: str) -> bool:
    """Add ``public_key`` (one ``type base64 [comment]`` line) to an authorized_keys file
    unless a line with the same key is there; False if it was. The file is replaced
    atomically (0600, its directory 0700 if made here)."""
    kind, blob = public_key.split()[:2]
    lines = authorized_keys.read_text().splitlines() if authorized_keys.exists() else []
    if any(line.split()[:2] == [kind, blob] for line in lines if line.strip()):
        return False
    authorized_keys.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=authorized_keys.parent, prefix=".authorized_keys.")
    try:
        with open(fd, "w") as f:
            f.write("".join(f"{line}\n" for line in [*lines, public_key.strip()]))
        Path(tmp).chmod(0o600)
        Path(tmp).replace(authorized_keys)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class SshIdentity:
    """``<dir>/id_ed25519`` (0600) and its ``.pub``, generated on first use."""

    def __init__(self, directory: Path, comment: str = "zfleet-agent"):
        self.dir = Path(directory)
        self.comment = comment
        self.private_key = self.dir / KEY_NAME
        self.known_hosts = self.dir / "known_hosts"

    def ensure(self) -> Path:
        with _KEYGEN_LOCK:
            if not self.private_key.exists():
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                try:
                    shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                               self.comment, "-f", self.private_key])
                except shell.CommandFailed as exc:
                    raise SshError(f"cannot create the agent's ssh key: {exc}") from None
        return self.private_key

    def public_key(self) -> str:
        self.ensure()
        return self.private_key.with_suffix(".pub").read_text().strip()


class Remote:
    """Another host reached over ssh as ``user@ip:port`` with the agent's identity."""

    def __init__(self, identity: SshIdentity, ip: str, port: int = 22, user: str = "root"):
        self.identity = identity
        self.ip = ip
        self.port = port
        self.user = user
        self._control: Path | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.ip}:{self.port}"

    @contextmanager
    def connection(self) -> Iterator[Remote]:
        """Share one connection among the commands and copies made inside (each new one
        costs a key exchange and an authentication); closed on exit. If the agent dies
        meanwhile, the connection closes itself once idle for ``ControlPersist``."""
        control = Path(tempfile.mkdtemp(prefix="zfssh-"))  # short: a unix socket path
        self._control = control / "cm"
        try:
            yield self
        finally:
            shell.run(["ssh", *self.ssh_options(), "-p", str(self.port), "-O", "exit",
                       self._login], timeout=10, check=False)
            self._control = None
            shutil.rmtree(control, ignore_errors=True)

    def run(self, argv: list[str | Path], timeout: float | None = 60.0,
            check: bool = True) -> shell.Result:
        """Run ``argv`` on the remote host (quoted for its login shell)."""
        return self.run_many([argv], timeout, check)

    def run_many(self, argvs: list[list[str | Path]], timeout: float | None = 60.0,
                 check: bool = True) -> shell.Result:
        """Run the commands one after the other in one session, stopping at a failure."""
        line = " && ".join(shlex.join(str(a) for a in argv) for argv in argvs)
        ssh = ["ssh", *self.ssh_options(), "-p", str(self.port), self._login, "--", line]
        return self._run(ssh, f"`{line}`", timeout, check)

    def upload(self, src: Path, dst: str) -> None:
        """Copy the local file ``src`` to ``dst`` there, keeping mode and times (scp over
        SFTP: the destination path reaches no remote shell)."""
        scp = ["scp", "-s", "-p", "-q", *self.ssh_options(), "-P", str(self.port), str(src),
               f"{self._login}:{dst}"]
        self._run(scp, f"copying {src} to {dst}", None, True)

    def copy_to(self, path: str, out: int, tick: Callable[[], None],
                interval: float = 0.2) -> None:
        """Copy the remote file ``path`` into the open file descriptor ``out``: ``cat``
        there, and ssh's stdout is ``out`` itself, so the bytes never pass through this
        process (as fast as ``scp``). ``tick`` runs every ``interval`` seconds while it
        copies (progress, cancellation); if it raises, the copy stops."""
        line = shlex.join(["cat", "--", path])
        argv = ["ssh", *self.ssh_options(), "-p", str(self.port), self._login, "--", line]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            try:
                while True:
                    try:
                        proc.wait(interval)
                        break
                    except subprocess.TimeoutExpired:
                        tick()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if proc.returncode != 0:
                err.seek(0)
                text = err.read().decode(errors="replace").strip()[-2000:]
                raise SshError(f"reading {path} on {self} failed (exit code "
                               f"{proc.returncode})" + (f": {text}" if text else ""))

    @property
    def _login(self) -> str:
        return f"{self.user}@{self.ip}"

    def ssh_options(self) -> list[str]:
        key = self.identity.ensure()
        shared = ["-o", "ControlMaster=auto", "-o", f"ControlPath={self._control}",
                  "-o", "ControlPersist=30"] if self._control else []
        return ["-F", "none", "-i", str(key), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                "-o", f"UserKnownHostsFile={self.identity.known_hosts}",
                "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3", *shared]

    def _run(self, argv: list[str], what: str, timeout: float | None,
             check: bool) -> shell.Result:
        """``what`` names the work in errors: the options are the same every time."""
        try:
            return shell.run(argv, timeout=timeout, check=check)
        except shell.CommandFailed as exc:
            res = exc.result
            detail = "timed out" if res.rc == -1 and timeout else f"exit code {res.rc}"
            err = (res.stderr or res.stdout).strip()[-2000:]
            raise SshError(f"{what} on {self} failed ({detail})" + (f": {err}" if err else "")
                           ) from None
