"""SSH connections on asyncssh that behave like OpenSSH's ssh.

:class:`Connector` turns an :class:`SSHTarget` (the ssh part of sftp's
command line) into asyncssh connections: ssh_config files and ``-o``
options through asyncssh's own ssh_config parser, host keys with
:mod:`psftp_shell.hostkeys`, authentication with :mod:`psftp_shell.auth`.
Failures raise :class:`ConnectError` worded like ssh's stderr followed by
sftp's ``Connection closed``.  :func:`open_sftp_channel` starts the SFTP
subsystem (or a server command) on a connection.

Command-line options go first in a small generated ssh_config file that
both asyncssh and psftp-shell parse ahead of the user's files, so that
"first value wins" gives them precedence exactly as in ssh.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import getpass
import ipaddress
import logging
import os
import re
import shlex
import socket
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, cast

import asyncssh
from asyncssh.config import SSHClientConfig
from asyncssh.encryption import get_default_encryption_algs

from psftp_shell import __version__
from psftp_shell.auth import (
    DEFAULT_IDENTITIES,
    AuthContext,
    AuthSession,
    AuthSettings,
    LogLevel,
    Prompter,
    PromptRefused,
    parse_log_level,
)
from psftp_shell.errors import ConnectionClosed, FatalError
from psftp_shell.hostkeys import (
    DEFAULT_GLOBAL_FILES,
    DEFAULT_USER_FILES,
    VERIFY_FAILED,
    HostIdentity,
    HostKeyPolicy,
    KnownHosts,
    Message,
    Outcome,
    StrictMode,
    host_identity,
    parse_strict,
)

DEFAULT_PORT = 22
USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
_MAX_JUMP_DEPTH = 8

# ----------------------------------------------------------------------
# OpenSSH 9.2's client options, as ssh sorts them.

_DEPRECATED = frozenset({
    "protocol", "cipher", "fallbacktorsh", "globalknownhostsfile2",
    "rhostsauthentication", "userknownhostsfile2", "useroaming", "usersh",
    "useprivilegedport",
})
_SSH_UNSUPPORTED = frozenset({
    "afstokenpassing", "kerberosauthentication", "kerberostgtpassing",
    "rsaauthentication", "rhostsrsaauthentication", "compressionlevel",
})
# Options that sftp overrides or that mean nothing for an SFTP session.
_IRRELEVANT = frozenset({
    "forwardx11", "forwardx11trusted", "forwardx11timeout",
    "exitonforwardfailure", "xauthlocation", "gatewayports",
    "remoteforward", "localforward", "dynamicforward", "permitremoteopen",
    "clearallforwardings", "escapechar", "enableescapecommandline",
    "permitlocalcommand", "localcommand", "requesttty", "remotecommand",
    "sessiontype", "stdinnull", "forkafterauthentication", "tunnel",
    "tunneldevice", "streamlocalbindmask", "streamlocalbindunlink",
    "syslogfacility", "logverbose", "host", "match", "include",
})
_OTHER_OPTIONS = frozenset({
    "gssapiauthentication", "gssapidelegatecredentials", "pkcs11provider",
    "smartcarddevice", "forwardagent", "passwordauthentication",
    "kbdinteractiveauthentication", "kbdinteractivedevices",
    "challengeresponseauthentication", "skeyauthentication",
    "tisauthentication", "pubkeyauthentication", "dsaauthentication",
    "hostbasedauthentication", "identityfile", "identityfile2",
    "identitiesonly", "certificatefile", "addkeystoagent", "identityagent",
    "hostname", "hostkeyalias", "proxycommand", "port", "ciphers", "macs",
    "user", "globalknownhostsfile", "userknownhostsfile",
    "connectionattempts", "batchmode", "checkhostip",
    "stricthostkeychecking", "compression", "tcpkeepalive", "keepalive",
    "numberofpasswordprompts", "loglevel", "preferredauthentications",
    "hostkeyalgorithms", "casignaturealgorithms", "bindaddress",
    "bindinterface", "enablesshkeysign", "verifyhostkeydns",
    "nohostauthenticationforlocalhost", "rekeylimit", "connecttimeout",
    "addressfamily", "serveraliveinterval", "serveralivecountmax",
    "sendenv", "setenv", "controlpath", "controlmaster", "controlpersist",
    "hashknownhosts", "visualhostkey", "kexalgorithms", "ipqos",
    "proxyusefdpass", "canonicaldomains", "canonicalizefallbacklocal",
    "canonicalizehostname", "canonicalizemaxdots",
    "canonicalizepermittedcnames", "revokedhostkeys", "fingerprinthash",
    "updatehostkeys", "hostbasedacceptedalgorithms", "hostbasedkeytypes",
    "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes", "ignoreunknown",
    "proxyjump", "securitykeyprovider", "knownhostscommand",
    "requiredrsasize",
})
SSH_OPTIONS = _DEPRECATED | _SSH_UNSUPPORTED | _IRRELEVANT | _OTHER_OPTIONS

# The options psftp-shell reads itself (asyncssh's parser ignores them).
_PROJECT_OPTIONS = frozenset({
    "stricthostkeychecking", "batchmode", "hashknownhosts", "loglevel",
    "numberofpasswordprompts",
})
# The options asyncssh's ssh_config parser understands.
_ASYNCSSH_OPTIONS = frozenset(SSHClientConfig._handlers)
HONOURED_OPTIONS = (_ASYNCSSH_OPTIONS | _PROJECT_OPTIONS) & SSH_OPTIONS


@dataclass(slots=True)
class SSHTarget:
    """The ssh part of an sftp command line."""

    host: str
    port: int | None = None
    user: str | None = None
    config_file: str | None = None      # -F; "none" reads no file
    options: list[str] = field(default_factory=list)     # -o, in order
    identities: list[str] = field(default_factory=list)  # -i
    jump: str | None = None             # -J
    cipher: str | None = None           # -c
    compression: bool = False           # -C
    family: int = 0                     # 0, 4 or 6 (-4/-6)
    forward_agent: bool = False         # -A
    batch_mode: bool = False            # sftp -b: -obatchmode yes
    verbose: int = 0                    # -v count
    quiet: bool = False                 # -q: ssh's LogLevel QUIET


# The banner names OpenSSH compatibility: SFTP servers (asyncssh's among
# them) send SYMLINK's arguments in OpenSSH's order only to clients whose
# banner says OpenSSH, and psftp-shell uses that order as sftp does.
CLIENT_VERSION = f"psftp-shell_{__version__} OpenSSH-compatible"


def preferred_ciphers() -> list[str]:
    """asyncssh's ciphers with AES-GCM first: it costs the least CPU.

    Used only where neither ``-c`` nor a ``Ciphers`` line chose.
    """
    gcm = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    defaults = [alg.decode("ascii")
                for alg in get_default_encryption_algs()]
    return [a for a in gcm if a in defaults] + [
        a for a in defaults if a not in gcm]


class ConnectError(ConnectionClosed):
    """A failed connection: ssh's stderr, then sftp's last words.

    ``str(exc)`` is the text sftp prints for ``-b`` and ``-q``, lines
    joined by newlines; :attr:`stderr` is the same with ssh's line ends
    (``\\r\\n``), to be written as it is.  :attr:`ssh_lines` is ssh's
    part alone, for front ends that print sftp's interactive
    ``Connection closed.`` notice in between.
    """

    def __init__(self, ssh_lines: Sequence[str]) -> None:
        self.ssh_lines = list(ssh_lines)
        super().__init__("".join(line + "\r\n" for line in self.ssh_lines))
        self.args = ("\n".join([*self.ssh_lines, "Connection closed"]),)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def stderr(self) -> str:
        """The exact stderr text, as ssh and sftp write it."""
        return "".join(line + "\r\n"
                       for line in [*self.ssh_lines, "Connection closed"])


# ----------------------------------------------------------------------
# Configuration

def _set_strict(config: SSHClientConfig, option: str,
                args: list[str]) -> None:
    value = args.pop(0)
    try:
        mode = parse_strict(value)
    except ValueError:
        config._error(f'unsupported option "{value}".')
    config._options.setdefault(option, mode)


def _set_log_level(config: SSHClientConfig, option: str,
                   args: list[str]) -> None:
    value = args.pop(0)
    try:
        level = parse_log_level(value)
    except ValueError:
        config._error(f"unsupported log level '{value}'")
    config._options.setdefault(option, level)


class _ProjectConfig(SSHClientConfig):
    """asyncssh's client config parser, plus the options ssh's policy needs.
    """

    _percent_expand = SSHClientConfig._percent_expand | {
        "UserKnownHostsFile", "GlobalKnownHostsFile"}
    _handlers = {**SSHClientConfig._handlers, **{
        name.lower(): (name, handler) for name, handler in (
            ("StrictHostKeyChecking", _set_strict),
            ("BatchMode", SSHClientConfig._set_bool),
            ("HashKnownHosts", SSHClientConfig._set_bool),
            ("LogLevel", _set_log_level),
            ("NumberOfPasswordPrompts", SSHClientConfig._set_int),
        )}}


@dataclass(slots=True)
class Resolved:
    """A target after ssh_config: what ssh would connect to, and how."""

    hostname: str
    port: int
    user: str
    alias: str | None
    strict: StrictMode
    batch: bool
    hash_known_hosts: bool
    user_known_hosts: list[str]
    global_known_hosts: list[str]
    log_level: LogLevel
    password_prompts: int
    identities: list[str]
    default_identities: bool
    identities_only: bool
    agent_path: str | None
    forward_agent: str | None
    jump: str | None
    proxy_command: str | None
    connect_timeout: float | None
    family: int
    bind_address: str | None
    host_key_algorithms_set: bool
    ciphers_set: bool
    password_auth: bool
    kbdint_auth: bool


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _option_line(option: str, notes: list[Message]) -> str | None:
    """Check one ``-o`` value as ssh does; return its config line."""
    text = option.strip()
    match = re.match(r"([^\s=]+)\s*=?\s*(.*)$", text, re.S)
    if "\n" in text or "\r" in text or match is None:
        raise ConnectError([f"command-line: line 0: Bad configuration "
                            f"option: {text.lower()}"])
    keyword, value = match.group(1), match.group(2).strip()
    lower = keyword.lower()
    if lower not in SSH_OPTIONS:
        raise ConnectError(["command-line: line 0: Bad configuration "
                            f"option: {lower}"])
    if not value:
        raise ConnectError(["command-line line 0: Missing argument."])
    if lower in _DEPRECATED:
        return None
    if lower in _SSH_UNSUPPORTED:
        notes.append((LogLevel.ERROR,
                      f'command-line line 0: Unsupported option "{lower}"'))
        return None
    if lower not in HONOURED_OPTIONS and lower not in _IRRELEVANT:
        notes.append((LogLevel.ERROR,
                      f'Warning: option "{keyword}" is not supported by '
                      "psftp-shell; ignored."))
    return f"{keyword} {value}"


def command_line_config(target: SSHTarget
                        ) -> tuple[list[str], list[Message]]:
    """Return the config lines for the command line, and warnings."""
    quote = shlex.quote
    lines: list[str] = []
    notes: list[Message] = []
    if target.quiet:
        lines.append("LogLevel QUIET")
    elif target.verbose > 0:
        lines.append(f"LogLevel DEBUG{min(target.verbose, 3)}")
    if target.jump:
        lines.append(f"ProxyJump {quote(target.jump)}")
    if target.cipher:
        lines.append(f"Ciphers {quote(target.cipher)}")
    if target.compression:
        lines.append("Compression yes")
    if target.family in (4, 6):
        lines.append("AddressFamily " + ("inet" if target.family == 4
                                         else "inet6"))
    if target.forward_agent:
        lines.append("ForwardAgent yes")
    if target.batch_mode:
        lines.append("BatchMode yes")
    for identity in target.identities:
        path = os.path.expanduser(identity)
        try:
            os.stat(path)
        except OSError as exc:
            notes.append((LogLevel.QUIET,
                          f"Warning: Identity file {path} not accessible: "
                          f"{exc.strerror}."))
            continue
        lines.append(f"IdentityFile {quote(path)}")
    for option in target.options:
        line = _option_line(option, notes)
        if line is not None:
            lines.append(line)
    lines.append("ForwardAgent no")     # sftp's own, after the user's
    if target.port is not None:
        lines.append(f"Port {target.port}")
    if target.user is not None:
        lines.append(f"User {quote(target.user)}")
    return lines, notes


def config_paths(target: SSHTarget) -> list[str]:
    """Return the ssh_config files to read, as ssh would."""
    if target.config_file is not None:
        if target.config_file.lower() == "none":
            return []
        try:
            with open(target.config_file, "rb"):
                pass
        except OSError as exc:
            raise ConnectError([
                f"Can't open user config file {target.config_file}: "
                f"{exc.strerror}"]) from None
        return [target.config_file]
    paths = []
    for path in (os.path.expanduser(USER_CONFIG), SYSTEM_CONFIG):
        if os.access(path, os.R_OK):
            paths.append(path)
    return paths


def _expand_list(values: Iterable[str]) -> list[str]:
    return [os.path.expanduser(v) for v in values]


def _agent_path(value: object) -> str | None:
    if value is None:
        return None                 # IdentityAgent none
    if value == () or value == "SSH_AUTH_SOCK":
        path = os.environ.get("SSH_AUTH_SOCK", "")
    elif isinstance(value, str) and value.startswith("$"):
        path = os.environ.get(value[1:], "")
    else:
        path = os.path.expanduser(str(value))
    return path or None


def _forward_agent(value: object, agent: str | None) -> str | None:
    if value is True:
        return agent
    if isinstance(value, str) and value:
        return _agent_path(value)
    return None


def resolve(target: SSHTarget, paths: Sequence[str],
            local_user: str) -> Resolved:
    """Read the config *paths* for *target* as ssh would."""
    try:
        cfg = _ProjectConfig.load(None, paths, False, False, False,
                                  local_user, (), target.host, ())
        if cfg.has_match_final():
            cfg = _ProjectConfig.load(None, paths, False, False, True,
                                      local_user, (), target.host, ())
    except (ValueError, OSError) as exc:
        raise ConnectError([str(exc)]) from None
    get = cfg.get
    hostname = str(get("Hostname", target.host))
    if not _is_address(hostname):
        hostname = hostname.lower()
    alias = cast("str | None", get("HostKeyAlias"))
    batch = bool(get("BatchMode", False))
    identities = get("IdentityFile")
    if identities is None:
        identities = list(DEFAULT_IDENTITIES)
    agent = _agent_path(get("IdentityAgent", ()))
    timeout = get("ConnectTimeout")
    return Resolved(
        hostname=hostname,
        port=int(cast(int, get("Port", DEFAULT_PORT))),
        user=str(get("User", local_user)),
        alias=alias.lower() if alias else None,
        strict=cast(StrictMode, get("StrictHostKeyChecking", StrictMode.ASK)),
        batch=batch,
        hash_known_hosts=bool(get("HashKnownHosts", False)),
        user_known_hosts=_expand_list(cast(
            "list[str]", get("UserKnownHostsFile", DEFAULT_USER_FILES))),
        global_known_hosts=_expand_list(cast(
            "list[str]", get("GlobalKnownHostsFile", DEFAULT_GLOBAL_FILES))),
        log_level=cast(LogLevel, get("LogLevel", LogLevel.INFO)),
        password_prompts=0 if batch else int(
            cast(int, get("NumberOfPasswordPrompts", 3))),
        identities=_expand_list(cast("list[str]", identities)),
        default_identities=get("IdentityFile") is None,
        identities_only=bool(get("IdentitiesOnly", False)),
        agent_path=agent,
        forward_agent=_forward_agent(get("ForwardAgent", False), agent),
        jump=cast("str | None", get("ProxyJump")),
        proxy_command=cast("str | None", get("ProxyCommand")),
        connect_timeout=float(cast(int, timeout)) if timeout else None,
        family=int(cast(int, get("AddressFamily", socket.AF_UNSPEC))),
        bind_address=cast("str | None", get("BindAddress")),
        host_key_algorithms_set=get("HostKeyAlgorithms") is not None,
        ciphers_set=get("Ciphers") is not None,
        password_auth=bool(get("PasswordAuthentication", True)),
        kbdint_auth=bool(get("KbdInteractiveAuthentication",
                             get("ChallengeResponseAuthentication", True))),
    )


# ----------------------------------------------------------------------
# Logging

_logging_configured = False


def configure_logging(verbose: int) -> None:
    """Send asyncssh's debug log to stderr for ``-v`` (once per process)."""
    global _logging_configured
    if verbose <= 0 or _logging_configured:
        return
    _logging_configured = True
    level = min(verbose, 3)
    asyncssh.set_debug_level(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"debug{level}: %(message)s"))
    log = logging.getLogger("asyncssh")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False


# ----------------------------------------------------------------------
# The connection


def _default_host_key_algs() -> list[bytes]:
    """asyncssh's default server host key algorithms (internal API)."""
    from asyncssh.public_key import (
        get_default_certificate_algs,
        get_default_public_key_algs,
    )
    return list(get_default_certificate_algs()) + \
        list(get_default_public_key_algs())


@dataclass(slots=True)
class _Transport:
    """How one connection reaches the server."""

    sock: socket.socket | None = None
    tunnel: asyncssh.SSHClientConnection | None = None
    addr: str | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.tunnel is not None:
            self.tunnel.close()


class _Client(asyncssh.SSHClient):
    """asyncssh's callbacks, answered the way ssh would."""

    def __init__(self, attempt: _Attempt) -> None:
        self._attempt = attempt

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        return self._attempt.host_key(key)

    def auth_banner_received(self, msg: str, lang: str) -> None:
        text = msg[:-1] if msg.endswith("\n") else msg
        self._attempt.connector.notify(LogLevel.INFO, text)

    def auth_completed(self) -> None:
        self._attempt.session.close()

    async def public_key_auth_requested(
            self) -> asyncssh.SSHKeyPair | None:
        return await self._attempt.session.next_key()

    async def password_auth_requested(
            self) -> str | None:
        return await self._attempt.session.password()

    def kbdint_auth_requested(self) -> str | None:
        return self._attempt.session.kbdint_start()

    async def kbdint_challenge_received(
            self, name: str, instructions: str, lang: str,
            prompts: Sequence[tuple[str, bool]]) -> list[str] | None:
        return await self._attempt.session.kbdint_answers(
            name, instructions, prompts)


class _Attempt:
    """One try at one connection."""

    def __init__(self, connector: Connector, session: AuthSession,
                 policy: HostKeyPolicy) -> None:
        self.connector = connector
        self.session = session
        self.policy = policy
        self.client = _Client(self)
        self.ident: HostIdentity | None = None
        self.outcome: Outcome | None = None
        self.transport = _Transport()

    def host_key(self, key: asyncssh.SSHKey) -> bool:
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
        self._local_user = getpass.getuser()
        self.resolved: Resolved | None = None
        self._paths: list[str] = []
        self._finalizer: weakref.finalize[Any, Connector] | None = None
        self._log_level = LogLevel.QUIET if target.quiet else LogLevel.INFO
        self._first = asyncio.Lock()
        self._prompt_lock = asyncio.Lock()
        self._established = False
        self._failure: ConnectError | None = None
        self._policy: HostKeyPolicy | None = None
        self._auth: AuthContext | None = None
        self._jump: Connector | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        configure_logging(target.verbose)

    # -- user interaction --------------------------------------------

    def notify(self, level: LogLevel, text: str) -> None:
        """Tell the user *text* if LogLevel allows it."""
        if level <= self._log_level:
            self.prompter.tell(text)

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
        """Ask the user, one question at a time, off the event loop."""
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
        fd, name = tempfile.mkstemp(prefix="psftp-shell-", suffix=".conf")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write("".join(line + "\n" for line in lines))
        self._finalizer = weakref.finalize(self, _unlink, name)
        self._paths = [name, *paths]
        try:
            r = resolve(self.target, self._paths, self._local_user)
        except ConnectError as exc:
            text = [line.replace(name, "command-line") for line in
                    exc.ssh_lines]
            raise ConnectError(text) from None
        self._log_level = r.log_level
        for note in notes:
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

    def close(self) -> None:
        """Remove the generated config file; close jump connectors."""
        if self._finalizer is not None:
            self._finalizer()
        if self._jump is not None:
            self._jump.close()

    # -- connecting ----------------------------------------------------

    async def connect(self) -> asyncssh.SSHClientConnection:
        """Open one authenticated connection, or raise ConnectError."""
        if not self._established:
            async with self._first:
                if self._failure is not None:
                    raise self._failure
                if not self._established:
                    try:
                        conn = await self._connect()
                    except ConnectError as exc:
                        self._failure = exc
                        raise
                    self._established = True
                    return conn
        return await self._connect()

    async def _connect(self) -> asyncssh.SSHClientConnection:
        r = self._setup()
        assert self._policy is not None
        for _ in range(4):
            attempt = _Attempt(self, self.auth.session(), self._policy)
            try:
                conn = await self._open(r, attempt)
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
                raise self.error(self._describe(exc, r, attempt)) from None
            if r.forward_agent and self._policy.mitm and \
                    attempt.outcome is not None:
                # the key check turned agent forwarding off: start again
                conn.close()
                r.forward_agent = None
                continue
            return conn
        raise self.error([VERIFY_FAILED])

    async def _confirm(self, attempt: _Attempt) -> bool:
        outcome = attempt.outcome
        if outcome is None or outcome.question is None:
            return False
        assert self._policy is not None and attempt.ident is not None
        return await self._policy.confirm(outcome, attempt.ident, self.ask)

    async def _open(self, r: Resolved, attempt: _Attempt
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
        if r.batch:
            kwargs.update(kbdint_auth=False, password_auth=False)
        if not r.ciphers_set:
            kwargs["encryption_algs"] = preferred_ciphers()
        known_algs = self._policy.host_key_algorithms(ident)
        if known_algs and not r.host_key_algorithms_set:
            algs = known_algs + [a for a in _default_host_key_algs()
                                 if a not in known_algs]
            kwargs["server_host_key_algs"] = [a.decode("ascii")
                                              for a in algs]
        if transport.sock is not None:
            kwargs["sock"] = transport.sock
        elif transport.tunnel is not None:
            kwargs["tunnel"] = transport.tunnel
        try:
            conn = await asyncssh.connect(self.target.host, **kwargs)
        except BaseException:
            transport.close()
            raise
        if transport.tunnel is not None:
            self._close_with(conn, transport.tunnel)
        return conn

    def _close_with(self, conn: asyncssh.SSHClientConnection,
                    tunnel: asyncssh.SSHClientConnection) -> None:
        async def watch() -> None:
            await conn.wait_closed()
            tunnel.close()
        task = asyncio.get_running_loop().create_task(watch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _transport(self, r: Resolved) -> _Transport:
        if r.jump:
            return _Transport(tunnel=await self._jump_connection(r.jump))
        if r.proxy_command:
            return _Transport()
        sock = await self._open_socket(r)
        try:
            addr = str(sock.getpeername()[0])
        except OSError:
            addr = r.hostname
        return _Transport(sock=sock, addr=addr)

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

    async def _open_socket(self, r: Resolved) -> socket.socket:
        """Connect a TCP socket the way ssh does, with ssh's errors."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                r.hostname, r.port, family=r.family,
                type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise self.error([(LogLevel.FATAL,
                               f"ssh: Could not resolve hostname "
                               f"{r.hostname}: {exc.strerror}")]) from None
        last = 0
        for family, kind, proto, _, addr in infos:
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
        raise self.error([(LogLevel.ERROR,
                           f"ssh: connect to host {r.hostname} port "
                           f"{r.port}: {reason}")])

    async def _server_methods(self, r: Resolved, attempt: _Attempt) -> str:
        """Ask the server which methods it offers (for the error text)."""
        transport: _Transport | None = None
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

    def _describe(self, exc: BaseException, r: Resolved,
                  attempt: _Attempt) -> list[Message]:
        """Word an asyncssh or socket failure the way ssh does."""
        addr = attempt.transport.addr
        ip, port = (addr, r.port) if addr else ("UNKNOWN", 65535)
        if isinstance(exc, asyncssh.KeyExchangeFailed):
            match = re.match(r"No matching (.+) algorithm found, sent .* "
                             r"and received (.*)$", exc.reason)
            if match:
                what = _KEX_WORDS.get(match.group(1), match.group(1))
                return [(LogLevel.ERROR,
                         f"Unable to negotiate with {ip} port {port}: no "
                         f"matching {what} found. Their offer: "
                         f"{match.group(2)}")]
        if isinstance(exc, asyncssh.ConnectionLost):
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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """Split one ``-J`` hop, ``[user@]host[:port]`` or ``ssh://...``."""
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://"):].rstrip("/")
    user, _, hostport = spec.rpartition("@")
    port: str | None = None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    else:
        host = hostport
    if port is not None and not port.isdigit():
        raise ConnectError([f"Invalid -J argument: {spec}"])
    return user or None, host, int(port) if port else None


# ----------------------------------------------------------------------
# The SFTP channel


class SFTPChannelReader:
    """The server's output on an SFTP channel.

    Before an end of file is reported, whatever the server wrote to its
    stderr has been copied to ours, so that it comes before the
    ``Connection closed`` that follows.
    """

    def __init__(self, reader: asyncssh.SSHReader[bytes],
                 stderr_task: asyncio.Task[None]) -> None:
        self._reader = reader
        self._stderr_task = stderr_task

    async def _flush_stderr(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
        except (TimeoutError, asyncio.CancelledError):
            pass

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes (``asyncio.IncompleteReadError`` at EOF).
        """
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError:
            await self._flush_stderr()
            raise

    async def read(self, n: int = -1) -> bytes:
        """Read up to *n* bytes (``b""`` at EOF)."""
        data = await self._reader.read(n)
        if not data:
            await self._flush_stderr()
        return data

    def at_eof(self) -> bool:
        """Whether the server has closed its output."""
        return self._reader.at_eof()


async def _copy_stderr(reader: asyncssh.SSHReader[bytes],
                       out: Callable[[], IO[bytes] | None]) -> None:
    while True:
        try:
            data = await reader.read(65536)
        except (asyncssh.Error, OSError):
            return
        if not data:
            return
        stream = out()
        if stream is not None:
            stream.write(data)
            stream.flush()


def _stderr_buffer() -> IO[bytes] | None:
    return getattr(sys.stderr, "buffer", None)


_channel_tasks: set[asyncio.Task[None]] = set()


async def open_sftp_channel(
        conn: asyncssh.SSHClientConnection, subsystem: str = "sftp", *,
        window: int | None = None, max_pktsize: int | None = None,
        stderr: Callable[[], IO[bytes] | None] = _stderr_buffer,
) -> tuple[SFTPChannelReader, asyncssh.SSHWriter[bytes]]:
    """Start SFTP on *conn*: a subsystem, or a command if it has a ``/``.

    Returns a binary reader (``readexactly``) and writer (``write``,
    ``drain``, ``close``).  The server's stderr is copied to ours.
    """
    kwargs: dict[str, Any] = dict(encoding=None, request_pty=False,
                                  term_type=None, x11_forwarding=False)
    if window:
        kwargs["window"] = window
    if max_pktsize:
        kwargs["max_pktsize"] = max_pktsize
    if "/" in subsystem:
        kwargs["command"] = subsystem
        what = "exec"
    else:
        kwargs.update(command=None, subsystem=subsystem)
        what = "subsystem"
    try:
        writer, reader, err = await conn.open_session(**kwargs)
    except asyncssh.ChannelOpenError as exc:
        if "request failed" in exc.reason.lower():
            raise ConnectError([f"{what} request failed on channel 0"]) \
                from None
        raise ConnectError([f"channel 0: open failed: {exc.reason}"]) \
            from None
    except (asyncssh.Error, OSError) as exc:
        raise ConnectError([str(exc)]) from None
    task = asyncio.get_running_loop().create_task(_copy_stderr(err, stderr))
    _channel_tasks.add(task)
    task.add_done_callback(_channel_tasks.discard)
    return SFTPChannelReader(reader, task), writer
