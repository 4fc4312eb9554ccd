"""Two more real SFTP servers for the tests: rclone's and Green End's.

:class:`RcloneServer` runs ``rclone serve sftp`` (Go's pkg/sftp, the
engine of SFTPGo and many cloud gateways) on a free 127.0.0.1 port,
serving one local directory at ``/`` with public-key login for a
throwaway key, an empty rclone configuration of its own, and no
directory cache (``--dir-cache-time 0s``: the tests build trees behind
the server's back, and a cached listing would hide them).

:func:`gesftp_sshd` is the private OpenSSH sshd with the Green End SFTP
server (Debian ``gesftpserver``) as its sftp subsystem, started in the
served directory.

Neither touches a system service or configuration.  The session
fixtures skip outside CI when the program is missing and fail under
``CI=true`` (:func:`tests.conftest.require`).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from psftp_shell.devserver import (
    PrivateSSHD,
    end_process,
    free_port,
    sshd_available,
    wait_for_port,
    write_client_config,
)
from tests.conftest import require

GESFTPSERVER = "/usr/libexec/gesftpserver"


def _keygen(path: Path) -> None:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(path)], check=True, stdin=subprocess.DEVNULL)


class RcloneServer:
    """``rclone serve sftp`` of *root* on a free loopback port."""

    def __init__(self, workdir: Path, *, root: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.root = Path(root) if root else self.workdir / "remote"
        self.user = getpass.getuser()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_key = self.workdir / "rclone_host_key"
        self.identity = self.workdir / "id_rclone"
        self.known_hosts = self.workdir / "known_hosts_rclone"
        self.ssh_config = self.workdir / "ssh_config_rclone"
        self.log = self.workdir / "rclone.log"

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        _keygen(self.host_key)
        _keygen(self.identity)
        (self.workdir / "rclone.conf").write_text("")
        kind, blob = Path(str(self.host_key) + ".pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        write_client_config(self.ssh_config, self.port, self.user,
                            self.identity, self.known_hosts)

    def start(self, attempts: int = 5) -> None:
        """Start rclone; retry on another port if the chosen one was taken."""
        rclone = shutil.which("rclone")
        assert rclone is not None
        for _ in range(attempts):
            self.port = free_port()
            self._write_files()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [rclone, "serve", "sftp", str(self.root),
                     "--addr", f"127.0.0.1:{self.port}",
                     "--key", str(self.host_key),
                     "--authorized-keys", str(self.identity) + ".pub",
                     "--config", str(self.workdir / "rclone.conf"),
                     "--dir-cache-time", "0s"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env={**os.environ, "HOME": str(self.workdir)})
            if wait_for_port(self.port, self.proc):
                return
            self.stop()
        raise RuntimeError(f"rclone did not start: see {self.log}:\n"
                           + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        """Stop rclone (its sessions end with it)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            end_process(proc)


@pytest.fixture(scope="session")
def rclone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneServer]:
    """rclone's SFTP server for the whole test session."""
    require(shutil.which("rclone") is not None, "rclone")
    server = RcloneServer(tmp_path_factory.mktemp("rclone"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gesftp_sshd(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[PrivateSSHD]:
    """The private sshd with the Green End SFTP server as its subsystem."""
    require(sshd_available(), "/usr/sbin/sshd")
    require(os.access(GESFTPSERVER, os.X_OK), GESFTPSERVER)
    server = PrivateSSHD(tmp_path_factory.mktemp("gesftp"),
                         subsystem=GESFTPSERVER)
    server.start()
    yield server
    server.stop()
