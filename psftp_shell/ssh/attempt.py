"""One try at one SSH connection, and ssh's words for its failures.

:class:`Attempt` holds what one try learns (the host identity, the host
key outcome, the way to the server); :class:`Client` answers asyncssh's
callbacks for it.  :func:`open_socket` connects a TCP socket the way ssh
does and :func:`describe_failure` words other failures like ssh's
stderr.  As ssh's, ConnectTimeout bounds the connect and the server's
version line together, and ServerAliveInterval x ServerAliveCountMax a
silence of the server after it (:meth:`Attempt.connect`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import asyncssh

from psftp_shell.sftp.request_core import retrieved
from psftp_shell.ssh import address_spread as spread
from psftp_shell.ssh import quicklogin
from psftp_shell.ssh.auth import AuthContext, AuthSession, LogLevel
from psftp_shell.ssh.held_logins import HeldLogin
from psftp_shell.ssh.hostkeys import (
    HostIdentity,
    HostKeyPolicy,
    Message,
    Outcome,
)
from psftp_shell.ssh.proxy_command import ProxyProcess
from psftp_shell.ssh.ssh_config import Resolved
from psftp_shell.ssh.target import ConnectError

ErrorMaker = Callable[[Iterable[Message | str]], ConnectError]

quicklogin.install()


class Owner(Protocol):
    """What an attempt needs of the connector that makes it
    (:class:`psftp_shell.ssh.connect.Connector`; that module imports this
    one)."""

    @property
    def auth(self) -> AuthContext:
        """What every connection of the session shares for logins."""

    def notify(self, level: LogLevel, text: str) -> None:
        """Tell the user *text* if LogLevel allows it."""

    @property
    def resolved(self) -> Resolved | None:
        """The connection's settings, once ssh_config is read."""


VERSION_POLL = 0.02
"""Seconds between looks for the server's version line."""
SILENCE_POLL = 0.1
"""Seconds between looks for the server's silence during a login."""
_T = TypeVar("_T")


class LoginTimeout(TimeoutError):
    """The server said nothing for ServerAliveInterval x
    ServerAliveCountMax seconds of the login (ssh's packet timeout)."""


class BannerTimeout(LoginTimeout):
    """The server's version line did not come within ConnectTimeout."""


@dataclass(slots=True)
class Transport:
    """How one connection reaches the server."""

    sock: socket.socket | None = None
    tunnel: asyncssh.SSHClientConnection | None = None
    addr: str | None = None
    proxy: ProxyProcess | None = None   # ProxyCommand, on sock

    def close(self) -> None:
        """Close the socket, tunnel or proxy command, whichever there is."""
        if self.sock is not None:
            self.sock.close()
        if self.tunnel is not None:
            self.tunnel.close()
        if self.proxy is not None:
            self.proxy.close()


class Client(asyncssh.SSHClient):
    """asyncssh's callbacks, answered the way ssh would."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._conn: asyncssh.SSHClientConnection | None = None
        self.lost_reason: Exception | None = None
        self.kex_done = False
        self.heard = 0.0        # loop time of the server's last word
        self.asking = 0         # questions to the user under way

    def _heard(self) -> None:
        self.heard = asyncio.get_running_loop().time()

    async def _asking(self, answer: Awaitable[_T]) -> _T:
        """*answer*, which may ask the user: the server is not waited
        for meanwhile."""
        self._heard()
        self.asking += 1
        try:
            return await answer
        finally:
            self.asking -= 1
            self._heard()

    async def _cleared(self) -> None:
        """Wait, if this login is a held one, until it is released
        (:mod:`psftp_shell.ssh.held_logins`)."""
        held = self._attempt.held
        if held is not None and not held.passed:
            await self._asking(held.wait())

    def _hold_authentication(self, conn: asyncssh.SSHClientConnection
                             ) -> None:
        """Make a held login's authentication start only once it is
        released: not even asyncssh's "none" request, which names the
        user, goes out before (asyncssh starts with ``try_next_auth``;
        the methods' own callbacks wait too, :meth:`_cleared`)."""
        start = getattr(conn, "try_next_auth", None)
        if start is None:
            return

        async def when_released(kwargs: dict[str, Any]) -> None:
            try:
                await self._cleared()
            except Exception:       # held too long: the login fails
                conn.internal_error()   # with this error, as asyncssh's
                return                  # own callbacks' errors do
            if not conn.is_closed():    # (the server may have gone)
                start(**kwargs)

        def held_start(**kwargs: Any) -> None:
            del conn.try_next_auth      # asyncssh's own from now on
            task = asyncio.ensure_future(when_released(kwargs))
            task.add_done_callback(retrieved)

        conn.try_next_auth = held_start  # type: ignore[method-assign]

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._conn = conn
        self._heard()
        if self._attempt.held is not None:
            self._hold_authentication(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_reason = exc

    @property
    def version_seen(self) -> bool:
        """Whether the server's version line arrived."""
        return self._conn is not None and \
            self._conn.get_extra_info("server_version") is not None

    def begin_auth(self, username: str) -> None:
        self.kex_done = True
        self._heard()
        if self._conn is not None:
            quicklogin.skip_probe(self._conn)

    def signs_at_once(self, keypair: asyncssh.SSHKeyPair) -> bool:
        """Whether *keypair* is offered with its signature at once
        (:mod:`psftp_shell.ssh.quicklogin`)."""
        return quicklogin.plain(keypair)

    def auth_early(self) -> bool:
        """Authentication may start before the service is accepted
        (:mod:`psftp_shell.ssh.quicklogin`)."""
        return True

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self._heard()
        if self._attempt.held is not None:
            return False    # only the known_hosts files' keys: no word
        return self._attempt.host_key(key)

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self._heard()
        text = msg[:-1] if msg.endswith("\n") else msg
        self._attempt.connector.notify(LogLevel.INFO, text)

    def auth_completed(self) -> None:
        self._attempt.session.close()

    async def public_key_auth_requested(
            self) -> asyncssh.SSHKeyPair | None:
        await self._cleared()
        keypair = await self._asking(self._attempt.session.next_key())
        if keypair is not None and self._attempt.on_key is not None and \
                signs_unasked(keypair):
            self._attempt.on_key()
        return keypair

    async def password_auth_requested(
            self) -> str | None:
        await self._cleared()
        return await self._asking(self._attempt.session.password())

    async def kbdint_auth_requested(self) -> str | None:
        await self._cleared()
        self._heard()
        return self._attempt.session.kbdint_start()

    async def kbdint_challenge_received(
            self, name: str, instructions: str, lang: str,
            prompts: Sequence[tuple[str, bool]]) -> list[str] | None:
        return await self._asking(self._attempt.session.kbdint_answers(
            name, instructions, prompts))


def signs_unasked(keypair: asyncssh.SSHKeyPair) -> bool:
    """Whether signing with *keypair* asks nothing of anyone: a key in
    memory or an agent's, not one whose passphrase is still to be asked,
    nor a security key (a touch)."""
    algorithm = keypair.algorithm
    if algorithm.startswith(b"sk-") or b"-sk-" in algorithm:
        return False
    from asyncssh.agent import SSHAgentKeyPair
    return quicklogin.plain(keypair) or isinstance(keypair, SSHAgentKeyPair)


class Attempt:
    """One try at one connection."""

    def __init__(self, connector: Owner, session: AuthSession,
                 policy: HostKeyPolicy, held: HeldLogin | None = None,
                 on_key: Callable[[], None] | None = None) -> None:
        self.connector = connector
        self.session = session
        self.policy = policy
        self.held = held
        self.on_key = on_key
        """Called when a key whose signature asks nothing of anyone is
        offered (:func:`signs_unasked`)."""
        self.client = Client(self)
        self.ident: HostIdentity | None = None
        self.outcome: Outcome | None = None
        self.transport = Transport()
        self.options: dict[str, Any] = {}   # asyncssh.connect's, once known
        r = connector.resolved
        timeout = r.connect_timeout if r is not None else None
        self.deadline = asyncio.get_running_loop().time() + timeout \
            if timeout else None

    async def connect(self, host: str, options: dict[str, Any]
                      ) -> asyncssh.SSHClientConnection:
        """asyncssh's connect, given up as ssh gives up a silent server:
        :class:`BannerTimeout` if the version line has not come by
        :attr:`deadline` (ConnectTimeout, which counts from the connect);
        :class:`LoginTimeout` if, after it, the server says nothing for
        ServerAliveInterval x ServerAliveCountMax seconds while nothing
        is asked of the user."""
        login = asyncio.ensure_future(asyncssh.connect(host, **options))
        try:
            await self._watch(login)
        except BaseException:
            login.cancel()
            with contextlib.suppress(BaseException):
                await login
            raise
        return await login

    async def _watch(self, login: asyncio.Future[Any]) -> None:
        """Return when *login* ends, or when only its end is awaited."""
        r = self.connector.resolved
        silence = r.login_silence if r is not None else None
        client, loop = self.client, asyncio.get_running_loop()
        while not login.done():
            if not client.version_seen:
                if self.deadline is None:
                    wait = VERSION_POLL if silence else None
                elif loop.time() >= self.deadline:
                    raise BannerTimeout()
                else:
                    wait = min(self.deadline - loop.time(), VERSION_POLL)
                client.heard = loop.time()
            elif silence is None:
                return
            elif not client.asking and \
                    loop.time() - client.heard >= silence:
                raise LoginTimeout()
            else:
                wait = SILENCE_POLL
            await asyncio.wait([login], timeout=wait)

    @property
    def hung_up_in_kex(self) -> bool:
        """Whether the server went away between its version line and the
        end of the key exchange (as when nothing could be agreed)."""
        return self.client.version_seen and not self.client.kex_done

    def host_key(self, key: asyncssh.SSHKey) -> bool:
        """Check the server's host key; whether to go on."""
        assert self.ident is not None
        self.outcome = self.policy.validate(key, self.ident)
        if self.policy.mitm:
            self.connector.auth.mitm = True
        return self.outcome.accepted


_KEX_WORDS = {
    "key exchange": "key exchange method", "encryption": "cipher",
    "MAC": "MAC", "compression": "compression method",
    "host key": "host key type",
}


RETRY_WAIT = 1.0
"""Seconds between two rounds of ConnectionAttempts, as in ssh."""


async def open_socket(r: Resolved, error: ErrorMaker) -> socket.socket:
    """Connect a TCP socket the way ssh does, with ssh's errors: every
    address of the host in turn, ConnectionAttempts times."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            r.hostname, r.port, family=r.family,
            type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise error([(LogLevel.FATAL,
                      f"ssh: Could not resolve hostname "
                      f"{r.hostname}: {exc.strerror}")]) from None
    last = 0
    addresses = spread.order(infos, spread.CHOICE.get())
    for attempt in range(r.connection_attempts):
        if attempt:             # ConnectionAttempts: ssh waits a second
            await asyncio.sleep(RETRY_WAIT)
        for family, kind, proto, _, addr in addresses:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                if r.bind_address:
                    sock.bind((r.bind_address, 0))
                await asyncio.wait_for(loop.sock_connect(sock, addr),
                                       r.connect_timeout)
            except TimeoutError:
                last = errno.ETIMEDOUT
            except OSError as exc:
                last = exc.errno or 0
            else:
                return sock
            sock.close()
    reason = os.strerror(last) if last else "failure"
    raise error([(LogLevel.ERROR,
                  f"ssh: connect to host {r.hostname} port "
                  f"{r.port}: {reason}")])


def lost_words(reason: Exception | None, r: Resolved) -> Message | None:
    """What ssh says when an established connection ends for *reason*.

    Only the keepalive timeout has words of its own (``ssh`` logs them
    before sftp's ``Connection closed``); other ends say nothing here.
    """
    if isinstance(reason, asyncssh.ConnectionLost) and \
            "keepalive" in reason.reason:
        return (LogLevel.INFO,
                f"Timeout, server {r.hostname} not responding.")
    return None


_BANNER_FAULTS = {
    "Banner line too long": "banner line too long",
    "Too many banner lines":
        "No SSH version received in first 1024 lines from server",
}
"""asyncssh's refusals of what came before a version line, in ssh's
words (both stop at 8192 bytes a line and 1024 lines)."""


def describe_failure(exc: BaseException, r: Resolved, addr: str | None,
                     version_seen: bool = True) -> list[Message]:
    """Word an asyncssh or socket failure the way ssh does.

    Before the server's version line (*version_seen* false) a closed or
    reset connection is reported as ssh's version exchange reports it
    (*addr* None: through a ProxyCommand or a jump host).
    """
    ip, port = (addr, r.port) if addr else ("UNKNOWN", 65535)
    if not version_seen and isinstance(exc, asyncssh.ProtocolError) and \
            exc.reason in _BANNER_FAULTS:
        return [(LogLevel.ERROR, "kex_exchange_identification: "
                                 + _BANNER_FAULTS[exc.reason]),
                (LogLevel.INFO, f"banner exchange: Connection to {ip} port "
                                f"{port}: invalid format")]
    if isinstance(exc, LoginTimeout):
        banner: list[Message] = [
            (LogLevel.ERROR, "Connection timed out during banner exchange")
        ] if isinstance(exc, BannerTimeout) else []
        return banner + [
            (LogLevel.INFO, f"Connection to {ip} port {port} timed out")]
    if not version_seen and addr and isinstance(exc, ConnectionResetError):
        return [(LogLevel.ERROR, "kex_exchange_identification: read: "
                                 "Connection reset by peer"),
                (LogLevel.INFO, f"Connection reset by {ip} port {port}")]
    if not version_seen and isinstance(exc, (
            asyncssh.ConnectionLost, BrokenPipeError, ConnectionResetError)):
        # (a ProxyCommand's socket pair resets where ssh's pipes close)
        return [(LogLevel.ERROR, "kex_exchange_identification: "
                                 "Connection closed by remote host"),
                (LogLevel.INFO, f"Connection closed by {ip} port {port}")]
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        match = re.match(r"No matching (.+) algorithm found, sent .* "
                         r"and received (.*)$", exc.reason)
        if match:
            what = _KEX_WORDS.get(match.group(1), match.group(1))
            return [(LogLevel.ERROR,
                     f"Unable to negotiate with {ip} port {port}: no "
                     f"matching {what} found. Their offer: "
                     f"{match.group(2)}")]
    if isinstance(exc, (asyncssh.ConnectionLost, BrokenPipeError)):
        # (a write into a connection the server has closed, after the
        # version line: not a failure to connect)
        return [(LogLevel.FATAL, f"Connection closed by {ip} port {port}")]
    if isinstance(exc, ConnectionResetError):
        return [(LogLevel.FATAL, f"Connection reset by {ip} port {port}")]
    if isinstance(exc, asyncssh.DisconnectError):
        return [(LogLevel.INFO,
                 f"Received disconnect from {ip} port {port}:{exc.code}:"
                 f" {exc.reason}"),
                (LogLevel.FATAL, f"Disconnected from {ip} port {port}")]
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return [(LogLevel.ERROR, f"ssh: connect to host {r.hostname} "
                                 f"port {r.port}: {reason}")]
    return [(LogLevel.FATAL, f"ssh: {exc}")]
