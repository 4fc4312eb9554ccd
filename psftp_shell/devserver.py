"""Throwaway SFTP servers on 127.0.0.1 for the tests, the demo and the bench.

:class:`PrivateSSHD` runs the system's OpenSSH ``sshd`` binary with its own
generated keys and configuration in a scratch directory: it never reads or
touches the system's sshd configuration, its host keys or ``~/.ssh``.  Its
:attr:`~PrivateSSHD.ssh_config` is a client configuration (host alias
``psftp-test``) that both OpenSSH's ``sftp`` and psftp-shell can use with
``-F``.

:class:`AsyncSSHServer` is the fallback where no ``sshd`` is installed, and
the place for fault injection in tests: asyncssh's own SFTP server, chrooted
into a directory.

``python -m psftp_shell.devserver demo`` is what ``make demo`` runs.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncssh

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
HOST_ALIAS = "psftp-test"


def sshd_available() -> bool:
    """Return whether an OpenSSH sshd binary is installed."""
    return os.access(SSHD, os.X_OK)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_key(path: Path, key: asyncssh.SSHKey) -> None:
    path.write_bytes(key.export_private_key("openssh"))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None,
                   timeout: float = 10.0) -> bool:
    """Wait until *port* accepts connections; False if *proc* died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def write_client_config(path: Path, port: int, user: str, identity: Path,
                         known_hosts: Path) -> None:
    """Write an ssh_config with Host :data:`HOST_ALIAS` for a server."""
    path.write_text(
        f"Host {HOST_ALIAS}\n"
        "  HostName 127.0.0.1\n"
        f"  Port {port}\n"
        f"  User {user}\n"
        f"  IdentityFile {identity}\n"
        "  IdentitiesOnly yes\n"
        "  IdentityAgent none\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n")


class PrivateSSHD:
    """A private OpenSSH sshd on a free loopback port.

    :param workdir: scratch directory for keys, configs and logs
    :param root: the SFTP start directory (``internal-sftp -d``)
    :param extra_config: more sshd_config lines, appended verbatim
    :param subsystem: the sftp Subsystem command (default
        ``internal-sftp -d root``); another server program is run from
        *root* (``cd root && exec program``)
    """

    def __init__(self, workdir: Path, *, root: Path | None = None,
                 extra_config: str = "", subsystem: str | None = None
                 ) -> None:
        self.workdir = Path(workdir)
        self.root = Path(root) if root else self.workdir / "remote"
        self.extra_config = extra_config
        self.subsystem = subsystem
        self.user = getpass.getuser()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.identity = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.ssh_config = self.workdir / "ssh_config"
        self.sshd_config = self.workdir / "sshd_config"
        self.log = self.workdir / "sshd.log"

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            _write_key(self.host_key,
                       asyncssh.generate_private_key("ssh-ed25519"))
            _write_key(self.identity,
                       asyncssh.generate_private_key("ssh-ed25519"))
        shutil.copy(str(self.identity) + ".pub",
                    self.workdir / "authorized_keys")
        self.sshd_config.write_text(
            f"ListenAddress 127.0.0.1\n"
            f"Port {self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.workdir / 'authorized_keys'}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "LogLevel ERROR\n"
            f"Subsystem sftp {self._subsystem_command()}\n"
            + self.extra_config)
        host_pub = Path(str(self.host_key) + ".pub").read_text().split()
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        write_client_config(self.ssh_config, self.port, self.user,
                             self.identity, self.known_hosts)

    def _subsystem_command(self) -> str:
        if self.subsystem is None:
            return f"internal-sftp -d {self.root}"
        return f"cd {shlex.quote(str(self.root))} && exec {self.subsystem}"

    def start(self, attempts: int = 5) -> None:
        """Start sshd; retry on another port if the chosen one was taken."""
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for _ in range(attempts):
            self.port = free_port()
            self._write_files()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(self.sshd_config)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if wait_for_port(self.port, self.proc):
                return
            self.stop()
        raise RuntimeError(f"sshd did not start: see {self.log}:\n"
                           + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        """Stop sshd (its sessions end with it)."""
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None

    def __enter__(self) -> PrivateSSHD:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncSSHServer:
    """asyncssh's SFTP server on a free loopback port, chrooted to *root*.

    Runs in the caller's event loop (:meth:`start`) or in a thread of its
    own (:meth:`start_in_thread`, for the demo).  *sftp_factory* replaces
    the SFTP server class, for fault injection; *passwords* maps user names
    to accepted passwords (otherwise the generated key is the only login).
    :attr:`events` notes, in order, each connection (``"connect"``), its
    first authentication request (``"auth"``), each password it tries
    (``"password"``), its login (``"login"``) and its end (``"closed"``),
    with the connection's number.  *banner* is sent before each login's
    authentication.
    """

    def __init__(self, workdir: Path, *, root: Path | None = None,
                 sftp_factory: Callable[..., Any] | None = None,
                 passwords: dict[str, str] | None = None,
                 allow_pubkey: bool = True, banner: str = "") -> None:
        self.workdir = Path(workdir)
        self.root = Path(root) if root else self.workdir / "remote"
        self.sftp_factory = sftp_factory
        self.passwords = passwords or {}
        self.allow_pubkey = allow_pubkey
        self.banner = banner
        self.user = getpass.getuser()
        self.port = 0
        self.host_key = self.workdir / "asyncssh_host_key"
        self.identity = self.workdir / "id_asyncssh"
        self.known_hosts = self.workdir / "known_hosts_asyncssh"
        self.ssh_config = self.workdir / "ssh_config_asyncssh"
        self.logins: list[str] = []
        self.events: list[tuple[str, int]] = []
        self._server: asyncssh.SSHAcceptor | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    def _make_server(self) -> asyncssh.SSHServer:
        outer = self

        class _Server(asyncssh.SSHServer):
            number = 0
            conn: asyncssh.SSHServerConnection | None = None

            def connection_made(self, conn: asyncssh.SSHServerConnection
                                ) -> None:
                self.conn = conn
                self.number = sum(what == "connect"
                                  for what, _ in outer.events)
                outer.events.append(("connect", self.number))

            def connection_lost(self, exc: Exception | None) -> None:
                outer.events.append(("closed", self.number))

            def begin_auth(self, username: str) -> bool:
                outer.events.append(("auth", self.number))
                if outer.banner and self.conn is not None:
                    self.conn.send_auth_banner(outer.banner)
                return True

            def auth_completed(self) -> None:
                outer.events.append(("login", self.number))

            def password_auth_supported(self) -> bool:
                return bool(outer.passwords)

            def validate_password(self, username: str,
                                  password: str) -> bool:
                outer.events.append(("password", self.number))
                ok = outer.passwords.get(username) == password
                if ok:
                    outer.logins.append(username)
                return ok

            def public_key_auth_supported(self) -> bool:
                return outer.allow_pubkey

        return _Server()

    async def start(self) -> None:
        """Generate keys and listen on a free port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(self.host_key, host_key)
        _write_key(self.identity, user_key)
        root = os.fsencode(self.root)
        factory = self.sftp_factory or asyncssh.SFTPServer

        def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> Any:
            return factory(chan, chroot=root)

        self._server = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                user_key.export_public_key().decode())
            if self.allow_pubkey else None,
            server_factory=self._make_server, sftp_factory=sftp_factory,
            allow_scp=False)
        self.port = self._server.sockets[0].getsockname()[1]
        pub = host_key.export_public_key().decode().split()
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        write_client_config(self.ssh_config, self.port, self.user,
                             self.identity, self.known_hosts)

    async def stop(self) -> None:
        """Stop listening and close every session."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def start_in_thread(self) -> None:
        """Run the server in a daemon thread with its own event loop."""
        self._thread_loop = start_in_thread(self.start, 30)

    def stop_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        loop, self._thread_loop = self._thread_loop, None
        if loop is not None:
            stop_thread(self.stop, loop)


def end_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM *proc*; SIGKILL it if it has not exited after *grace*."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_in_thread(start: Callable[[], Awaitable[None]],
                    timeout: float) -> asyncio.AbstractEventLoop:
    """Run *start* in a new event loop on a daemon thread, then keep the
    loop running; RuntimeError if it has not started after *timeout*."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    if not ready.wait(timeout):
        raise RuntimeError("the server thread did not start")
    return loop


def stop_thread(stop: Callable[[], Coroutine[Any, Any, None]],
                loop: asyncio.AbstractEventLoop) -> None:
    """Run *stop* on a loop from :func:`start_in_thread`, then end it."""
    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def fill_demo_tree(root: Path, big_mib: int = 300) -> None:
    """Fill *root* with a few sample files, one of them *big_mib* MiB."""
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text(
        "A throwaway server made by `make demo`.\n"
        "Try: ls -l, get big.bin, get -r docs, put README.txt copy.txt\n")
    for i in range(1, 6):
        (root / "docs" / f"note{i}.txt").write_text(f"note {i}\n" * 100)
    block = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as out:
        for i in range(big_mib):
            out.write(block[i % 997:] + block[:i % 997])


def demo(argv: list[str]) -> int:
    """Start a throwaway server, open ``psftp-shell -n 4`` on it, clean up."""
    workdir = Path(tempfile.mkdtemp(prefix="psftp-demo-"))
    server: PrivateSSHD | AsyncSSHServer | None = None
    try:
        root = workdir / "remote"
        root.mkdir()
        print(f"Filling {root} with sample files ...", flush=True)
        fill_demo_tree(root)
        if sshd_available():
            server = PrivateSSHD(workdir, root=root)
            server.start()
            kind = "OpenSSH sshd"
        else:
            server = AsyncSSHServer(workdir, root=root)
            server.start_in_thread()
            kind = "asyncssh's SFTP server"
        print(f"Started {kind} on 127.0.0.1:{server.port}; "
              "leave the shell with 'quit' to stop it.", flush=True)
        cmd = [sys.executable, "-m", "psftp_shell", "-n", "4",
               "-F", str(server.ssh_config), *argv, HOST_ALIAS]
        return subprocess.call(cmd)
    finally:
        if isinstance(server, PrivateSSHD):
            server.stop()
        elif server is not None:
            server.stop_thread()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["demo"]:
        sys.exit(demo(sys.argv[2:]))
    print("usage: python -m psftp_shell.devserver demo [psftp-shell options]",
          file=sys.stderr)
    sys.exit(1)
