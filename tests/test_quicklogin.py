"""Fewer round trips at login: the requests sent, against the real sshd.

What goes on the wire is recorded at asyncssh's ``send_userauth_request``
(the one place every authentication request passes) and at the SFTP
client's send and VERSION read; the servers are the private sshd and
sftp-server over pipes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.connection import SSHClientConnection

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer, PrivateSSHD
from psftp_shell.sftp import request_core as sftpcore
from psftp_shell.sftp.first_questions import FirstQuestions, has_limits
from psftp_shell.sftp.wire import FXP_EXTENDED, FXP_INIT, FXP_REALPATH
from psftp_shell.ssh import quicklogin
from psftp_shell.ssh.asyncssh_private import PrivateUse, digest
from psftp_shell.ssh.attempt import Client
from psftp_shell.ssh.connect import ConnectError, Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import PipeTransport, SSHTransport
from tests.prompts import Scripted, log_in

pytestmark = pytest.mark.usefixtures("clean_ssh_env")



class Requests(list[tuple[bytes, bool]]):
    """Every USERAUTH_REQUEST: its method and whether it is signed; and
    for each connection, whether the server had accepted the
    "ssh-userauth" service when authentication began."""

    accepted: list[bool]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Requests:
    """The USERAUTH_REQUESTs of the test's connections."""
    record = Requests()
    record.accepted = []
    original = SSHClientConnection.send_userauth_request
    begin = Client.begin_auth

    async def spy(self: SSHClientConnection, method: bytes, *args: bytes,
                  key: Any = None, trivial: bool = True) -> None:
        record.append((method, key is not None))
        await original(self, method, *args, key=key, trivial=trivial)

    def begins(self: Client, username: str) -> None:
        assert self._conn is not None
        record.accepted.append(self._conn._next_service is None)
        begin(self, username)

    monkeypatch.setattr(SSHClientConnection, "send_userauth_request", spy)
    monkeypatch.setattr(Client, "begin_auth", begins)
    return record


def config_with(sshd: PrivateSSHD, path: Path, *identities: Path,
                extra: str = "") -> Path:
    """The sshd's client config with other identity files."""
    lines = [line for line in sshd.ssh_config.read_text().splitlines()
             if not line.strip().startswith("IdentityFile")]
    lines += [f"  IdentityFile {p}" for p in identities]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.mark.sshd
async def test_plain_key_logs_in_with_one_request(sshd: PrivateSSHD,
                                                  sent: Requests) -> None:
    await log_in(sshd.ssh_config)
    # no "none" probe, no "would you take this key?" question
    assert sent == [(b"publickey", True)]
    # and it began right behind the service request, before the accept
    assert sent.accepted == [False]


async def test_other_servers_are_asked_after_the_accept(
        asyncssh_server: AsyncSSHServer, sent: Requests) -> None:
    await log_in(asyncssh_server.ssh_config)
    assert sent == [(b"publickey", True)]
    assert sent.accepted == [True]


@pytest.mark.sshd
async def test_refused_plain_key_moves_on_to_the_next(
        sshd: PrivateSSHD, tmp_path: Path, sent: Requests) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    unused = tmp_path / "id_other"
    other.write_private_key(str(unused))
    unused.chmod(0o600)
    config = config_with(sshd, tmp_path / "cfg", unused, sshd.identity)
    await log_in(config)
    assert sent == [(b"publickey", True), (b"publickey", True)]


@pytest.mark.sshd
async def test_encrypted_key_is_asked_about_before_its_passphrase(
        sshd: PrivateSSHD, tmp_path: Path, sent: Requests) -> None:
    key = asyncssh.read_private_key(str(sshd.identity))
    path = tmp_path / "id_locked"
    path.write_bytes(key.export_private_key("openssh", "pass phrase"))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    other = asyncssh.generate_private_key("ssh-ed25519")
    refused = tmp_path / "id_refused"
    refused.write_bytes(other.export_private_key("openssh", "other"))
    other.write_public_key(str(refused) + ".pub")
    config = config_with(sshd, tmp_path / "cfg", refused, path)
    prompter = Scripted("pass phrase")
    await log_in(config, prompter=prompter)
    # the refused key is only offered (no passphrase asked for it); the
    # accepted one is offered, then signed once its passphrase is known
    assert sent == [(b"publickey", False), (b"publickey", False),
                    (b"publickey", True)]
    assert prompter.asked == [f"Enter passphrase for key '{path}': "]


@pytest.mark.sshd
async def test_other_method_first_keeps_the_probe(sshd: PrivateSSHD,
                                                  tmp_path: Path,
                                                  sent: Requests) -> None:
    config = config_with(
        sshd, tmp_path / "cfg", sshd.identity,
        extra="  PreferredAuthentications keyboard-interactive,publickey\n")
    await log_in(config)
    assert sent[0] == (b"none", False)
    assert sent[-1] == (b"publickey", True)
    # the probe went early, before the service was accepted
    assert sent.accepted == [False]


@pytest.mark.sshd
async def test_no_key_at_all_starts_with_the_probe(sshd: PrivateSSHD,
                                                   tmp_path: Path,
                                                   sent: Requests) -> None:
    config = config_with(sshd, tmp_path / "cfg",
                         extra="  PasswordAuthentication no\n"
                               "  KbdInteractiveAuthentication no\n")
    with pytest.raises(ConnectError):   # nothing can log in
        await log_in(config)
    # (a second "none" is the probe that words the error, as ssh's)
    assert sent[0] == (b"none", False)
    assert all(method == b"none" for method, _ in sent)


@pytest.mark.sshd
async def test_agent_key_is_asked_about_first(
        sshd: PrivateSSHD, tmp_path: Path, sent: Requests,
        agent_with_key: Path) -> None:
    """An agent may want the user's consent to sign: ask the server
    first, as ssh does."""
    config = tmp_path / "cfg"
    config.write_text("".join(
        line for line in sshd.ssh_config.read_text().splitlines(True)
        if not line.strip().startswith("Identit")))
    await log_in(config)
    assert sent == [(b"publickey", False), (b"publickey", True)]


def test_plain_means_in_memory_only(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    local = asyncssh.load_keypairs([key])[0]
    assert quicklogin.plain(local)
    from psftp_shell.ssh.identities import LazyKeyPair

    async def load(path: str) -> None:
        return None
    lazy = LazyKeyPair(key.convert_to_public(), "x", load)
    assert not quicklogin.plain(lazy)


def test_has_limits() -> None:
    assert has_limits("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10")
    assert has_limits("SSH-2.0-OpenSSH_8.5")
    assert has_limits("SSH-2.0-OpenSSH_10.0")
    assert not has_limits("SSH-2.0-OpenSSH_8.4p1")
    assert not has_limits("SSH-2.0-AsyncSSH_2.24.1")
    assert not has_limits("")


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What an SFTP client sends, and when it has read VERSION."""
    events: list[str] = []
    names = {FXP_INIT: "INIT", FXP_EXTENDED: "EXTENDED",
             FXP_REALPATH: "REALPATH"}
    send = sftpcore.SFTPCore._send
    read = sftpcore.SFTPCore._read_version

    def spy_send(self: sftpcore.SFTPCore, data: bytes) -> None:
        events.append(names.get(data[4], str(data[4])))
        send(self, data)

    async def spy_read(self: sftpcore.SFTPCore) -> bytes:
        body = await read(self)
        events.append("VERSION read")
        return body

    monkeypatch.setattr(sftpcore.SFTPCore, "_send", spy_send)
    monkeypatch.setattr(sftpcore.SFTPCore, "_read_version", spy_read)
    return events


@pytest.mark.sshd
async def test_limits_and_start_dir_ride_with_init(sshd: PrivateSSHD,
                                                   wire: list[str]) -> None:
    target = SSHTarget(host=HOST_ALIAS, config_file=str(sshd.ssh_config),
                       batch_mode=True)
    transport = SSHTransport(Connector(target, BatchPrompter()))
    first = FirstQuestions()
    try:
        client = await transport.open_client(ahead=first.ask)
        assert wire == ["INIT", "EXTENDED", "REALPATH", "VERSION read"]
        assert first.limits is not None and first.cwd is not None
        limits = await first.limits
        assert limits.max_read_len > 0
        wire.clear()
        assert await first.cwd == await client.realpath(".")
        assert wire == ["REALPATH"]     # the early answers were kept
    finally:
        first.drop()
        await transport.close()


async def test_nothing_early_over_pipes(sftp_server_bin: str,
                                        wire: list[str]) -> None:
    transport = PipeTransport([sftp_server_bin])
    first = FirstQuestions()
    try:
        await transport.open_client(ahead=first.ask)
        assert wire == ["INIT", "VERSION read"]
        assert first.limits is None and first.cwd is None
    finally:
        await transport.close()


# ------------------------------------------- asyncssh's internals change

@pytest.fixture
def public_path() -> Any:
    """asyncssh as it is, as if its internals had changed under us."""
    quicklogin.uninstall()
    yield
    quicklogin.install()


def test_shortcuts_are_on_with_the_reviewed_asyncssh() -> None:
    """The locked asyncssh is a reviewed one, and its source digest is
    the one reviewed (a newer asyncssh must match a reviewed digest)."""
    version = asyncssh.__version__
    assert quicklogin.problem() is None, quicklogin.problem()
    assert quicklogin.active()
    found = digest(quicklogin._relies_on())
    if version in quicklogin.HOOKS.reviewed:
        assert found == quicklogin.HOOKS.reviewed[version]
    else:
        assert found in quicklogin.HOOKS.reviewed.values()


def test_changed_internals_turn_the_shortcuts_off() -> None:
    """An unreviewed release with other source, or without a function
    the shortcuts use, is refused with a reason for the debug log."""
    changed = PrivateUse("t", quicklogin._relies_on, {"0.0": "0" * 16})
    assert "changed the internals" in str(changed.problem("9.9"))

    def gone() -> list[object]:
        raise AttributeError("_send_signed_request")

    lacking = PrivateUse("t", gone, {"9.9": "x"})
    assert "lacks what it uses" in str(lacking.problem("9.9"))
    same = PrivateUse("t", quicklogin._relies_on,
                      {"0.0": digest(quicklogin._relies_on())})
    assert same.problem("9.9") is None


@pytest.mark.sshd
async def test_public_path_logs_in_as_ssh_does(sshd: PrivateSSHD,
                                               sent: Requests,
                                               public_path: None) -> None:
    """Without the shortcuts: the "none" probe, the question, the
    signature, and authentication only after the service is accepted."""
    assert not quicklogin.active()
    await log_in(sshd.ssh_config)
    assert sent == [(b"none", False), (b"publickey", False),
                    (b"publickey", True)]
    assert sent.accepted == [True]


@pytest.mark.sshd
def test_public_path_whole_process(sshd: PrivateSSHD, tmp_path: Path,
                                   remote_dir: Path) -> None:
    """A whole -n 4 run with the shortcuts refused copies as usual."""
    (remote_dir / "f").write_bytes(b"x" * 300_000)
    code = ("import sys\n"
            "from psftp_shell.ssh import quicklogin\n"
            "quicklogin.HOOKS.reviewed.clear()\n"
            "quicklogin.HOOKS.reviewed['0'] = '0' * 16\n"
            "from psftp_shell.frontend.cli import main\n"
            "rc = main(sys.argv)\n"
            "assert not quicklogin.active()\n"
            "sys.exit(rc)\n")
    done = subprocess.run(
        [sys.executable, "-c", code, "-q", "-n", "4", "-F",
         str(sshd.ssh_config), f"{HOST_ALIAS}:{remote_dir}/f", "."],
        cwd=tmp_path, capture_output=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    assert (tmp_path / "f").read_bytes() == (remote_dir / "f").read_bytes()
