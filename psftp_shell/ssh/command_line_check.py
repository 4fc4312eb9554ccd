"""sftp's ``-J``, ``-c`` and ``-o`` checked in the order given, as ssh's
``main()`` checks them: the first bad one is the one ssh reports.

sftp hands them to ssh in its own command line's order.  ssh checks
each ``-c`` (each one, though the last wins), each ``-o`` line
(:func:`~psftp_shell.ssh.readconf.check_line`) and each ``-J``, which
is refused after another ``-J`` or a ``ProxyJump`` (``Only a single
-J option is permitted``) and after a ``ProxyCommand`` (``Cannot
specify -J with ProxyCommand``).
"""

from __future__ import annotations

from collections.abc import Sequence

from psftp_shell.ssh.algorithms import check_cipher_flag
from psftp_shell.ssh.config_words import split_keyword
from psftp_shell.ssh.jump_check import jump_error
from psftp_shell.ssh.readconf import (
    check_line,
    command_line_ignore,
    pattern_ignored,
)
from psftp_shell.ssh.target import ConnectError, SSHTarget

_SINGLE_JUMP = ("Only a single -J option is permitted (use commas to "
                "separate multiple jump hops)")


def given(target: SSHTarget) -> list[tuple[str, str]]:
    """The target's ``-J``, ``-c`` and ``-o`` as (letter, value), in the
    order given (for a target built without it: that order)."""
    if target.given:
        return list(target.given)
    return [*([("J", target.jump)] if target.jump else []),
            *([("c", target.cipher)] if target.cipher is not None else []),
            *(("o", option) for option in target.options)]


class _Proxies:
    """Whether ssh has a jump host and a proxy command set so far."""

    def __init__(self) -> None:
        self.jump = False
        self.command = False

    def flag(self, value: str) -> None:
        """A ``-J value``: refused after another, or a ProxyCommand."""
        if self.jump:
            raise ConnectError([_SINGLE_JUMP])
        if self.command:
            raise ConnectError(["Cannot specify -J with ProxyCommand"])
        reasons = jump_error(value, strict=True)
        if reasons is not None:
            raise ConnectError([*reasons, "Invalid -J argument"])
        self.jump = self.command = True

    def option(self, keyword: str, value: str) -> None:
        """A ``-o`` line (already checked): the first setting wins."""
        if self.jump or self.command:
            return
        if keyword == "proxyjump":
            self.jump = True
            self.command = value.lower() != "none"
        elif keyword == "proxycommand":
            self.command = True


def _check_option(option: str, earlier: Sequence[str],
                  proxies: _Proxies) -> None:
    ignore = command_line_ignore(earlier)
    verdict = check_line(option, "command-line", 0,
                         None if ignore is None else pattern_ignored(ignore))
    if verdict.bad:
        raise ConnectError(verdict.lines)
    keyword, rest = split_keyword(option.strip(" \t\r\n\f"))
    if keyword and rest:
        proxies.option(keyword.lower(), rest.lstrip(" \t\r\n="))


def check_command_line(target: SSHTarget) -> None:
    """Raise ConnectError with ssh's lines for the first bad ``-J``,
    ``-c`` or ``-o`` of *target*, in the order given."""
    proxies = _Proxies()
    options: list[str] = []
    for letter, value in given(target):
        if letter == "J":
            proxies.flag(value)
        elif letter == "c":
            bad = check_cipher_flag(value)
            if bad is not None:
                raise ConnectError([bad])
        else:
            _check_option(value, options, proxies)
            options.append(value)
