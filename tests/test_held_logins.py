"""Stream logins held beside the control login.

A connector asked to hold logins starts them with its first login: each
connects and exchanges keys at once, then waits, and authenticates only
once the first login has succeeded, with what it learnt.  asyncssh's
server notes every connection, its first authentication request and its
login (:attr:`AsyncSSHServer.events`), so the order is checked where it
happens.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from psftp_shell.ssh import connect, held_logins, quicklogin
from psftp_shell.ssh.attempt import Attempt
from psftp_shell.ssh.auth import LogLevel
from psftp_shell.ssh.connect import ConnectError, Connector, SSHTarget
from psftp_shell.ssh.held_logins import HeldLogin, HeldLoginLost, HeldLogins
from psftp_shell.ssh.quiet_logins import HushedPrompter
from tests.faultrelay import DOWN, UP, FaultRelay, Rule, relay_config
from tests.prompts import PASSWORD, Scripted
from tests.test_engine import within

pytestmark = pytest.mark.usefixtures("clean_ssh_env")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    """asyncssh's server, taking a password or its own key; the client
    offers a key it does not know first, then the password (as a user
    whose key is not on the server yet)."""
    user = os.environ.get("USER") or getpass.getuser()
    server = AsyncSSHServer(tmp_path / "asrv", passwords={user: PASSWORD})
    await server.start()
    stranger = tmp_path / "id_stranger"
    stranger.write_bytes(asyncssh.generate_private_key(
        "ssh-ed25519").export_private_key("openssh"))
    stranger.chmod(0o600)
    server.ssh_config.write_text(server.ssh_config.read_text().replace(
        str(server.identity), str(stranger)))
    yield server
    await server.stop()


def connector_for(server: AsyncSSHServer, prompter: Scripted,
                  held: int, *options: str, verbose: int = 0
                  ) -> Connector:
    connector = Connector(SSHTarget(
        HOST_ALIAS, config_file=str(server.ssh_config), verbose=verbose,
        options=[*options, "KbdInteractiveAuthentication=no"]), prompter)
    connector.held_count = held
    return connector


def numbers(server: AsyncSSHServer, what: str) -> list[int]:
    """The connections that did *what*, in order."""
    return [number for kind, number in server.events if kind == what]


async def three_logins(key_server: AsyncSSHServer
                       ) -> tuple[Scripted, list[Any]]:
    """Three logins (two held) to *key_server*, which is then stopped:
    the user's side of them, and the connections."""
    try:
        prompter = Scripted()
        connector = connector_for(key_server, prompter, 2)
        conns = [await within(connector.connect()) for _ in range(3)]
        await within(connector.close_held())
    finally:
        await key_server.stop()
    return prompter, conns


class OneTimePassword(dict[str, str]):
    """A server's passwords where each is good for one login only."""

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key, default)
        if key in self:
            self[key] = "new password"
        return value


class Gated(Scripted):
    """A user who answers only once the test lets them (the prompter runs
    off the event loop, hence threading's events)."""

    def __init__(self, *answers: str) -> None:
        super().__init__(*answers)
        self.asking = threading.Event()
        self.go = threading.Event()

    def ask(self, prompt: str, *, echo: bool) -> str:
        self.asking.set()
        assert self.go.wait(30)
        return super().ask(prompt, echo=echo)


async def until(condition: Callable[[], bool], seconds: float = 10
                ) -> None:
    """Wait (*seconds* at most) until *condition* holds."""
    for _tick in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def asked_with(server: AsyncSSHServer, prompter: Gated,
                     connects: int) -> None:
    """Wait until the user is asked and *connects* connections came."""
    await until(lambda: prompter.asking.is_set() and
                len(numbers(server, "connect")) >= connects)


async def test_no_login_is_held_for_a_password_alone(
        server: AsyncSSHServer) -> None:
    """The logins that fail on a mistyped answer hold none (each one
    given up would add to the server's penalties)."""
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, 3,
                              "PubkeyAuthentication=no")
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 1)
    await asyncio.sleep(0.2)
    assert len(numbers(server, "connect")) == 1
    prompter.go.set()
    conns = [await within(first), await within(connector.connect())]
    await within(connector.close_held())
    assert len(numbers(server, "connect")) == 2
    for conn in conns:
        conn.close()


async def test_no_login_is_held_for_a_key_with_a_passphrase(
        server: AsyncSSHServer, tmp_path: Path) -> None:
    """Such a key is offered before its passphrase is asked (asked only
    if the server takes it): held logins could wait for the user, so
    none start."""
    locked = tmp_path / "id_locked"
    locked.write_bytes(asyncssh.generate_private_key(
        "ssh-ed25519").export_private_key("openssh", passphrase="secret"))
    locked.chmod(0o600)
    server.ssh_config.write_text(server.ssh_config.read_text().replace(
        str(tmp_path / "id_stranger"), str(locked)))
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, 3)
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 1)   # the password: key refused
    await asyncio.sleep(0.2)
    assert len(numbers(server, "connect")) == 1
    prompter.go.set()
    (await within(first)).close()
    await within(connector.close_held())


async def test_the_banner_already_shown_does_not_waste_them(
        tmp_path: Path) -> None:
    """Each login gets the server's banner; the control login shows it,
    and held logins that get the same one are still used."""
    key_server = AsyncSSHServer(tmp_path / "key-server",
                                banner="Authorised users only\n")
    await key_server.start()
    prompter, conns = await three_logins(key_server)
    assert prompter.told == ["Authorised users only"]
    assert len(numbers(key_server, "connect")) == 3
    assert len(numbers(key_server, "login")) == 3
    for conn in conns:
        conn.close()


@pytest.fixture(params=["quick login", "asyncssh's own start"])
def login_start(request: pytest.FixtureRequest) -> Iterator[None]:
    """With psftp-shell's quick login (the first request a key), and
    with asyncssh's own start (a "none" request first)."""
    if request.param == "quick login":
        yield
        return
    quicklogin.uninstall()
    try:
        yield
    finally:
        quicklogin.install()


@pytest.mark.usefixtures("login_start")
async def test_held_logins_connect_at_once_and_send_nothing_first(
        server: AsyncSSHServer) -> None:
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, 3)
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 4)   # while the user types
    await asyncio.sleep(0.2)
    assert numbers(server, "auth") == [0]   # only the first's
    assert numbers(server, "password") == []
    prompter.go.set()
    conns = [await within(first)]
    conns += [await within(connector.connect()) for _ in range(3)]
    assert len(numbers(server, "connect")) == 4     # those held were used
    # no held login sent anything for its authentication (not even the
    # user's name) before the first login succeeded
    events = server.events
    assert events.index(("login", 0)) < min(
        events.index(("auth", n)) for n in (1, 2, 3))
    assert sorted(numbers(server, "login")) == [0, 1, 2, 3]
    assert prompter.asked == [f"{server.user}@127.0.0.1's password: "]
    assert prompter.told == []
    await within(connector.close_held())
    for conn in conns:
        assert not conn.is_closed()
        conn.close()


async def test_a_login_beyond_those_held_is_a_fresh_one(
        server: AsyncSSHServer) -> None:
    connector = connector_for(server, Scripted(PASSWORD), 1)
    conns = [await within(connector.connect()) for _ in range(3)]
    await within(connector.close_held())
    assert len(numbers(server, "connect")) == 3
    assert len(numbers(server, "login")) == 3
    for conn in conns:
        conn.close()


async def test_logins_held_for_a_failed_login_end_unheard(
        server: AsyncSSHServer) -> None:
    prompter = Scripted("bad1", "bad2", "bad3")
    connector = connector_for(server, prompter, 3)
    with pytest.raises(ConnectError) as info:
        await within(connector.connect())
    assert str(info.value).startswith(
        f"{server.user}@127.0.0.1: Permission denied (")
    # the first, those held for it, and the question for the methods'
    # list; the held ones are gone with the failure, never having asked
    # to authenticate
    held = [n for n in numbers(server, "connect") if n not in (0, 4)]
    assert len(held) == 3
    await until(lambda: all(n in numbers(server, "closed") for n in held),
                seconds=3)     # at once, not after HOLD_SECONDS
    assert not set(held) & set(numbers(server, "auth"))
    assert numbers(server, "login") == []
    assert len(prompter.asked) == 3     # nothing asked for a held login
    assert prompter.told == ["Permission denied, please try again."] * 2
    await within(connector.close_held())


async def test_held_logins_end_with_a_session_ending_in_its_login(
        server: AsyncSSHServer) -> None:
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, 2)
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 3)
    first.cancel()          # e.g. Ctrl-C at the password prompt
    with pytest.raises(asyncio.CancelledError):
        await first
    prompter.go.set()
    await within(connector.close_held())
    await until(lambda: numbers(server, "closed") != []
                and set(numbers(server, "closed")) >= {1, 2})
    assert numbers(server, "auth") == [0]
    assert numbers(server, "login") == []


async def test_logins_are_held_only_once_the_host_key_is_known(
        server: AsyncSSHServer, tmp_path: Path) -> None:
    """A first login asks about the host key: held logins would fail on
    it (and count as connections closed unauthenticated), so none start
    before the user said yes; after it, the key recorded, they do, and
    nothing more is asked."""
    known = tmp_path / "kh"
    text = server.ssh_config.read_text()
    text = text.replace(str(server.known_hosts), str(known))
    server.ssh_config.write_text(text.replace(
        "StrictHostKeyChecking yes", "StrictHostKeyChecking ask"))
    prompter = Scripted("yes", PASSWORD)
    connector = connector_for(server, prompter, 2)
    conns = [await within(connector.connect()) for _ in range(3)]
    await within(connector.close_held())
    assert [q.split()[-1] for q in prompter.asked] == [
        "(yes/no/[fingerprint])?", "password:"]
    assert len(prompter.told) == 1 and \
        prompter.told[0].startswith("Warning: Permanently added")
    # the first twice (before and after the question, as ssh does), and
    # two held logins, started once the first connection had ended
    assert len(numbers(server, "connect")) == 4
    events = server.events
    assert events.index(("closed", 0)) < events.index(("connect", 2))
    assert len(numbers(server, "login")) == 3
    for conn in conns:
        conn.close()


async def test_logins_held_too_long_give_up(
        server: AsyncSSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user slow to answer: the held logins close before the server's
    LoginGraceTime could, and the streams log in afresh."""
    monkeypatch.setattr(held_logins, "HOLD_SECONDS", 0.3)
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, 2)
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 3)
    await until(lambda: set(numbers(server, "closed")) >= {1, 2})
    prompter.go.set()
    conns = [await within(first), await within(connector.connect())]
    await within(connector.close_held())
    assert len(numbers(server, "connect")) == 4     # 2 held, 1 fresh login
    assert numbers(server, "auth") == [0, 3]
    assert len(prompter.asked) == 1 and prompter.told == []
    for conn in conns:
        conn.close()


async def test_a_session_holds_a_bounded_number_of_logins(
        server: AsyncSSHServer) -> None:
    prompter = Gated(PASSWORD)
    connector = connector_for(server, prompter, held_logins.MAX_HELD + 4)
    first = asyncio.ensure_future(connector.connect())
    await asked_with(server, prompter, 1 + held_logins.MAX_HELD)
    await asyncio.sleep(0.2)
    assert len(numbers(server, "connect")) == 1 + held_logins.MAX_HELD
    prompter.go.set()
    (await within(first)).close()
    await within(connector.close_held())


async def test_no_credentials_held_after_keyboard_interactive(
        server: AsyncSSHServer) -> None:
    """Keyboard-interactive answers may be one-time codes: the held
    logins end without trying them, and the streams log in afresh (as
    they did before there were held logins)."""
    prompter = Scripted(PASSWORD)
    connector = connector_for(
        server, prompter, 2, "KbdInteractiveAuthentication=yes",
        "PreferredAuthentications=publickey,keyboard-interactive")
    conns = [await within(connector.connect())]
    await until(lambda: set(numbers(server, "closed")) >= {1, 2})
    conns.append(await within(connector.connect()))
    await within(connector.close_held())
    assert numbers(server, "auth") == [0, 3]
    assert len(numbers(server, "login")) == 2
    for conn in conns:
        conn.close()


async def test_no_login_is_held_after_a_changed_host_key(
        tmp_path: Path) -> None:
    """With StrictHostKeyChecking=no and a changed key, the first login
    warns once and goes on; held logins take only known_hosts' keys, so
    none start (each would end at its key exchange), and the streams log
    in afresh."""
    key_server = AsyncSSHServer(tmp_path / "key-server")
    await key_server.start()
    try:
        other = asyncssh.generate_private_key("ssh-ed25519")
        old = other.export_public_key().decode().split()
        key_server.known_hosts.write_text(
            f"[127.0.0.1]:{key_server.port} {old[0]} {old[1]}\n")
        text = key_server.ssh_config.read_text()
        key_server.ssh_config.write_text(text.replace(
            "StrictHostKeyChecking yes", "StrictHostKeyChecking no"))
    except BaseException:
        await key_server.stop()
        raise
    prompter, conns = await three_logins(key_server)
    warnings = [t for t in prompter.told if "IDENTIFICATION HAS CHANGED"
                in t]
    assert len(warnings) == 1 and prompter.asked == []
    assert numbers(key_server, "connect") == numbers(key_server, "auth") \
        == [0, 1, 2]
    for conn in conns:
        conn.close()


class Refusing:
    """A host key policy that must not be consulted."""

    mitm = False

    def validate(self, *args: Any) -> None:
        raise AssertionError("a held login consulted the host key policy")


async def test_a_held_login_takes_no_host_key_but_known_hosts() -> None:
    """asyncssh asks the client about a key that known_hosts does not
    hold; a held login says no, without the policy (which could warn,
    record the key, or leave a question)."""
    connector = SimpleNamespace(resolved=None)
    attempt = Attempt(connector, None, Refusing(),  # type: ignore[arg-type]
                      HeldLogin())
    key = asyncssh.generate_private_key("ssh-ed25519")
    assert attempt.client.validate_host_public_key(
        "127.0.0.1", "127.0.0.1", 22, key.convert_to_public()) is False
    assert attempt.outcome is None


async def test_a_held_login_that_would_ask_ends_and_the_stream_asks(
        server: AsyncSSHServer) -> None:
    """A held login never asks or tells: here its cached password is
    refused (a one-time password), so it ends silently, and the stream
    logs in afresh, telling and asking as any login does."""
    server.passwords = OneTimePassword(server.passwords)
    prompter = Scripted(PASSWORD, "new password")
    connector = connector_for(server, prompter, 1)
    first = await within(connector.connect())
    second = await within(connector.connect())
    await within(connector.close_held())
    assert len(prompter.asked) == 2
    assert prompter.told == ["Permission denied, please try again."]
    assert len(numbers(server, "connect")) == 3     # control, held, fresh
    assert len(numbers(server, "login")) == 2
    first.close()
    second.close()


RELAY = """\
import socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := sys.stdin.buffer.read1(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := sock.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("how", ["ProxyCommand", "-v"])
async def test_none_held_where_a_login_may_write_to_the_terminal(
        server: AsyncSSHServer, tmp_path: Path, how: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    if how == "-v":     # (not asyncssh's debug log for the whole run)
        monkeypatch.setattr(connect, "configure_logging", lambda _: None)
        connector = connector_for(server, Scripted(PASSWORD), 2, verbose=1)
    else:
        connector = connector_for(
            server, Scripted(PASSWORD), 2,
            f"ProxyCommand={sys.executable} {relay} %h %p")
    conn = await within(connector.connect())
    await within(connector.close_held())
    assert len(numbers(server, "connect")) == 1
    assert len(numbers(server, "login")) == 1
    conn.close()


# -- the held logins themselves -------------------------------------------


class FakeConn:
    """What a held login returns here."""

    closed = False

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        assert self.closed


async def test_claims_pass_over_lost_logins_and_close_drops_the_rest(
        ) -> None:
    logins = HeldLogins()
    outcomes: list[Exception | None] = [HeldLoginLost(), None, None]
    made: list[FakeConn] = []

    async def login(held: HeldLogin) -> Any:
        await held.wait()
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        made.append(FakeConn())
        return made[-1]

    logins.start(3, login)
    assert len(logins) == 3
    await asyncio.sleep(0.01)
    assert outcomes and not made        # all held
    first = await within(logins.claim())
    assert first is made[0] and len(logins) == 1  # the lost one passed
    logins.release()                    # the last one logs in unclaimed
    await asyncio.sleep(0.01)
    await within(logins.close())
    assert len(made) == 2 and made[1].closed and not made[0].closed
    assert await within(logins.claim()) is None


# -- a session's streams ----------------------------------------------------


@pytest.mark.parametrize("args, connections, held", [
    (["-n", "4"], 4, 4), (["-n", "4", "-X", "channels=2"], 2, 2),
    (["-n", "1"], 0, 0), (["-n", "4", "-X", "addresses=all"], 4, 0)])
async def test_an_interactive_sessions_streams_log_in_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        args: list[str], connections: int, held: int) -> None:
    """Their connections are made during the session's start, from the
    control login's key offer (not with ``-X addresses=all``): they are
    there when the first prompt is about to be drawn, and the streams
    opened ahead of it are those connections."""
    from psftp_shell.core.output import Output
    from psftp_shell.frontend import cli, repl
    server = AsyncSSHServer(tmp_path / "key-server")
    await server.start()
    logins = 1 + connections
    at_prompt: list[int] = []

    async def first_prompt(shell: Any, **_: Any) -> int:
        at_prompt.append(len(numbers(server, "connect")))
        for _tick in range(100):
            if len(numbers(server, "login")) >= logins:
                break
            await asyncio.sleep(0.05)
        return 0

    monkeypatch.setattr(repl, "run_repl", first_prompt)
    try:
        opts = cli.parse_args([*args, "-F", str(server.ssh_config),
                               HOST_ALIAS], "psftp-shell")
        settings = cli._make_settings(opts, opts.connections or 1)
        settings.channels = int(str(opts.x_settings.get("channels", 1)))
        out = Output(io.BytesIO(), io.BytesIO())
        assert await within(cli.run_session(opts, out, settings, None)) == 0
    finally:
        await server.stop()
    assert len(numbers(server, "login")) == logins == \
        len(numbers(server, "connect"))
    assert at_prompt == [1 + held]


async def test_only_a_message_the_user_saw_is_no_news_for_a_held_login(
        ) -> None:
    """A quiet login's message was kept from the user: the same message
    from a held login is news (it makes that login give way)."""
    seen = Scripted()
    connector = Connector(SSHTarget(HOST_ALIAS), HushedPrompter(seen))
    connector.notify(LogLevel.ERROR, "kept")        # hushed
    connector.prompter = seen
    connector.notify(LogLevel.ERROR, "shown")
    spoke = []
    for text in ("kept", "shown"):
        held = HeldLogin()

        async def login(held: HeldLogin, text: str = text) -> Any:
            connector.notify(LogLevel.ERROR, text)
            return FakeConn()

        await held.run(login)
        spoke.append(held.spoke)
    assert spoke == [True, False] and seen.told == ["shown"]


@pytest.mark.parametrize("rule", [
    Rule(1, 0, DOWN, "silent"), Rule(1, 500, DOWN, "reset"),
    Rule(1, 1000, UP, "close"), Rule(1, 1500, UP, "silent"),
    Rule(1, refuse=True)],
    ids=["silent", "reset in its key exchange", "closed in it",
         "silent in it", "refused"])
async def test_a_held_login_lost_to_the_network_costs_a_fresh_one(
        tmp_path: Path, rule: Rule) -> None:
    """A held connection cut, refused or gone silent at any point of its
    login: the stream logs in afresh, within the bound ServerAlive* and
    ConnectTimeout set, and the other held one is used."""
    key_server = AsyncSSHServer(tmp_path / "key-server")
    await key_server.start()
    relay = FaultRelay(key_server.port, [rule])
    await relay.start()
    try:
        config = relay_config(key_server.ssh_config, key_server.known_hosts,
                              key_server.port, relay.port, tmp_path)
        connector = Connector(SSHTarget(
            HOST_ALIAS, config_file=str(config),
            options=["ServerAliveInterval=1", "ServerAliveCountMax=2",
                     "ConnectTimeout=2"]), Scripted())
        connector.held_count = 2
        started = time.monotonic()
        conns = [await within(connector.connect()) for _ in range(3)]
        took = time.monotonic() - started
        open_ = [not conn.is_closed() for conn in conns]
        for conn in conns:
            conn.close()
        await within(connector.close_held())
    finally:
        await relay.stop()
        await key_server.stop()
    assert open_ == [True] * 3 and took < 1 * (2 + 1) + 2 + 1
    # the first, two held (one lost), and a fresh login for the lost one
    assert (rule.fired or rule.refuse) and len(relay.links) == 4
    assert len(numbers(key_server, "login")) == 3
