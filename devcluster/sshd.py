"""sshd inside a simulated host, so agents can copy to it over ssh as to a real host
(local storage volume migration) and Ansible can deploy to it.

Everything sshd needs is in ``<host dir>/sshd``: its config, its host key and the
``authorized_keys`` of root. It listens on the host's mgmt IP only, inside the host's
network namespace, and is a daemon of the host: ``host.stop()`` stops it. Root logs in
by key only.
"""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from agentlib import shell, ssh
from devcluster import procs
from devcluster.simhost import SimHost

SSHD = "/usr/sbin/sshd"
SSH_PORT = 22


def sshd_dir(host: SimHost) -> Path:
    return host.dir / "sshd"


def authorized_keys(host: SimHost) -> Path:
    return sshd_dir(host) / "authorized_keys"


def start_sshd(host: SimHost, port: int = SSH_PORT) -> procs.Proc:
    """Run sshd in ``host`` on ``<mgmt ip>:port`` until it accepts connections."""
    conf_dir = sshd_dir(host)
    conf_dir.mkdir(parents=True, exist_ok=True)
    host_key = conf_dir / "ssh_host_ed25519_key"
    if not host_key.exists():
        shell.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sshd@{host.name}",
                   "-f", host_key])
    keys = authorized_keys(host)
    keys.touch(mode=0o600)
    config = conf_dir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        f"ListenAddress {host.mgmt_address}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {keys}",
        "PidFile none",
        "UsePAM no",
        "StrictModes no",  # the host dir's owner and modes are the test run's, not root's
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "Subsystem sftp internal-sftp",  # scp speaks SFTP
        "",
    ]))
    host.run(["mkdir", "-p", "-m", "0755", "/run/sshd"])  # privilege separation dir
    host.run([SSHD, "-t", "-f", str(config)])  # a config error fails here, in its words
    proc = host.spawn("sshd", [SSHD, "-D", "-e", "-f", str(config)],
                      host.dir / "log" / "sshd.log")
    procs.wait_for(lambda: _accepts(host.mgmt_address, port), 10, f"sshd in {host.name}",
                   watch=[proc])
    return proc


def authorize(host: SimHost, public_key: str) -> None:
    """Let the holder of ``public_key`` (one ``ssh-ed25519 AAAA... comment`` line) log in
    to ``host`` as root."""
    line = public_key.strip()
    if not line or "\n" in line:
        raise ValueError(f"not one public key line: {public_key!r}")
    ssh.authorize_key(authorized_keys(host), line)


def authorize_agent(kvmagent_url: str, host: SimHost) -> str:
    """Authorize the ssh identity of the kvmagent at ``kvmagent_url`` on ``host`` (as the
    coordinator distributes keys); returns that public key."""
    reply = requests.post(kvmagent_url + "/localstorage/sshkey", json={}, timeout=30).json()
    if not reply.get("success"):
        raise RuntimeError(f"kvmagent at {kvmagent_url}: no ssh key: {reply.get('error')}")
    authorize(host, reply["publicKey"])
    return reply["publicKey"]


def _accepts(ip: str, port: int) -> bool:
    with socket.create_connection((ip, port), timeout=1):
        return True
