"""ssh_config files checked line by line before asyncssh reads them.

ssh reads every line of each file, in a ``Host`` block that applies or
not, and reports each bad one (:func:`~psftp_shell.ssh.readconf.
check_line`; a keyword ssh 9.2 does not know passes here, see its
``unknown_bad``); at the end of a file with any, it stops with
``<file>: terminating, N bad configuration options``.  An ``Include``d
file is read in its place and ends ssh the same way.  Its error lines
are hidden at ``LogLevel QUIET`` given on the command line (its fatal
line too), and its error lines alone at ``FATAL``: ssh's log is set up
from the command line before it reads the files.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence

from psftp_shell.ssh.config_words import split_keyword
from psftp_shell.ssh.readconf import (
    check_line,
    match_pattern_list,
    pattern_ignored,
)
from psftp_shell.ssh.target import ConnectError

_MAX_DEPTH = 16


class _Reader:
    """The state of one run over the config files."""

    def __init__(self, host: str, ignore: str | None, level: str) -> None:
        self.host = host.lower()
        self.ignore = ignore
        self.level = level.upper()
        self.lines: list[str] = []
        self.active = True

    def _ignored(self) -> Callable[[str], bool] | None:
        return None if self.ignore is None else pattern_ignored(self.ignore)

    def _say(self, lines: list[str]) -> None:
        if self.level not in ("QUIET", "FATAL"):
            self.lines += lines


    def _follow(self, keyword: str, rest: str, user_conf: bool,
                depth: int) -> None:
        """Apply the lines that change how later lines are read."""
        args = rest.split()
        if keyword == "host":
            self.active = match_pattern_list(self.host, ",".join(args))
        elif keyword == "match":
            self.active = args[:1] == ["all"]
        elif keyword == "ignoreunknown" and self.active and \
                self.ignore is None and args:
            self.ignore = args[0]
        elif keyword == "include":
            base = "~/.ssh" if user_conf else "/etc/ssh"
            for arg in args:
                path = arg if arg.startswith(("/", "~")) else \
                    f"{base}/{arg}"
                was = self.active
                for name in sorted(glob.glob(os.path.expanduser(path))):
                    self.read(name, user_conf, depth + 1)
                self.active = was

    def read(self, path: str, user_conf: bool, depth: int = 0) -> None:
        """Check the file *path* (raises ConnectError if ssh would stop)."""
        if depth > _MAX_DEPTH:
            raise ConnectError(
                [*self.lines, "Too many recursive configuration includes"])
        try:
            with open(path, "rb") as stream:
                data = stream.read().decode("utf-8", "surrogateescape")
        except OSError:
            return
        bad = 0
        for number, text in enumerate(data.splitlines(), 1):
            verdict = check_line(text, path, number, self._ignored(),
                                 unknown_bad=False)
            self._say(verdict.lines)
            if verdict.bad:
                bad += 1
                continue
            keyword, rest = split_keyword(text.strip(" \t\r\n\f"))
            if keyword and rest:
                self._follow(keyword.lower(), rest, user_conf, depth)
        if bad:
            last = [] if self.level == "QUIET" else [
                f"{path}: terminating, {bad} bad configuration options"]
            raise ConnectError([*self.lines, *last])


def check_files(paths: Sequence[str], host: str, *, user_conf: int,
                ignore: str | None, level: str) -> list[str]:
    """Check the config *paths* for *host* as ssh reads them; return
    the lines ssh prints without stopping ("Unsupported option").

    The first *user_conf* paths are the user's (relative ``Include``
    paths are under ``~/.ssh``); *ignore* is the command line's
    IgnoreUnknown, *level* its LogLevel.  Raises ConnectError with
    ssh's lines where ssh stops.
    """
    reader = _Reader(host, ignore, level)
    for index, path in enumerate(paths):
        reader.active = True
        reader.read(path, index < user_conf)
    return reader.lines
