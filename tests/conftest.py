"""Shared fixtures: a private OpenSSH sshd and asyncssh's SFTP server.

Neither touches the system's sshd, its keys or ``~/.ssh``: keys, configs
and the served trees live under pytest's temporary directories.  Outside CI
a missing sshd skips the tests that need it; under ``CI=true`` it fails
them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from psftp_shell.devserver import (
    SFTP_SERVER,
    AsyncSSHServer,
    PrivateSSHD,
    sshd_available,
)
from tests.prompts import PASSWORD

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip (outside CI) or fail (under CI=true) when *condition* is false."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is required under CI=true")
        pytest.skip(f"{what} is not installed")


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Upload journals and history go to a throwaway XDG_STATE_HOME,
    never under the real home directory (tests may set their own)."""
    monkeypatch.setenv("XDG_STATE_HOME",
                       str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateSSHD]:
    """A private OpenSSH sshd for the whole test session."""
    require(sshd_available(), "/usr/sbin/sshd")
    server = PrivateSSHD(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def remote_dir(sshd: PrivateSSHD, request: pytest.FixtureRequest
               ) -> Iterator[Path]:
    """A fresh, empty directory on the sshd's side, removed afterwards."""
    path = sshd.root / request.node.name.replace("/", "_")[:80]
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sftp_server_bin() -> str:
    """The path of OpenSSH's sftp-server, for the pipe transports."""
    require(os.access(SFTP_SERVER, os.X_OK), SFTP_SERVER)
    return SFTP_SERVER


@pytest.fixture
def sftp_bin() -> str:
    """The path of OpenSSH's sftp client, the reference for behaviour."""
    path = shutil.which("sftp")
    require(path is not None, "OpenSSH sftp")
    assert path is not None
    return path


@pytest.fixture
async def asyncssh_server(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    """asyncssh's SFTP server in this test's event loop."""
    server = AsyncSSHServer(tmp_path / "asyncssh")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clean_ssh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[None]:
    """Keep the user's ~/.ssh, agents and askpass out of a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("SSH_AUTH_SOCK", "DISPLAY", "SSH_ASKPASS",
                 "SSH_ASKPASS_REQUIRE"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
async def agent_with_key(sshd: PrivateSSHD, tmp_path: Path,
                         clean_ssh_env: None,
                         monkeypatch: pytest.MonkeyPatch
                         ) -> AsyncIterator[Path]:
    """A private ssh-agent holding the sshd's accepted key, named by
    SSH_AUTH_SOCK; yields its socket."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("needs ssh-agent")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            await asyncio.sleep(0.025)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(sshd.identity)], env=env,
                       check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        agent.terminate()
        agent.wait(10)


@pytest.fixture
async def password_server(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    """asyncssh's server, taking only a password (:data:`PASSWORD`) from
    the user running the tests."""
    server = AsyncSSHServer(tmp_path / "asrv", passwords={
        os.environ.get("USER") or getpass.getuser(): PASSWORD},
        allow_pubkey=False)
    await server.start()
    # the server still knows a client key: make the client offer none
    text = server.ssh_config.read_text().replace(
        f"  IdentityFile {server.identity}\n",
        "  PubkeyAuthentication no\n")
    server.ssh_config.write_text(text)
    yield server
    await server.stop()
