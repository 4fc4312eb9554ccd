"""Exceptions and exit statuses (a pure leaf module).

Every error that reaches the user is one of these, carrying the exact text
OpenSSH's sftp prints; the front ends decide what an error means (print and
carry on, abort a batch, or end the program with an exit status).
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit statuses, as OpenSSH's sftp uses them."""

    OK = 0
    ERROR = 1       # usage errors, a failed batch command, a failed get
    FATAL = 255     # fatal(): connection failures, protocol errors


class ShellError(Exception):
    """Root of psftp-shell's errors; ``str(exc)`` is the message to print."""


class UsageError(ShellError):
    """A bad command line: print the message (if any), then the usage."""


class FatalError(ShellError):
    """An error that ends the program with exit status 255."""


class CommandError(ShellError):
    """A command failed; its message was already printed (or is empty)."""


class ConnectionClosed(FatalError):
    """The transport ended: sftp's ``Connection closed`` (exit 255).

    :param preamble: text printed first, as it is, line ends included
        (``exec: prog: No such file or directory\\n``)
    """

    def __init__(self, preamble: str = "") -> None:
        super().__init__("Connection closed")
        self.preamble = preamble

    def text(self, *, quiet: bool) -> str:
        """The whole stderr text: preamble, sftp's notice, last words.

        Unless quiet, sftp's SIGCHLD handler prints ``\\rConnection
        closed.  \\n`` when its transport exits; then the fatal error.
        """
        notice = "" if quiet else "\rConnection closed.  \n"
        return self.preamble + notice + "Connection closed\r\n"
