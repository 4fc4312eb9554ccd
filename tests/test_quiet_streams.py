"""``-n``'s streams opened ahead in an interactive session.

Once an interactive session is sure to reach its prompt, before the
prompt is drawn, the pool opens its streams in the background
(:meth:`StreamPool.open_quietly`) with logins that may neither ask nor
tell the user anything
(:mod:`psftp_shell.ssh.quiet_logins`).  A fake transport checks the
pool's side; then psftp-shell runs in a pseudo-terminal against a
private sshd whose log counts the logins.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.engine.pool import StreamPool
from psftp_shell.sftp.client import SFTPClient
from psftp_shell.ssh.prompter import BatchPrompter, PromptRefused
from psftp_shell.ssh.quiet_logins import (
    HushedPrompter,
    Unasked,
    can_log_in_quietly,
)
from tests.conftest import SFTP_SERVER, require, sshd_available
from tests.test_engine import within
from tests.test_pool import FakeTransport, messages
from tests.test_pty import PROMPT, environment

# -- the pool -----------------------------------------------------------


class Hush:
    """What a quiet transport's context gives the pool."""

    def __init__(self) -> None:
        self.spoke = False
        self.spoken = False

    def speak(self) -> None:
        self.spoken = True


class QuietTransport(FakeTransport):
    """Fake logins; login number *speaks* wants to ask the user."""

    def __init__(self, speaks: int = 0, delay: float = 0.01) -> None:
        super().__init__(delay=delay)
        self.hush = Hush()
        self.speaks = speaks
        self.discarded: list[SFTPClient] = []

    @contextlib.contextmanager
    def quietly(self) -> Iterator[Hush]:
        yield self.hush

    async def open_client(self) -> SFTPClient:
        if self.attempts + 1 == self.speaks and not self.hush.spoken:
            self.attempts += 1
            self.hush.spoke = True
            raise Unasked("password: ")
        return await super().open_client()

    async def discard(self, client: SFTPClient) -> None:
        self.discarded.append(client)


async def opened_ahead(transport: QuietTransport, size: int
                       ) -> tuple[StreamPool, io.BytesIO]:
    """A pool of *size* once its streams opened ahead are done with."""
    out, err = messages()
    pool = StreamPool(transport, size, out, requests=8)
    pool.open_quietly(transport.quietly)
    assert pool._early is not None
    await within(pool._early)
    return pool, err


async def opening(transport: QuietTransport) -> StreamPool:
    """A pool of 4 whose streams are being opened ahead."""
    out, _ = messages()
    pool = StreamPool(transport, 4, out, requests=8)
    pool.open_quietly(transport.quietly)
    await asyncio.sleep(0.05)
    return pool


async def test_streams_opened_ahead_serve_the_first_transfer() -> None:
    transport = QuietTransport()
    pool, err = await opened_ahead(transport, 4)
    assert transport.attempts == 4 and len(pool.live()) == 4
    assert not transport.hush.spoken
    streams = await within(pool.first())
    assert len(streams) == 4 and transport.attempts == 4
    assert transport.discarded == [] and err.getvalue() == b""


async def test_a_login_that_would_ask_leaves_it_to_the_transfer() -> None:
    transport = QuietTransport(speaks=2)
    pool, err = await opened_ahead(transport, 4)
    assert pool.ready == [] and len(transport.discarded) == 3
    assert transport.attempts == 4     # no retry ahead of the transfer
    assert err.getvalue() == b""
    streams = await within(pool.streams())
    assert len(streams) == 4 and transport.attempts == 8
    assert err.getvalue() == b""


async def test_a_transfer_during_the_logins_lets_them_ask() -> None:
    transport = QuietTransport(delay=0.2)
    pool = await opening(transport)
    streams = await within(pool.first())
    assert transport.hush.spoken
    assert len(streams) >= 1 and transport.attempts == 4
    assert len(await within(pool.streams())) == 4
    assert transport.attempts == 4 and transport.discarded == []


async def test_an_idle_stream_lost_ahead_is_not_replaced_then() -> None:
    transport = QuietTransport()
    pool, _ = await opened_ahead(transport, 3)
    pool.ready[1].client.closed = True   # type: ignore[misc]
    pool.lost(pool.ready[1])
    assert transport.attempts == 3      # nothing opened in the background
    assert len(await within(pool.streams())) == 3
    assert transport.attempts == 6 and len(transport.discarded) == 3


async def test_a_transport_that_cannot_be_quiet_opens_nothing() -> None:
    transport = FakeTransport()
    out, _ = messages()
    pool = StreamPool(transport, 4, out, requests=8)

    @contextlib.contextmanager
    def cannot() -> Iterator[None]:
        yield None

    pool.open_quietly(cannot)
    assert pool._early is not None
    await within(pool._early)
    assert transport.attempts == 0
    assert len(await within(pool.streams())) == 4


async def test_closing_stops_the_logins_under_way() -> None:
    pool = await opening(QuietTransport(delay=30))
    await within(pool.close())
    assert pool._early is not None and pool._early.done()


def test_the_hushed_prompter_refuses_until_told_to_speak() -> None:
    told: list[str] = []
    inner = BatchPrompter()
    inner.tell = told.append            # type: ignore[method-assign,assignment]
    hushed = HushedPrompter(inner)
    hushed.tell("Banner")
    assert told == [] and hushed.spoke
    with pytest.raises(Unasked):
        hushed.ask("password: ", echo=False)
    hushed.speak()
    hushed.tell("Banner")
    assert told == ["Banner"]
    with pytest.raises(PromptRefused):  # the real prompter's answer
        hushed.ask("password: ", echo=False)


@pytest.mark.parametrize("change, quiet", [
    ({}, True), ({"kbdint_used": True}, False), ({"verbose": 1}, False),
    ({"proxy_command": "nc %h %p"}, False), ({"jump": "hop"}, False)])
def test_which_logins_can_be_quiet(change: dict[str, Any],
                                   quiet: bool) -> None:
    resolved = SimpleNamespace(proxy_command=change.get("proxy_command"),
                               jump=change.get("jump"))
    connector = SimpleNamespace(
        resolved=resolved,
        target=SimpleNamespace(verbose=change.get("verbose", 0)),
        auth=SimpleNamespace(kbdint_used=change.get("kbdint_used", False)))
    assert can_log_in_quietly(connector) is quiet   # type: ignore[arg-type]


# -- in a terminal, against sshd ------------------------------------------

pexpect = pytest.importorskip("pexpect")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def logged_sshd(tmp_path: Path, request: pytest.FixtureRequest
                ) -> Iterator[PrivateSSHD]:
    """A private sshd whose sftp-server notes each session it starts
    (and that shows a banner if the test's parameter says so)."""
    require(sshd_available(), "/usr/sbin/sshd")
    require(os.access(SFTP_SERVER, os.X_OK), SFTP_SERVER)
    wrapper = tmp_path / "sftp-server"
    wrapper.write_text(f"#!/bin/sh\necho started >> {tmp_path}/sessions\n"
                       f"exec {SFTP_SERVER}\n")
    wrapper.chmod(0o755)
    extra = ""
    if getattr(request, "param", False):
        banner = tmp_path / "banner"
        banner.write_text("Authorised users only\n")
        extra = f"Banner {banner}\n"
    server = PrivateSSHD(tmp_path / "sshd", extra_config=extra,
                         subsystem=str(wrapper))
    server.start()
    (server.root / "file.txt").write_text("contents\n")
    yield server
    server.stop()


def logins(server: PrivateSSHD) -> int:
    """SFTP sessions the sshd has started so far (one per login)."""
    path = server.workdir.parent / "sessions"
    return path.read_text().count("started") if path.exists() else 0


def idle(child: Any, seconds: float) -> bytes:
    """What the child writes in *seconds* with nothing typed."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(pexpect.TIMEOUT):
            seen += child.read_nonblocking(65536, timeout=0.1)
    return seen


def wait_logins(server: PrivateSSHD, count: int, child: Any) -> bytes:
    """Wait (15 s at most) until *count* logins; what the child wrote."""
    seen = b""
    deadline = time.monotonic() + 15
    while logins(server) < count and time.monotonic() < deadline:
        seen += idle(child, 0.1)
    assert logins(server) == count
    return seen


@pytest.fixture
def shell(logged_sshd: PrivateSSHD, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[Any]:
    """psftp-shell -n 4 (or the test's -n, and options) at its first
    prompt, in a pty."""
    param = getattr(request, "param", 4)
    streams, options = param if isinstance(param, tuple) else (param, [])
    here = tmp_path / "here"
    here.mkdir()
    env = {**environment(tmp_path), "PYTHONPATH": str(REPO)}
    child = pexpect.spawn(
        sys.executable, ["-m", "psftp_shell", "-n", str(streams), *options,
                         "-F", str(logged_sshd.ssh_config), HOST_ALIAS],
        cwd=str(here), env=env, timeout=15)
    child.logfile_read = io.BytesIO()
    child.expect(PROMPT)
    yield child
    if child.isalive():
        os.killpg(child.pid, signal.SIGCONT)
        child.close(force=True)


def fetch(child: Any, server: PrivateSSHD, tmp_path: Path) -> bytes:
    """``get`` file.txt, then leave; what the child wrote meanwhile."""
    start = len(child.logfile_read.getvalue())
    child.sendline(f"get {server.root}/file.txt")
    child.expect("file.txt")
    child.expect(PROMPT)
    child.sendline("bye")
    child.expect(pexpect.EOF)
    assert (tmp_path / "here" / "file.txt").read_text() == "contents\n"
    return bytes(child.logfile_read.getvalue()[start:])


def test_streams_are_open_before_the_first_transfer(
        shell: Any, logged_sshd: PrivateSSHD, tmp_path: Path) -> None:
    said = wait_logins(logged_sshd, 1 + 4, shell)
    said += idle(shell, 0.5)
    assert said == b""                  # nothing while the user types
    fetch(shell, logged_sshd, tmp_path)
    assert logins(logged_sshd) == 1 + 4     # the transfer used them


@pytest.mark.parametrize("logged_sshd", [True], indirect=True)
def test_the_banner_shown_at_login_is_not_shown_again(
        shell: Any, logged_sshd: PrivateSSHD, tmp_path: Path) -> None:
    """The streams, held logins (:mod:`psftp_shell.ssh.held_logins`),
    get the banner the user saw at login: no news, so they are kept, and
    it is shown once, as sftp's one connection shows it."""
    shown = bytes(shell.logfile_read.getvalue())
    assert shown.count(b"Authorised users only") == 1
    said = wait_logins(logged_sshd, 1 + 4, shell)
    said += idle(shell, 1.0)
    assert said == b""
    shown = fetch(shell, logged_sshd, tmp_path)
    assert logins(logged_sshd) == 1 + 4
    assert b"Authorised users only" not in shown


# with -X addresses=all no login is held: the streams log in quietly
@pytest.mark.parametrize("logged_sshd, shell",
                         [(True, (4, ["-X", "addresses=all"]))],
                         indirect=True)
def test_a_stream_that_would_speak_is_silent_and_opened_later(
        shell: Any, logged_sshd: PrivateSSHD, tmp_path: Path) -> None:
    said = wait_logins(logged_sshd, 1 + 4, shell)   # banners unshown
    said += idle(shell, 1.0)
    assert said == b""
    shown = fetch(shell, logged_sshd, tmp_path)
    # opened again by the transfer, as before (which may end before the
    # last of them starts), and their banners shown then
    assert logins(logged_sshd) > 1 + 4
    assert shown.count(b"Authorised users only") >= 1


def test_end_of_input_while_the_streams_open_leaves_at_once(
        shell: Any) -> None:
    started = time.monotonic()
    shell.sendeof()
    shell.expect(pexpect.EOF, timeout=10)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("shell", [1], indirect=True)
def test_one_stream_is_one_connection(
        shell: Any, logged_sshd: PrivateSSHD, tmp_path: Path) -> None:
    assert idle(shell, 1.5) == b""
    assert logins(logged_sshd) == 1
    fetch(shell, logged_sshd, tmp_path)
    assert logins(logged_sshd) == 1


@pytest.mark.sshd
def test_the_streams_start_opening_before_the_first_prompt(
        sshd: PrivateSSHD, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their logins overlap the prompt's own start (the line editor's
    import, the first drawing) instead of following it."""
    from psftp_shell.core.output import Output
    from psftp_shell.frontend import cli, repl
    order: list[str] = []
    opened = StreamPool.open_quietly

    def recording(pool: StreamPool, quietly: Any) -> None:
        order.append("streams")
        opened(pool, quietly)

    async def first_prompt(shell: Any, **_: Any) -> int:
        order.append("prompt")
        return 0

    monkeypatch.setattr(StreamPool, "open_quietly", recording)
    monkeypatch.setattr(repl, "run_repl", first_prompt)
    for where, expected in (("", (0, ["streams", "prompt"])),
                            (":/no/such/dir/", (1, []))):
        # a start directory that fails ends the session before any
        # prompt: no logins are started for nothing
        order.clear()
        opts = cli.parse_args(["-n", "4", "-F", str(sshd.ssh_config),
                               HOST_ALIAS + where], "psftp-shell")
        settings = cli._make_settings(opts, 4)
        out = Output(io.BytesIO(), io.BytesIO())
        status = asyncio.run(cli.run_session(opts, out, settings, None))
        assert (status, order) == expected
