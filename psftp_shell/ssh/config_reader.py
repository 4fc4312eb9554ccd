"""Reading ssh_config files with asyncssh's parser, extended or not.

:func:`load` returns the options that apply to one host, first value
winning as in ssh.  Normally that is asyncssh's ``SSHClientConfig``
extended (:func:`project_config_class`) with the options ssh's policy
needs, with ssh's checks of algorithm lists, and with ``%`` tokens
left for :mod:`psftp_shell.ssh.tokens`.  When that internal class is not
what :mod:`psftp_shell.ssh.asyncssh_checks` expects, the files are read through
asyncssh's public :class:`asyncssh.SSHClientConnectionOptions`
(:class:`PublicConfig`), and the extra options come from the command
line alone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from itertools import islice, takewhile
from typing import Any, Protocol

import asyncssh

from psftp_shell.ssh import asyncssh_checks as sshinternals
from psftp_shell.ssh.algorithms import CHECKED_OPTIONS, option_error
from psftp_shell.ssh.auth import parse_log_level
from psftp_shell.ssh.config_words import (
    convtime,
    integer_error,
    split_keyword,
)
from psftp_shell.ssh.hostkeys import parse_strict
from psftp_shell.ssh.match_check import match_words
from psftp_shell.ssh.options_file import OptionsFile
from psftp_shell.ssh.refusals import ALIASES
from psftp_shell.ssh.target import ConnectError
from psftp_shell.ssh.tokens import PATH_TOKENS, expand, local_user_name, tokens

Handler = Callable[[Any, str, list[str]], None]

def parse_int(value: str) -> int:
    """An integer option's value, as ssh's ``parse_int`` reads it."""
    reason = integer_error(value)
    if reason is not None:
        raise ValueError(reason)
    return int(value)


def parse_time(value: str) -> int | None:
    """A time option's value in seconds (ssh's ``convtime``: ``1h30m``);
    None for ``none``."""
    seconds = convtime(value) if value != "none" else None
    if seconds is not None and seconds < 0:
        raise ValueError("invalid time value.")
    return seconds


# The options psftp-shell reads itself (asyncssh's parser ignores them),
# and how a value is read.
PROJECT_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "stricthostkeychecking": ("StrictHostKeyChecking", parse_strict),
    "batchmode": ("BatchMode", lambda v: _parse_bool("BatchMode", v)),
    "hashknownhosts": ("HashKnownHosts",
                       lambda v: _parse_bool("HashKnownHosts", v)),
    "loglevel": ("LogLevel", parse_log_level),
    "numberofpasswordprompts": ("NumberOfPasswordPrompts", parse_int),
    "connectionattempts": ("ConnectionAttempts", parse_int),
    "connecttimeout": ("ConnectTimeout", parse_time),
    "serveraliveinterval": ("ServerAliveInterval", parse_time),
}
INTEGER_OPTIONS = frozenset({"numberofpasswordprompts", "connectionattempts"})
"""Those of them ssh reads with ``parse_int`` (:func:`integer_error`)."""
class Options(Protocol):
    """What :func:`load` returns."""

    def get(self, option: str, default: object = None) -> object:
        """The value of *option* (its canonical spelling), or *default*."""
        ...


def _parse_bool(option: str, value: str) -> bool:
    lower = value.lower()
    if lower in ("yes", "true"):
        return True
    if lower in ("no", "false"):
        return False
    raise ValueError(f"Invalid {option} boolean value: {value}")


def _bad_value(option: str, value: str) -> str:
    """ssh's reason for a bad *value* of one of :data:`PROJECT_OPTIONS`."""
    if option == "LogLevel":
        return f"unsupported log level '{value}'"
    if option.lower() in INTEGER_OPTIONS:
        return f"integer value {integer_error(value)}."
    if option in ("ConnectTimeout", "ServerAliveInterval"):
        return "invalid time value."
    return f'unsupported option "{value}".'


def _project_handler(parse: Callable[[str], object]) -> Handler:
    def handle(config: Any, option: str, args: list[str]) -> None:
        value = args.pop(0)
        try:
            parsed = parse(value)
        except ValueError:
            config._error(_bad_value(option, value))
        config._options.setdefault(option, parsed)
    return handle


def _checked(handler: Handler) -> Handler:
    """*handler*, after checking the value as ssh checks it."""
    def check(config: Any, option: str, args: list[str]) -> None:
        bad = option_error(option.lower(), args[0]) if args else None
        if bad is not None:
            where = config._path
            raise ValueError("\n".join([
                *bad[:-1], f"{where} line {config._line_no}: {bad[-1]}",
                f"{where}: terminating, 1 bad configuration options"]))
        handler(config, option, args)
    return check


def _written_words(config: Any) -> list[str] | None:
    """The words of the Match line *config* is at, read again from its
    file as ssh reads them (:func:`match_words`); None when that line
    cannot be read again (no regular file, no longer a Match line)."""
    path: Any = getattr(config, "_path", None)
    number = getattr(config, "_line_no", None)
    try:
        if not isinstance(number, int) or number < 1 or \
                not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path) as file:
            line = next(islice(file, number - 1, None), None)
    except (OSError, TypeError, ValueError):
        return None
    keyword, rest = split_keyword(line.strip()) if line else (None, None)
    if keyword is None or keyword.lower() != "match":
        return None
    return match_words(rest)


def _match_tokens(config: Any) -> dict[str, str]:
    """ssh's token values at a Match line of *config*, read so far."""
    said: dict[str, Any] = getattr(config, "_options", None) or {}
    original = str(getattr(config, "_orig_host", "") or "")
    host = str(said.get("Hostname") or original)
    user = said.get("User") or local_user_name()
    return tokens(host, int(said.get("Port") or 22), str(user), original,
                  said.get("HostKeyAlias") or host)


def _exec_expanded(config: Any, words: list[str]) -> list[str]:
    """*words* with the ``%`` tokens of each ``exec`` command expanded as
    ssh's match_cfg_line expands them, from what the files said so far:
    HostName (else the host as given), Port, User, HostKeyAlias.  An
    unknown token stops the reading with ssh's lines."""
    words = list(words)
    table: dict[str, str] | None = None
    at = 0
    while at < len(words):
        criterion = words[at].lower().lstrip("!")
        if criterion in ("all", "canonical", "final"):
            at += 1
            continue
        if criterion == "exec" and at + 1 < len(words):
            if table is None:
                table = _match_tokens(config)
            try:
                words[at + 1] = expand(words[at + 1], table, PATH_TOKENS,
                                       environment=False)
            except ConnectError as exc:
                raise ValueError("\n".join(exc.ssh_lines)) from None
        at += 2
    return words


def _match_words(handler: Handler) -> Handler:
    """*handler* given a Match condition's words as ssh reads them: up
    to a comment (``#``) or an empty word (the checks refused the words
    left after one), and a quoted word whole, ``=`` and all (asyncssh's
    parser splits it); from asyncssh's split of the line when the line
    cannot be read again.  An ``exec`` command gets its tokens
    expanded (asyncssh runs it as written)."""
    def match(config: Any, option: str, args: list[str]) -> None:
        words = _written_words(config)
        if words is None:
            words = list(takewhile(lambda w: w and w[0] != "#", args))
        args.clear()
        handler(config, option, _exec_expanded(config, words))
    return match


def project_config_class(base: Any) -> Any:
    """*base* (asyncssh's SSHClientConfig) plus ssh's policy options."""
    handlers = dict(base._handlers)
    for name, (option, handler) in base._handlers.items():
        if name in CHECKED_OPTIONS:
            handlers[name] = (option, _checked(handler))
    for name, (option, parse) in PROJECT_OPTIONS.items():
        handlers[name] = (option, _project_handler(parse))
    for alias, option in ALIASES.items():
        if option.lower() in handlers:
            handlers[alias] = handlers[option.lower()]
    # tokens are expanded once, after all files (sshtokens), as ssh does
    return type("ProjectConfig", (base,), {
        "__doc__": "asyncssh's client config parser, plus the options "
                   "ssh's policy needs.",
        "_percent_expand": set(), "_handlers": handlers})


# asyncssh reads the files again at each connection (``config=``): its
# own class gets the Match words too, before PROJECT_CONFIG copies it,
# and a Match exec command runs once, as in ssh
sshinternals.wrap_client_handler("match", _match_words)
sshinternals.run_exec_once()
PROJECT_CONFIG = (project_config_class(sshinternals.CLIENT_CONFIG)
                  if sshinternals.CLIENT_CONFIG is not None else None)


def known_options() -> frozenset[str]:
    """The options (lower case) the config reader in use understands."""
    if PROJECT_CONFIG is not None:
        return frozenset(PROJECT_CONFIG._handlers)
    return frozenset(PROJECT_OPTIONS)


class PublicConfig:
    """ssh_config read by asyncssh's public connection options."""

    def __init__(self, paths: Sequence[str], host: str,
                 command_lines: Sequence[str]) -> None:
        escaped = None
        if command_lines and paths:
            # asyncssh expands tokens at the end of each file: keep the
            # command line's for the end of the next, when HostName and
            # Port are known (or for sshtokens)
            escaped = OptionsFile([line.replace("%", "%%")
                                   for line in command_lines])
            paths = [escaped.path, *paths[1:]]
        try:
            settings = asyncssh.SSHClientConnectionOptions(
                config=list(paths), host=host, known_hosts=None,
                client_keys=None, agent_path=None, x509_trusted_certs=None,
                x509_trusted_cert_paths=[])
        finally:
            if escaped is not None:
                escaped.close()
        self._config = settings.config
        self._ours: dict[str, object] = {}
        for line in command_lines:
            keyword, _, value = line.partition(" ")
            entry = PROJECT_OPTIONS.get(keyword.lower())
            if entry is not None and entry[0] not in self._ours:
                try:
                    self._ours[entry[0]] = entry[1](value)
                except ValueError:
                    raise ValueError("command-line line 0: " + _bad_value(
                        entry[0], value)) from None

    def get(self, option: str, default: object = None) -> object:
        """The value of *option*, or *default*."""
        if option.lower() in PROJECT_OPTIONS:
            return self._ours.get(option, default)
        return self._config.get(option, default)


def load(paths: Sequence[str], host: str, local_user: str,
         command_lines: Sequence[str] = ()) -> Options:
    """The options for *host* from the config files *paths*.

    Raises ValueError or OSError with the reason.
    """
    project_class = PROJECT_CONFIG
    if project_class is None:
        return PublicConfig(paths, host, command_lines)
    cfg = project_class.load(None, paths, False, False, False,
                             local_user, (), host, ())
    if cfg.has_match_final():
        cfg = project_class.load(None, paths, False, False, True,
                                 local_user, (), host, ())
    return cfg
