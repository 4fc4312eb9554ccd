"""Where and how messages are written, following OpenSSH's conventions.

sftp writes listings and informational lines to stdout through
``mprintf`` (names escaped), and errors to stderr through its log
functions (escaped with ``strnvis``, lines ending in ``\\r\\n``).  Every
line psftp-shell prints goes through one :class:`Output`, so the escaping
of untrusted names cannot be forgotten.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, NoReturn

from psftp_shell.core.escape import vis_log, vis_name

LOG_QUIET = 0   # -q: log level ERROR; logit() messages are dropped
LOG_INFO = 1    # the default
LOG_DEBUG = 2   # -v and more
INTERRUPT = b"\rInterrupt  \n"
"""What sftp's ``cmd_interrupt`` writes to stderr on Ctrl-C."""


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def die_of_sigpipe() -> NoReturn:
    """End the process as sftp ends when its reader has gone: SIGPIPE.

    Python ignores SIGPIPE and raises :class:`BrokenPipeError` instead;
    sftp, a C program, is simply killed by the signal.
    """
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)      # not reached


@contextmanager
def _sigpipe_on_broken_pipe() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        die_of_sigpipe()


class StdioBuffer(io.BufferedWriter):
    """stdout or stderr failing as C's stdio fails for sftp.

    A reader that has gone kills the process with SIGPIPE, as it kills
    sftp.  Any other failure - a full disk, a device that takes nothing -
    is ignored, as sftp ignores what ``printf`` returns: a script whose
    log cannot be written still does its work and ends with its status.
    """

    def write(self, data: Any) -> int:
        try:
            return super().write(data)
        except BrokenPipeError:
            die_of_sigpipe()
        except OSError:
            return 0

    def flush(self) -> None:
        try:
            super().flush()
        except BrokenPipeError:
            die_of_sigpipe()
        except OSError:
            pass


class Output:
    """stdout and stderr of the shell, with sftp's quiet and log rules.

    :param quiet: drop informational stdout lines (``Fetching``...), as
        sftp's ``quiet`` flag does for ``-q`` and ``-b``
    :param loglevel: :data:`LOG_QUIET` drops ``logit`` messages (``-q``)
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO, *,
                 quiet: bool = False, loglevel: int = LOG_INFO) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.quiet = quiet
        self.loglevel = loglevel

    def write(self, text: str) -> None:
        """Write *text* to stdout as it is (the caller escaped names)."""
        with _sigpipe_on_broken_pipe():
            self.stdout.write(_encode(text))
            self.stdout.flush()

    def line(self, text: str) -> None:
        """Write one line to stdout, escaped as sftp's ``mprintf`` does."""
        self.write(vis_name(text) + "\n")

    def info(self, text: str) -> None:
        """An informational line (``Fetching a to b``), unless quiet."""
        if not self.quiet:
            self.line(text)

    def error(self, text: str) -> None:
        """An ``error()`` message: stderr, escaped, ending in ``\\r\\n``."""
        with _sigpipe_on_broken_pipe():
            self.stdout.flush()
            self.stderr.write(_encode(vis_log(text) + "\r\n"))
            self.stderr.flush()

    def logit(self, text: str) -> None:
        """A ``logit()`` message: like :meth:`error`, but not with ``-q``."""
        if self.loglevel >= LOG_INFO:
            self.error(text)

    def call(self, action: Callable[[], None]) -> None:
        """Run *action* now (nothing is held back here)."""
        action()

    def debug(self, text: str) -> None:
        """A debug message, shown with ``-v``."""
        if self.loglevel >= LOG_DEBUG:
            self.error("debug1: " + text)

    def notice(self, text: str) -> None:
        """A plain stderr line ending in ``\\n`` (``Connected to h.``)."""
        with _sigpipe_on_broken_pipe():
            self.stdout.flush()
            self.stderr.write(_encode(text + "\n"))
            self.stderr.flush()
