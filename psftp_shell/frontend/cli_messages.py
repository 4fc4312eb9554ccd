"""What the command line's errors look like.

sftp's usage errors, psftp-shell's own, log lines, and the exit
status of each.
"""

from __future__ import annotations

from psftp_shell.core.errors import (
    ExitStatus,
    FatalError,
    ShellError,
    UsageError,
)
from psftp_shell.core.escape import to_bytes, vis_log
from psftp_shell.frontend.config_file import (
    ConfigError,
)
from psftp_shell.frontend.destination import (
    PlainUsageError,
)
from psftp_shell.frontend.usage import usage


class OwnUsageError(UsageError):
    """psftp-shell's own usage error: ``<prog>: message``, then usage."""


def program_name(argv0: str) -> str:
    """Return the name sftp prints for itself: the basename of argv[0]."""
    return argv0.rsplit("/", 1)[-1]


def log_line(message: str) -> bytes:
    """Return *message* as log.c writes it to stderr (escaped, CR LF)."""
    return to_bytes(vis_log(message)) + b"\r\n"


def message_line(prog: str, message: str) -> bytes:
    """Return one of psftp-shell's own messages: ``prog: message\\n``."""
    return to_bytes(f"{prog}: {vis_log(message)}\n")


def _usage_message(exc: UsageError, prog: str) -> bytes:
    """Return the line printed before the usage text (maybe nothing)."""
    message = str(exc)
    if not message:
        return b""
    if isinstance(exc, PlainUsageError):
        return to_bytes(message) + b"\n"
    if isinstance(exc, OwnUsageError):
        return message_line(prog, message)
    return log_line(message)


def format_error(exc: ShellError, prog: str) -> bytes:
    """Return exactly what goes to stderr for a command-line error.

    Usage errors: their message line (if any), then :func:`usage`.
    Fatal errors: one log line.
    :class:`~psftp_shell.frontend.config_file.ConfigError`: ``<prog>:
    message``.  Anything else: its message as a log line.
    """
    if isinstance(exc, UsageError):
        return _usage_message(exc, prog) + to_bytes(usage(prog))
    if isinstance(exc, ConfigError):
        return message_line(prog, str(exc))
    message = str(exc)
    return log_line(message) if message else b""


def exit_status(exc: ShellError) -> int:
    """Return the exit status for *exc*: 255 if fatal, else 1."""
    if isinstance(exc, FatalError):
        return int(ExitStatus.FATAL)
    return int(ExitStatus.ERROR)
