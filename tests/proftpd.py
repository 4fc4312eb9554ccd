"""ProFTPD with mod_sftp as a second real SFTP server for the tests.

:class:`ProFTPD` runs the system's ``/usr/sbin/proftpd`` in the
foreground (``-n``) with a configuration of its own in a scratch
directory: a free port on 127.0.0.1 speaking SSH only (``SFTPEngine on``,
no FTP listener), host keys made by ``ssh-keygen``, one virtual user
(``AuthUserFile``) mapped to the current uid and gid whose home is the
served tree, public-key login for a throwaway key, logs, pid and
scoreboard files in the scratch directory.  It never reads or changes the
system's ProFTPD configuration or service.

Two quirks of mod_sftp 1.3.8 shape the files written here: the
authorized key must be in RFC 4716 form (``ssh-keygen -e``; the OpenSSH
one-line form is read but every signature is refused), and an
``AuthUserFile`` must not be world-readable.

The session fixture :func:`proftpd` skips outside CI when proftpd or
mod_sftp is missing and fails under ``CI=true`` (see
:func:`tests.conftest.require`).
"""

from __future__ import annotations

import getpass
import grp
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from psftp_shell.devserver import (
    end_process,
    free_port,
    wait_for_port,
    write_client_config,
)
from tests.conftest import require

PROFTPD = "/usr/sbin/proftpd"
MODULE_DIR = "/usr/lib/proftpd"
MOD_SFTP = os.path.join(MODULE_DIR, "mod_sftp.so")


def proftpd_available() -> bool:
    """Return whether proftpd and its mod_sftp module are installed."""
    return os.access(PROFTPD, os.X_OK) and os.path.isfile(MOD_SFTP)


def _keygen(path: Path, kind: str) -> None:
    """Make an unencrypted key pair with ssh-keygen (PEM for ECDSA)."""
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)]
    if kind == "ecdsa":
        args[2:2] = ["-m", "PEM"]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)


def _rfc4716(public_key: Path) -> str:
    """Return *public_key* converted to RFC 4716 form."""
    done = subprocess.run(["ssh-keygen", "-e", "-f", str(public_key)],
                          check=True, capture_output=True, text=True)
    return done.stdout


def _end_group(pgid: int, timeout: float = 3.0) -> None:
    """End the session processes left in proftpd's own process group."""
    deadline = time.monotonic() + timeout
    sig = signal.SIGTERM
    while True:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.05)


def _private(path: Path, text: str) -> None:
    """Write *text* to *path* readable by its owner only."""
    path.write_text(text)
    path.chmod(0o600)


class ProFTPD:
    """A private ProFTPD mod_sftp server on a free loopback port.

    :param workdir: scratch directory for keys, configuration and logs
    :param root: the tree served, the user's home (default
        ``workdir/remote``)
    """

    def __init__(self, workdir: Path, *, root: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.root = Path(root) if root else self.workdir / "remote"
        self.user = getpass.getuser()
        self.group = grp.getgrgid(os.getgid()).gr_name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_key = self.workdir / "proftpd_host_ecdsa_key"
        self.identity = self.workdir / "id_proftpd"
        self.known_hosts = self.workdir / "known_hosts_proftpd"
        self.ssh_config = self.workdir / "ssh_config_proftpd"
        self.config = self.workdir / "proftpd.conf"
        self.log = self.workdir / "proftpd.log"
        self.sftp_log = self.workdir / "sftp.log"

    @property
    def known_hosts_line(self) -> str:
        """The known_hosts line of the server's host key (no newline)."""
        kind, blob = Path(str(self.host_key) + ".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}"

    @property
    def client_key(self) -> Path:
        """The private key that logs in as :attr:`user`."""
        return self.identity

    def _write_keys(self) -> None:
        if not self.host_key.exists():
            _keygen(self.host_key, "ecdsa")
        if not self.identity.exists():
            _keygen(self.identity, "ed25519")
        _private(self.workdir / "authorized_keys",
                 _rfc4716(Path(str(self.identity) + ".pub")))

    def _write_accounts(self) -> None:
        uid, gid = os.getuid(), os.getgid()
        _private(self.workdir / "passwd",
                 f"{self.user}:x:{uid}:{gid}::{self.root}:/bin/sh\n")
        _private(self.workdir / "group", f"{self.group}:x:{gid}:\n")

    def _config_text(self) -> str:
        w = self.workdir
        identity = ""
        if os.geteuid() != 0:   # cannot switch users: stay ourselves
            identity = f"User {self.user}\nGroup {self.group}\n"
        return (
            "ServerType standalone\n"
            'ServerName "psftp-shell tests"\n'
            "DefaultAddress 127.0.0.1\n"
            "SocketBindTight on\n"
            "UseIPv6 off\n"
            f"Port {self.port}\n"
            + identity +
            f"PidFile {w / 'proftpd.pid'}\n"
            f"ScoreboardFile {w / 'proftpd.scoreboard'}\n"
            f"SystemLog {self.log}\n"
            "TransferLog none\n"
            "WtmpLog off\n"
            "DelayEngine off\n"
            "UseReverseDNS off\n"
            "AuthPAM off\n"
            "AuthOrder mod_auth_file.c\n"
            f"AuthUserFile {w / 'passwd'}\n"
            f"AuthGroupFile {w / 'group'}\n"
            "RequireValidShell off\n"
            "RootLogin on\n"
            "UseFtpUsers off\n"
            "AllowOverwrite on\n"
            "AllowStoreRestart on\n"
            "Umask 022\n"
            "MaxInstances 64\n"
            f"ModulePath {MODULE_DIR}\n"
            "<IfModule !mod_sftp.c>\n"
            "  LoadModule mod_sftp.c\n"
            "</IfModule>\n"
            "SFTPEngine on\n"
            f"SFTPLog {self.sftp_log}\n"
            f"SFTPHostKey {self.host_key}\n"
            "SFTPAuthMethods publickey\n"
            f"SFTPAuthorizedUserKeys file:{w / 'authorized_keys'}\n"
            "SFTPCompression off\n")

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_keys()
        self._write_accounts()
        self.config.write_text(self._config_text())
        self.known_hosts.write_text(self.known_hosts_line + "\n")
        write_client_config(self.ssh_config, self.port, self.user,
                            self.identity, self.known_hosts)

    def start(self, attempts: int = 5) -> None:
        """Start proftpd; retry on another port if the chosen one was taken."""
        for _ in range(attempts):
            self.port = free_port()
            self._write_files()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [PROFTPD, "-n", "-c", str(self.config)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True)
            if wait_for_port(self.port, self.proc):
                return
            self.stop()
        raise RuntimeError(f"proftpd did not start: see {self.log}:\n"
                           + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        """Stop proftpd and every session process it forked."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        end_process(proc)
        _end_group(proc.pid)

    def __enter__(self) -> ProFTPD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def proftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProFTPD]:
    """A private ProFTPD mod_sftp server for the whole test session."""
    require(proftpd_available(), f"{PROFTPD} with mod_sftp")
    server = ProFTPD(tmp_path_factory.mktemp("proftpd"))
    server.start()
    yield server
    server.stop()
