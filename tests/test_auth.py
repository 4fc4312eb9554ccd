"""Prompts, cached secrets and authentication, on loopback servers only.

Password logins run against asyncssh's server (never system accounts);
keys and the agent against the private sshd.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer, PrivateSSHD
from psftp_shell.ssh.auth import LogLevel, parse_log_level
from psftp_shell.ssh.connect import ConnectError, Connector, SSHTarget
from psftp_shell.ssh.identities import identity_public_key
from psftp_shell.ssh.prompter import (
    BatchPrompter,
    PromptRefused,
    SecretCache,
    TerminalPrompter,
)
from tests.prompts import PASSWORD, Scripted, log_in

pytestmark = pytest.mark.usefixtures("clean_ssh_env")


# -- SecretCache ----------------------------------------------------------


async def test_secret_cache_asks_once() -> None:
    cache = SecretCache()
    calls = 0

    async def ask() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return f"secret{calls}"

    got = await asyncio.gather(*(cache.get("k", ask) for _ in range(5)))
    assert got == ["secret1"] * 5 and calls == 1
    # a rejected answer is asked again, once, whoever notices first
    again = await asyncio.gather(cache.get("k", ask, reject="secret1"),
                                 cache.get("k", ask, reject="secret1"))
    assert again == ["secret2", "secret2"] and calls == 2
    assert await cache.get("other", ask) == "secret3"


async def test_secret_cache_keeps_no_empty_answer() -> None:
    cache = SecretCache()
    answers = ["", "x"]

    async def ask() -> str:
        return answers.pop(0)

    assert await cache.get("k", ask) == ""
    assert await cache.get("k", ask) == "x"
    cache.forget("k")
    answers.append("y")
    assert await cache.get("k", ask) == "y"


# -- prompters ------------------------------------------------------------


def test_parse_log_level() -> None:
    assert parse_log_level("quiet") is LogLevel.QUIET
    assert parse_log_level("DEBUG") is LogLevel.DEBUG1
    assert parse_log_level("Debug3") is LogLevel.DEBUG3
    with pytest.raises(ValueError):
        parse_log_level("loud")


def test_batch_prompter_refuses() -> None:
    with pytest.raises(PromptRefused):
        BatchPrompter().ask("Password: ", echo=False)


@pytest.fixture
def askpass(tmp_path: Path) -> Path:
    """An SSH_ASKPASS program that records its prompt and answers."""
    script = tmp_path / "askpass.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {tmp_path}/asked\n'
                      'echo "from askpass"\n')
    script.chmod(0o755)
    return script


def test_askpass_without_tty(tmp_path: Path, askpass: Path) -> None:
    env = {"SSH_ASKPASS": str(askpass), "DISPLAY": ":0"}
    prompter = TerminalPrompter(tty=str(tmp_path / "no-tty"), environ=env)
    assert prompter.ask("Password: ", echo=False) == "from askpass"
    assert (tmp_path / "asked").read_text() == "Password: "


def test_askpass_needs_display_unless_forced(tmp_path: Path,
                                             askpass: Path) -> None:
    no_tty = str(tmp_path / "no-tty")
    env = {"SSH_ASKPASS": str(askpass)}
    assert TerminalPrompter(tty=no_tty, environ=env).ask(
        "Password: ", echo=False) == ""
    assert not (tmp_path / "asked").exists()
    forced = {**env, "SSH_ASKPASS_REQUIRE": "force"}
    assert TerminalPrompter(tty="/dev/null", environ=forced).ask(
        "Q? ", echo=True) == "from askpass"
    never = {**env, "DISPLAY": ":0", "SSH_ASKPASS_REQUIRE": "never"}
    assert TerminalPrompter(tty=no_tty, environ=never).ask(
        "Q? ", echo=True) == ""


def test_askpass_failure_is_no_answer(tmp_path: Path) -> None:
    env = {"SSH_ASKPASS": "/bin/false", "DISPLAY": ":0"}
    assert TerminalPrompter(tty=str(tmp_path / "x"), environ=env).ask(
        "Password: ", echo=False) == ""


def test_tty_prompt_hides_the_answer() -> None:
    pexpect = pytest.importorskip("pexpect")
    code = textwrap.dedent("""
        from psftp_shell.ssh.prompter import TerminalPrompter
        p = TerminalPrompter()
        secret = p.ask("Password for test: ", echo=False)
        shown = p.ask("Name: ", echo=True)
        print("GOT", repr(secret), repr(shown))
    """)
    child = pexpect.spawn(sys.executable, ["-c", code], encoding="utf-8",
                          timeout=20, env=dict(os.environ))
    child.expect_exact("\rPassword for test: ")
    child.sendline("hunter2")
    child.expect_exact("\rName: ")
    before_name = child.before
    child.sendline("visible")
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    assert "hunter2" not in before_name      # not echoed
    assert "visible" in output.split("GOT")[0]   # echoed
    assert "GOT 'hunter2' 'visible'" in output


def test_identity_public_key(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    plain = tmp_path / "plain"
    plain.write_bytes(key.export_private_key())
    found = identity_public_key(str(plain))
    assert found is not None and found.public_data == key.public_data
    encrypted = tmp_path / "enc"
    encrypted.write_bytes(key.export_private_key("pkcs8-pem", "pw123"))
    assert identity_public_key(str(encrypted)) is None
    key.write_public_key(str(encrypted) + ".pub")
    found = identity_public_key(str(encrypted))
    assert found is not None and found.public_data == key.public_data
    assert identity_public_key(str(tmp_path / "missing")) is None


@pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                    reason="needs ssh-keygen")
def test_identity_public_key_from_encrypted_openssh_key(tmp_path: Path
                                                        ) -> None:
    path = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw123",
                    "-f", str(path)], check=True)
    expected = asyncssh.read_public_key(str(path) + ".pub")
    os.unlink(str(path) + ".pub")
    found = identity_public_key(str(path))
    assert found is not None and found.public_data == expected.public_data


# -- passwords on asyncssh's server ---------------------------------------


async def run_sftp(args: list[str], *, batch: bool) -> str:
    """Run sftp without blocking the event loop the server runs in.

    Batch mode reads an empty batch from stdin; otherwise there is no
    terminal at all (a new session) and stdin is /dev/null.
    """
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE if batch else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    _, err = await asyncio.wait_for(
        proc.communicate(b"" if batch else None), 60)
    return err.decode()     # CR LF line ends kept


def password_target(server: AsyncSSHServer, *options: str,
                    batch: bool = False) -> SSHTarget:
    return SSHTarget(HOST_ALIAS, config_file=str(server.ssh_config),
                     options=list(options), batch_mode=batch)


async def test_password_asked_once_for_four(password_server: AsyncSSHServer
                                            ) -> None:
    prompter = Scripted(PASSWORD)
    connector = Connector(password_target(
        password_server, "KbdInteractiveAuthentication=no"), prompter)
    conns = await asyncio.gather(*(connector.connect() for _ in range(4)))
    for conn in conns:
        conn.close()
    connector.close()
    user = password_server.user
    assert prompter.asked == [f"{user}@127.0.0.1's password: "]
    assert password_server.logins == [user] * 4


async def test_kbdint_asked_once_for_three(password_server: AsyncSSHServer
                                           ) -> None:
    prompter = Scripted(PASSWORD)
    connector = Connector(password_target(password_server), prompter)
    conns = await asyncio.gather(*(connector.connect() for _ in range(3)))
    for conn in conns:
        conn.close()
    connector.close()
    assert len(prompter.asked) == 1
    assert prompter.asked[0].startswith(f"({password_server.user}@127.0.0.1)")
    assert len(password_server.logins) == 3


class Slow(Scripted):
    """A user who takes *seconds* to answer."""

    def __init__(self, seconds: float, *answers: str) -> None:
        super().__init__(*answers)
        self.seconds = seconds

    def ask(self, prompt: str, *, echo: bool) -> str:
        time.sleep(self.seconds)
        return super().ask(prompt, echo=echo)


@pytest.mark.parametrize("method", ["password", "keyboard-interactive"])
async def test_a_slow_answer_is_not_a_silent_server(
        password_server: AsyncSSHServer, method: str) -> None:
    """The login's bound on a silent server (ServerAliveInterval x
    ServerAliveCountMax, here 1 s) stops while the user is asked."""
    prompter = Slow(2.5, PASSWORD)
    connector = Connector(password_target(
        password_server, "ServerAliveInterval=1", "ServerAliveCountMax=1",
        f"PreferredAuthentications={method}"), prompter)
    conn = await connector.connect()
    conn.close()
    connector.close()
    assert len(prompter.asked) == 1
    assert password_server.logins == [password_server.user]


async def test_wrong_password_three_tries(password_server: AsyncSSHServer
                                          ) -> None:
    prompter = Scripted("bad1", "bad2", "bad3", PASSWORD)
    connector = Connector(password_target(
        password_server, "KbdInteractiveAuthentication=no"), prompter)
    with pytest.raises(ConnectError) as info:
        await connector.connect()
    connector.close()
    assert len(prompter.asked) == 3
    assert prompter.told == ["Permission denied, please try again."] * 2
    assert str(info.value) == (
        f"{password_server.user}@127.0.0.1: Permission denied "
        "(keyboard-interactive,password).\nConnection closed")
    assert password_server.logins == []


async def test_second_try_succeeds_and_is_reused(
        password_server: AsyncSSHServer) -> None:
    prompter = Scripted("bad", PASSWORD)
    connector = Connector(password_target(
        password_server, "KbdInteractiveAuthentication=no"), prompter)
    first = await connector.connect()
    second = await connector.connect()
    first.close()
    second.close()
    connector.close()
    assert len(prompter.asked) == 2
    assert len(password_server.logins) == 2


async def test_no_answers_like_sftp_without_tty(
        password_server: AsyncSSHServer, sftp_bin: str) -> None:
    # with no terminal and no askpass, ssh's prompts read nothing
    theirs = await run_sftp(
        [sftp_bin, "-F", str(password_server.ssh_config), HOST_ALIAS],
        batch=False)
    told = io.StringIO()
    prompter = TerminalPrompter(tty="/nonexistent/tty", environ={},
                                stderr=told)
    connector = Connector(password_target(password_server), prompter)
    with pytest.raises(ConnectError) as info:
        await connector.connect()
    connector.close()
    ours = told.getvalue() + info.value.stderr
    # sftp adds its interactive "Connection closed." notice; drop it
    assert ours == theirs.replace("\rConnection closed.  \n", "")


async def test_batch_mode_never_prompts_like_sftp(
        password_server: AsyncSSHServer, sftp_bin: str) -> None:
    theirs = await run_sftp(
        [sftp_bin, "-F", str(password_server.ssh_config), "-b", "-",
         HOST_ALIAS], batch=True)
    prompter = Scripted(PASSWORD)
    connector = Connector(password_target(password_server, batch=True),
                          prompter)
    with pytest.raises(ConnectError) as info:
        await connector.connect()
    connector.close()
    assert prompter.asked == []
    assert info.value.stderr == theirs


# -- keys on the private sshd ---------------------------------------------


def key_config(sshd: PrivateSSHD, path: Path, *identities: Path) -> Path:
    text = sshd.ssh_config.read_text().replace(
        f"  IdentityFile {sshd.identity}\n",
        "".join(f"  IdentityFile {i}\n" for i in identities))
    path.write_text(text)
    return path


@pytest.fixture
def encrypted_identity(sshd: PrivateSSHD, tmp_path: Path) -> Path:
    """The sshd's accepted key, encrypted with a passphrase."""
    key = asyncssh.read_private_key(str(sshd.identity))
    path = tmp_path / "id_encrypted"
    path.write_bytes(key.export_private_key("pkcs8-pem", "pass phrase"))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return path


@pytest.mark.sshd
async def test_passphrase_asked_once_when_key_is_tried(
        sshd: PrivateSSHD, tmp_path: Path, encrypted_identity: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    unused = tmp_path / "id_unused"
    unused.write_bytes(other.export_private_key("pkcs8-pem", "other"))
    other.write_public_key(str(unused) + ".pub")
    config = key_config(sshd, tmp_path / "cfg", unused, encrypted_identity)
    prompter = Scripted("wrong", "pass phrase")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(config)),
                          prompter)
    conns = await asyncio.gather(*(connector.connect() for _ in range(3)))
    for conn in conns:
        conn.close()
    connector.close()
    # the unused key was offered but never decrypted: no prompt for it
    prompt = f"Enter passphrase for key '{encrypted_identity}': "
    assert prompter.asked == [prompt, prompt]


@pytest.mark.sshd
async def test_passphrase_refused_like_sftp(sshd: PrivateSSHD,
                                            tmp_path: Path, sftp_bin: str,
                                            encrypted_identity: Path
                                            ) -> None:
    config = key_config(sshd, tmp_path / "cfg", encrypted_identity)
    prompter = Scripted("a", "b", "c", "pass phrase")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(config)),
                          prompter)
    with pytest.raises(ConnectError) as info:
        await connector.connect()
    connector.close()
    assert len(prompter.asked) == 3      # NumberOfPasswordPrompts
    theirs = subprocess.run([sftp_bin, "-F", str(config), "-b", "-",
                             HOST_ALIAS], input=b"", capture_output=True,
                            timeout=30)
    assert info.value.stderr == theirs.stderr.decode()
    # batch mode never asks for a passphrase
    batch = Scripted("pass phrase")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(config),
                                    batch_mode=True), batch)
    with pytest.raises(ConnectError):
        await connector.connect()
    connector.close()
    assert batch.asked == []


@pytest.mark.sshd
async def test_agent_key_is_used(sshd: PrivateSSHD, tmp_path: Path,
                                 agent_with_key: Path) -> None:
    base = sshd.ssh_config.read_text()
    # no identity file at all: only the agent can log in
    config = tmp_path / "cfg"
    config.write_text("".join(
        line for line in base.splitlines(keepends=True)
        if not line.strip().startswith("Identit")))
    await log_in(config)
    # IdentitiesOnly: the agent key named by a public key file
    only_pub = tmp_path / "named"
    shutil.copy(str(sshd.identity) + ".pub", str(only_pub) + ".pub")
    named = tmp_path / "cfg2"
    named.write_text(base.replace(str(sshd.identity), str(only_pub))
                     .replace("  IdentityAgent none\n", ""))
    await log_in(named)
    # IdentityAgent none turns it off again
    with pytest.raises(ConnectError):
        await log_in(config, "IdentityAgent=none")


def test_tty_prompt_cancel_restores_echo() -> None:
    import termios
    import threading

    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        before = termios.tcgetattr(slave)[3]
        prompter = TerminalPrompter(tty=name)
        result: list[object] = []

        def run() -> None:
            try:
                result.append(prompter.ask("Secret: ", echo=False))
            except PromptRefused as exc:
                result.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        shown = b""
        while b"Secret: " not in shown:
            shown += os.read(master, 100)
        assert not termios.tcgetattr(slave)[3] & termios.ECHO
        prompter.cancel()
        thread.join(5)
        assert not thread.is_alive()
        assert isinstance(result[0], PromptRefused)
        assert termios.tcgetattr(slave)[3] == before
    finally:
        os.close(master)
        os.close(slave)
