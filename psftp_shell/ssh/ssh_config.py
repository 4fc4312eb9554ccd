"""ssh_config and ``-o`` options, read the way OpenSSH's ssh reads them.

:func:`command_line_config` turns the command line into config lines
(checked as ssh checks ``-o``) that go first, ahead of the files from
:func:`config_paths`, so that "first value wins" gives them precedence
as in ssh.  :func:`resolve` reads them all with asyncssh's ssh_config
parser (extended with the options ssh's policy needs) into a
:class:`Resolved` target.  :func:`parse_jump` splits one ``-J`` hop.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from psftp_shell.ssh import config_reader as configreader
from psftp_shell.ssh.auth import DEFAULT_IDENTITIES, LogLevel
from psftp_shell.ssh.command_line_check import check_command_line
from psftp_shell.ssh.config_check import check_files
from psftp_shell.ssh.config_words import split_keyword
from psftp_shell.ssh.hostkeys import Message, StrictMode
from psftp_shell.ssh.known_hosts import (
    DEFAULT_GLOBAL_FILES,
    DEFAULT_USER_FILES,
)
from psftp_shell.ssh.readconf import (
    check_line,
    command_line_ignore,
    pattern_ignored,
)
from psftp_shell.ssh.refusals import ALIASES, refusal
from psftp_shell.ssh.target import ConnectError, SSHTarget
from psftp_shell.ssh.tokens import PATH_TOKENS, PROXY_TOKENS, expand, tokens

DEFAULT_PORT = 22
USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"

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

# The options asyncssh's ssh_config parser, or psftp-shell, understands.
HONOURED_OPTIONS = configreader.known_options() & SSH_OPTIONS


@dataclass(slots=True)
class Resolved:
    """A target after ssh_config: what ssh would connect to, and how."""

    hostname: str
    port: int
    user: str
    original_host: str                  # as on the command line (%n)
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
    connection_attempts: int
    family: int
    bind_address: str | None
    host_key_algorithms_set: bool
    ciphers: str | None                 # the Ciphers value, if any
    password_auth: bool
    kbdint_auth: bool
    login_silence: float | None = None
    """ServerAliveInterval x ServerAliveCountMax: how long ssh's login
    waits for a silent server (``ssh_packet_set_timeout``); None: ever."""
    notes: list[str] = field(default_factory=list)
    """What ssh says of the files and goes on ("Unsupported option")."""
    user_by_default: bool = False
    """No User anywhere: *user* is the local user's (getpwuid's)."""


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _option_line(option: str, notes: list[Message],
                 ignore: str | None) -> str | None:
    """Check one ``-o`` value as ssh does; return its config line.

    *ignore* is the IgnoreUnknown value given before it, if any.
    """
    verdict = check_line(option, "command-line", 0,
                         None if ignore is None else pattern_ignored(ignore))
    if verdict.bad:
        raise ConnectError(verdict.lines)
    keyword, rest = split_keyword(option.strip(" \t\r\n\f"))
    assert keyword and rest
    value = rest.strip()
    lower = keyword.lower()
    if lower not in SSH_OPTIONS:
        return None                     # IgnoreUnknown
    given = keyword
    if lower in ALIASES:
        keyword = ALIASES[lower]
        lower = keyword.lower()
    refused = refusal(lower, value)
    if refused is not None:
        raise ConnectError(refused)
    if lower in _DEPRECATED:
        return None
    if lower in _SSH_UNSUPPORTED:
        notes.append((LogLevel.ERROR, verdict.lines[0]))
        return None
    if lower not in HONOURED_OPTIONS and lower not in _IRRELEVANT:
        notes.append((LogLevel.ERROR,
                      f'Warning: option "{given}" is not supported by '
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
    check_command_line(target)
    if target.jump:
        lines.append(f"ProxyJump {quote(target.jump)}")
    if target.cipher is not None:
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
                          f"{exc.strerror}.\n"))
            continue
        lines.append(f"IdentityFile {quote(path)}")
    for index, option in enumerate(target.options):
        ignore = command_line_ignore(target.options[:index])
        line = _option_line(option, notes, ignore)
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


def _expand_list(values: Iterable[str], table: dict[str, str]
                 ) -> list[str]:
    return [os.path.expanduser(_path(v, table)) for v in values]


def _path(value: str, table: dict[str, str]) -> str:
    """A path-like value with ssh's tokens and ``${VAR}`` expanded."""
    return expand(value, table, PATH_TOKENS, environment=True)


def _expand_proxy(value: str | None, table: dict[str, str]) -> str | None:
    """A ProxyCommand or ProxyJump with its tokens expanded."""
    if not value:
        return None
    return expand(value, table, PROXY_TOKENS, environment=False)


def _agent_path(value: object, table: dict[str, str]) -> str | None:
    if value is None:
        return None                 # IdentityAgent none
    if value == () or value == "SSH_AUTH_SOCK":
        path = os.environ.get("SSH_AUTH_SOCK", "")
    elif isinstance(value, str) and value.startswith("$") and \
            not value.startswith("${"):
        path = os.environ.get(value[1:], "")
    else:
        path = os.path.expanduser(_path(str(value), table))
    return path or None


def _forward_agent(value: object, agent: str | None,
                   table: dict[str, str]) -> str | None:
    if value is True:
        return agent
    if isinstance(value, str) and value:
        return _agent_path(value, table)
    return None


def resolve(target: SSHTarget, paths: Sequence[str], local_user: str,
            command_lines: Sequence[str] = ()) -> Resolved:
    """Read the config *paths* for *target* as ssh would.

    *command_lines* are the command line's (the first of *paths* holds
    them too), for a config reader that cannot read psftp-shell's own
    options from files (:mod:`psftp_shell.ssh.config_reader`).
    """
    files = list(paths[1:] if command_lines else paths)
    level = next((line.split()[1] for line in command_lines
                  if line.startswith("LogLevel ")), "INFO")
    notes = check_files(files, target.host, user_conf=int(
        target.config_file is not None or files[:1] == [
            os.path.expanduser(USER_CONFIG)]),
        ignore=command_line_ignore(target.options), level=level)
    try:
        cfg = configreader.load(paths, target.host, local_user,
                                command_lines)
    except (ValueError, OSError) as exc:
        raise ConnectError(str(exc).split("\n")) from None
    get = cfg.get
    hostname = str(get("Hostname", target.host))
    if not _is_address(hostname):
        hostname = hostname.lower()
    alias = cast("str | None", get("HostKeyAlias"))
    port = int(cast(int, get("Port", DEFAULT_PORT)))
    user = str(get("User", local_user))
    user_by_default = get("User") is None
    table = tokens(hostname, port, user, target.host, alias)
    batch = bool(get("BatchMode", False))
    identities = get("IdentityFile")
    if identities is None:
        identities = list(DEFAULT_IDENTITIES)
    agent = _agent_path(get("IdentityAgent", ()), table)
    timeout = get("ConnectTimeout")
    attempts = int(cast(int, get("ConnectionAttempts", 1)))
    if attempts <= 0:
        raise ConnectError(["Invalid number of ConnectionAttempts"])
    alive = int(cast(int, get("ServerAliveInterval") or 0))
    alive_count = int(cast(int, get("ServerAliveCountMax", 3)))
    return Resolved(
        hostname=hostname,
        port=port,
        user=user, user_by_default=user_by_default,
        original_host=target.host,
        alias=alias.lower() if alias else None,
        strict=cast(StrictMode, get("StrictHostKeyChecking", StrictMode.ASK)),
        batch=batch,
        hash_known_hosts=bool(get("HashKnownHosts", False)),
        user_known_hosts=_expand_list(cast(
            "list[str]", get("UserKnownHostsFile", DEFAULT_USER_FILES)),
            table),
        global_known_hosts=[os.path.expanduser(path) for path in cast(
            "list[str]", get("GlobalKnownHostsFile", DEFAULT_GLOBAL_FILES))],
        log_level=cast(LogLevel, get("LogLevel", LogLevel.INFO)),
        password_prompts=0 if batch else int(
            cast(int, get("NumberOfPasswordPrompts", 3))),
        identities=_expand_list(cast("list[str]", identities), table),
        default_identities=get("IdentityFile") is None,
        identities_only=bool(get("IdentitiesOnly", False)),
        agent_path=agent,
        forward_agent=_forward_agent(get("ForwardAgent", False), agent,
                                     table),
        jump=_expand_proxy(cast("str | None", get("ProxyJump")), table),
        proxy_command=_expand_proxy(
            cast("str | None", get("ProxyCommand")), table),
        connect_timeout=float(cast(int, timeout)) if timeout else None,
        connection_attempts=attempts,
        family=int(cast(int, get("AddressFamily", socket.AF_UNSPEC))),
        bind_address=cast("str | None", get("BindAddress")),
        host_key_algorithms_set=get("HostKeyAlgorithms") is not None,
        ciphers=cast("str | None", get("Ciphers")),
        password_auth=bool(get("PasswordAuthentication", True)),
        kbdint_auth=bool(get("KbdInteractiveAuthentication",
                             get("ChallengeResponseAuthentication", True))),
        login_silence=float(alive * alive_count)
        if alive > 0 and alive_count > 0 else None,
        notes=notes,
    )


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
