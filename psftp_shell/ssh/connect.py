"""SSH connections on asyncssh that behave like OpenSSH's ssh.

:class:`Connector` turns an :class:`SSHTarget` (the ssh part of sftp's
command line) into asyncssh connections: ssh_config files and ``-o``
options with :mod:`psftp_shell.ssh.ssh_config`, host keys with
:mod:`psftp_shell.ssh.hostkeys`, authentication with
:mod:`psftp_shell.ssh.auth`. Failures raise :class:`ConnectError` worded like
ssh's stderr followed by sftp's ``Connection closed``.
:mod:`psftp_shell.ssh.channel` starts the SFTP subsystem (or a server command)
on a connection.

Command-line options go first in a small generated ssh_config file (in
memory, :mod:`psftp_shell.ssh.options_file`) that both asyncssh and
psftp-shell parse ahead of the user's files, so that "first value wins"
gives them precedence exactly as in ssh.  The ciphers and host key
algorithms offered, in order, are :mod:`psftp_shell.ssh.algorithm_prefs`;
``-v``'s debug log is :mod:`psftp_shell.ssh.ssh_logging`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Any

import asyncssh

from psftp_shell import __version__
from psftp_shell.core.errors import FatalError
from psftp_shell.ssh import held_logins, quicklogin
from psftp_shell.ssh.algorithm_prefs import host_key_algs, preferred_ciphers
from psftp_shell.ssh.attempt import (
    Attempt,
    Client,
    Transport,
    describe_failure,
    lost_words,
    open_socket,
)
from psftp_shell.ssh.auth import AuthContext, AuthSettings, LogLevel
from psftp_shell.ssh.held_logins import HeldLogin, HeldLoginLost, HeldLogins
from psftp_shell.ssh.hostkeys import (
    VERIFY_FAILED,
    HostKeyPolicy,
    Message,
    host_identity,
)
from psftp_shell.ssh.kex_probe import negotiation_failure, offered_lists
from psftp_shell.ssh.known_hosts import KnownHosts
from psftp_shell.ssh.options_file import OptionsFile
from psftp_shell.ssh.prompter import Prompter, PromptRefused
from psftp_shell.ssh.proxy_command import ProxyProcess
from psftp_shell.ssh.ssh_config import (
    DEFAULT_PORT,
    Resolved,
    command_line_config,
    config_paths,
    parse_jump,
    resolve,
)
from psftp_shell.ssh.ssh_logging import configure_logging
from psftp_shell.ssh.target import ConnectError, SSHTarget
from psftp_shell.ssh.tokens import local_user_name

__all__ = ["CLIENT_VERSION", "ConnectError", "Connector", "SSHTarget"]

_MAX_JUMP_DEPTH = 8

# The banner names OpenSSH compatibility: SFTP servers (asyncssh's among
# them) send SYMLINK's arguments in OpenSSH's order only to clients whose
# banner says OpenSSH, and psftp-shell uses that order as sftp does.
CLIENT_VERSION = f"psftp-shell_{__version__} OpenSSH-compatible"


class Connector:
    """Opens the SSH connections of one session (``-n`` of them).

    :meth:`connect` may run many times at once.  Until one connection has
    succeeded, the others wait for it, so the host key question and every
    password or passphrase are asked once and the answers are reused; if
    it fails, they all fail with its error.  Later connections run freely
    with the cached answers.
    """

    def __init__(self, target: SSHTarget, prompter: Prompter, *,
                 _depth: int = 0) -> None:
        self.target = target
        self.prompter = prompter
        self._depth = _depth
        self._local_user = local_user_name()     # ssh's: getpwuid
        self.resolved: Resolved | None = None
        self._paths: list[str] = []
        self._options_file: OptionsFile | None = None
        self._log_level = LogLevel.QUIET if target.quiet else LogLevel.INFO
        self._first = asyncio.Lock()
        self._prompt_lock = asyncio.Lock()
        self._established = False
        self.overlap = False
        """Whether later connections may log in while the first does."""
        self.held_count = 0
        """Logins to hold beside the first, for the streams that follow
        it (:mod:`psftp_shell.ssh.held_logins`)."""
        self._held = HeldLogins()
        self._told: set[str] = set()    # what the user was shown
        self._failure: ConnectError | None = None
        self._policy: HostKeyPolicy | None = None
        self._auth: AuthContext | None = None
        self._jump: Connector | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._owners: dict[int, Client] = {}    # asyncssh forgets them
        configure_logging(target.verbose)

    # -- user interaction --------------------------------------------

    def notify(self, level: LogLevel, text: str) -> None:
        """Tell the user *text* if LogLevel allows it (a held login's
        is kept: :mod:`psftp_shell.ssh.held_logins`)."""
        if level <= self._log_level:
            held = held_logins.current()
            if held is None:
                if not getattr(self.prompter, "quiet", False):
                    self._told.add(text)    # (not a hushed one's)
                self.prompter.tell(text)
            elif text not in self._told:    # (the same banner: no news)
                held.spoke = True

    def error(self, messages: Iterable[Message | str]) -> ConnectError:
        """Return a :class:`ConnectError` with the lines LogLevel shows."""
        lines = []
        for item in messages:
            level, text = ((LogLevel.FATAL, item) if isinstance(item, str)
                           else item)
            if level <= self._log_level:
                lines.append(text)
        return ConnectError(lines)

    async def ask(self, prompt: str, echo: bool) -> str:
        """Ask the user, one question at a time, off the event loop (a
        held login is refused)."""
        held = held_logins.current()
        if held is not None:
            held.spoke = True
            raise HeldLoginLost(prompt)
        async with self._prompt_lock:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                None, functools.partial(self.prompter.ask, prompt,
                                        echo=echo))
            try:
                return await future
            except asyncio.CancelledError:
                cancel = getattr(self.prompter, "cancel", None)
                if callable(cancel):
                    cancel()
                raise
            except PromptRefused:
                return ""

    @property
    def auth(self) -> AuthContext:
        """The authentication state shared by this session's connections."""
        assert self._auth is not None
        return self._auth

    # -- setup ---------------------------------------------------------

    def _setup(self) -> Resolved:
        """Resolve the configuration once; set up host keys and auth."""
        if self.resolved is not None:
            return self.resolved
        if self._depth > _MAX_JUMP_DEPTH:
            raise ConnectError(["ssh: too many jump hosts"])
        lines, notes = command_line_config(self.target)
        paths = config_paths(self.target)
        self._options_file = OptionsFile(lines)
        name = self._options_file.path
        self._paths = [name, *paths]
        try:
            r = resolve(self.target, self._paths, self._local_user, lines)
        except ConnectError as exc:
            text = [line.replace(name, "command-line") for line in
                    exc.ssh_lines]
            raise ConnectError(text) from None
        self._log_level = r.log_level
        for note in [*notes, *((LogLevel.ERROR, n) for n in r.notes)]:
            self.notify(*note)
        unsafe = []
        if r.password_auth:
            unsafe.append("Password authentication is disabled to avoid "
                          "man-in-the-middle attacks.")
        if r.kbdint_auth:
            unsafe.append("Keyboard-interactive authentication is disabled"
                          " to avoid man-in-the-middle attacks.")
        if r.forward_agent:
            unsafe.append("Agent forwarding is disabled to avoid "
                          "man-in-the-middle attacks.")
        known = KnownHosts(r.user_known_hosts, r.global_known_hosts)
        self._policy = HostKeyPolicy(
            known, r.strict, hash_hosts=r.hash_known_hosts, batch=r.batch,
            notify=self.notify, unsafe_notes=unsafe)
        self._auth = AuthContext(
            AuthSettings(user=r.user, host=r.alias or r.hostname,
                         batch=r.batch, password_prompts=r.password_prompts,
                         identities=r.identities,
                         default_identities=r.default_identities,
                         identities_only=r.identities_only,
                         agent_path=r.agent_path),
            self.ask, self.notify)
        self.resolved = r
        return r

    def last_words(self, conn: asyncssh.SSHClientConnection) -> str:
        """ssh's line on why *conn* ended, if it has one ("" if not)."""
        owner = self._owners.get(id(conn))
        reason = owner.lost_reason if owner is not None else None
        if self.resolved is None:
            return ""
        words = lost_words(reason, self.resolved)
        if words is None or words[0] > self._log_level:
            return ""
        return words[1] + "\r\n"

    def close(self) -> None:
        """Release the command line's config file; close jump connectors."""
        if self._options_file is not None:
            self._options_file.close()
        if self._jump is not None:
            self._jump.close()

    # -- connecting ----------------------------------------------------

    async def connect(self) -> asyncssh.SSHClientConnection:
        """Open one authenticated connection, or raise ConnectError.

        Connections asked for while the first one is still logging in
        wait for it, so that questions are asked once; with
        :attr:`overlap` set and BatchMode on (nothing can be asked) they
        log in alongside it instead.  When the first one offers a key
        whose signature asks nothing, it starts :attr:`held_count` logins
        beside it, held before they authenticate until it has succeeded;
        later connections take those first.
        """
        if self.overlap and self._first.locked() and \
                self.resolved is not None and self.resolved.batch:
            return await self._connect()
        if not self._established:
            async with self._first:
                if self._failure is not None:
                    raise self._failure
                if not self._established:
                    try:
                        conn = await self._connect(on_key=self._start_held)
                    except BaseException as exc:
                        if isinstance(exc, ConnectError):
                            self._failure = exc
                        self._held.drop()
                        raise
                    self._established = True
                    if self._auth is not None and self._auth.kbdint_used:
                        # one-time codes: not tried again
                        self._held.drop()
                    self._held.release()
                    return conn
        held = await self._held.claim()
        return held if held is not None else await self._connect()

    def _start_held(self) -> None:
        """Hold :attr:`held_count` logins beside the first one, where
        they can neither show nor ask anything and will most likely be
        used: not through a ProxyCommand or jump host, nor under ``-v``,
        nor when BatchMode lets them log in in full (:attr:`overlap`),
        nor to a host whose key known_hosts does not hold (nor one taken
        although it differs from known_hosts'), nor where asyncssh's
        internals are not the reviewed ones (the hold of their
        authentication relies on them: see
        :mod:`~psftp_shell.ssh.quicklogin`).

        Called when the first one offers a key whose signature asks
        nothing (in memory or an agent's): it will most likely succeed
        without a question, the server has taken that connection (the
        held ones cannot push it over MaxStartups), and its host key has
        passed.  A login without such a key (a password, an encrypted
        key's passphrase, keyboard-interactive) holds none: those are
        the ones that fail on a mistyped answer or wait for the user,
        and each held login given up adds to the server's penalties.
        """
        count, self.held_count = self.held_count, 0
        r = self.resolved
        if r is None or count <= 0 or r.proxy_command or r.jump or \
                self.target.verbose or (self.overlap and r.batch) or \
                quicklogin.problem() is not None:
            return
        assert self._policy is not None
        name = host_identity(r.hostname, r.port, r.alias, None).name
        if not self._policy.mitm and any(self._policy.known.trusted(name)):
            self._held.start(count, self._connect)

    async def close_held(self) -> None:
        """Give up the logins still held and wait until they are gone."""
        await self._held.close()

    async def _connect(self, held: HeldLogin | None = None, *,
                       on_key: Callable[[], None] | None = None
                       ) -> asyncssh.SSHClientConnection:
        r = self._setup()
        assert self._policy is not None
        for _ in range(4):
            attempt = Attempt(self, self.auth.session(), self._policy, held,
                              on_key)
            try:
                conn = await self._open_or_lose(r, attempt)
            except asyncssh.HostKeyNotVerifiable:
                attempt.session.close()
                if await self._confirm(attempt):
                    continue
                outcome = attempt.outcome
                failure = outcome.failure if outcome else []
                raise self.error(failure or [VERIFY_FAILED]) from None
            except asyncssh.PermissionDenied:
                attempt.session.close()
                methods = await self._server_methods(r, attempt)
                raise self.error([f"{r.user}@{r.hostname}: Permission "
                                  f"denied ({methods})."]) from None
            except (asyncssh.Error, OSError, ValueError) as exc:
                attempt.session.close()
                words = describe_failure(exc, r, attempt.transport.addr,
                                         attempt.client.version_seen)
                if attempt.hung_up_in_kex and isinstance(exc, (
                        asyncssh.ConnectionLost, ConnectionError)):
                    words = await negotiation_failure(
                        functools.partial(self._transport, r), r,
                        functools.partial(offered_lists, self._paths,
                                          self.target.host, attempt.options),
                        "SSH-2.0-" + CLIENT_VERSION) or words
                raise self.error(words) from None
            if r.forward_agent and self._policy.mitm and \
                    attempt.outcome is not None:
                # the key check turned agent forwarding off: start again
                conn.close()
                r.forward_agent = None
                continue
            return conn
        raise self.error([VERIFY_FAILED])

    async def _open_or_lose(self, r: Resolved, attempt: Attempt
                            ) -> asyncssh.SSHClientConnection:
        """:meth:`_open`; a held login that fails while held, or that
        wanted a word, raises HeldLoginLost, neither worded nor probed as
        a failed login is."""
        held = attempt.held
        try:
            conn = await self._open(r, attempt)
        except Exception:
            lost = held.lost() if held else None
            if lost is None:
                raise
            attempt.session.close()
            raise lost from None
        if held is not None and (held.spoke or conn.is_closed()):
            conn.close()            # it had something to say, or it is
            await conn.wait_closed()    # gone: the stream logs in afresh
            raise HeldLoginLost()
        return conn

    async def _confirm(self, attempt: Attempt) -> bool:
        outcome = attempt.outcome
        if outcome is None or outcome.question is None:
            return False
        assert self._policy is not None and attempt.ident is not None
        return await self._policy.confirm(outcome, attempt.ident, self.ask)

    async def _open(self, r: Resolved, attempt: Attempt
                    ) -> asyncssh.SSHClientConnection:
        assert self._policy is not None
        transport = await self._transport(r)
        attempt.transport = transport
        ident = host_identity(r.hostname, r.port, r.alias, transport.addr)
        attempt.ident = ident
        kwargs: dict[str, Any] = dict(
            config=self._paths,
            client_factory=lambda: attempt.client,
            known_hosts=self._policy.known_hosts(ident),
            client_keys=None, agent_path=None, agent_identities=None,
            password=None, passphrase=None, connect_timeout=None,
            login_timeout=0, x509_trusted_certs=None,
            x509_trusted_cert_paths=[],
            agent_forwarding=r.forward_agent or False,
            request_pty=False, x11_forwarding=False,
            client_version=CLIENT_VERSION,
        )
        if r.user_by_default:       # asyncssh's default would be $USER's
            kwargs["username"] = r.user
        if r.batch:
            kwargs.update(kbdint_auth=False, password_auth=False)
        ciphers = preferred_ciphers(r.ciphers)
        if ciphers:
            kwargs["encryption_algs"] = ciphers
        host_keys = host_key_algs(self._policy.host_key_algorithms(ident),
                                  r.host_key_algorithms_set)
        if host_keys:
            kwargs["server_host_key_algs"] = host_keys
        attempt.options = dict(kwargs)
        if transport.sock is not None:
            kwargs["sock"] = transport.sock
        elif transport.tunnel is not None:
            kwargs["tunnel"] = transport.tunnel
        try:
            conn = await attempt.connect(self.target.host, kwargs)
        except BaseException:
            transport.close()
            raise
        if transport.tunnel is not None or transport.proxy is not None:
            self._close_with(conn, transport)
        self._owners[id(conn)] = attempt.client
        return conn

    def _close_with(self, conn: asyncssh.SSHClientConnection,
                    transport: Transport) -> None:
        async def watch() -> None:
            await conn.wait_closed()
            transport.close()
        task = asyncio.get_running_loop().create_task(watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _transport(self, r: Resolved) -> Transport:
        if r.jump:
            hops = [hop.strip() for hop in r.jump.split(",") if hop.strip()]
            _, host, port = parse_jump(hops[-1])
            if host == r.hostname and (port or DEFAULT_PORT) == r.port:
                raise self.error([f"jumphost loop via {host}"])
            return Transport(tunnel=await self._jump_connection(r.jump))
        if r.proxy_command:
            try:
                proxy = ProxyProcess(r.proxy_command)
            except OSError as exc:
                raise self.error([f"ssh: {exc.strerror}"]) from None
            return Transport(sock=proxy.sock, proxy=proxy)
        sock = await open_socket(r, self.error)
        try:
            addr = str(sock.getpeername()[0])
        except OSError:
            addr = r.hostname
        return Transport(sock=sock, addr=addr)

    async def _jump_connection(self, jump: str
                               ) -> asyncssh.SSHClientConnection:
        if self._jump is None:
            hops = [hop.strip() for hop in jump.split(",") if hop.strip()]
            user, host, port = parse_jump(hops[-1])
            self._jump = Connector(
                SSHTarget(host=host, port=port, user=user,
                          config_file=self.target.config_file,
                          jump=",".join(hops[:-1]) or None,
                          family=self.target.family,
                          batch_mode=self.target.batch_mode,
                          verbose=self.target.verbose,
                          quiet=self.target.quiet),
                self.prompter, _depth=self._depth + 1)
        try:
            return await self._jump.connect()
        except ConnectError as exc:
            raise ConnectError([
                *exc.ssh_lines,
                "kex_exchange_identification: Connection closed by remote "
                "host",
                "Connection closed by UNKNOWN port 65535"]) from None

    async def _server_methods(self, r: Resolved, attempt: Attempt) -> str:
        """Ask the server which methods it offers (for the error text)."""
        transport: Transport | None = None
        try:
            transport = await self._transport(r)
            kwargs: dict[str, Any] = {"config": self._paths}
            if transport.sock is not None:
                kwargs["sock"] = transport.sock
            elif transport.tunnel is not None:
                kwargs["tunnel"] = transport.tunnel
            methods = await asyncio.wait_for(
                asyncssh.get_server_auth_methods(self.target.host,
                                                 **kwargs), 15)
        except (asyncssh.Error, OSError, ValueError, FatalError):
            methods = attempt.session.methods_seen
        finally:
            if transport is not None:
                transport.close()
        return ",".join(methods)
