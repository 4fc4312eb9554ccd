"""Progress displays: sftp's one-line meter and a per-stream live view.

Both are :class:`~psftp_shell.core.observer.TransferObserver` implementations
that the front end hands to the engine before each command
(:func:`observing`).  :func:`choose_observer` decides as sftp does: only
with the progress setting on and stdout a terminal whose foreground
process group is ours; otherwise nothing is drawn at all.

With one stream, :class:`~psftp_shell.frontend.sftp_meter.SftpMeter`
reproduces OpenSSH 9.2's ``progressmeter.c`` byte for byte.  With
several, :class:`LiveView` (:mod:`psftp_shell.frontend.live_view`) draws
one line per stream and a total line, then a one-line summary.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from psftp_shell.core.observer import NullObserver, TransferObserver
from psftp_shell.frontend.live_view import LiveView
from psftp_shell.frontend.sftp_meter import (
    DEFAULT_COLUMNS,
    SftpMeter,
    meter_line,
    name_field,
)
from psftp_shell.frontend.view_text import Failures, char_width

__all__ = ["Failures", "LiveView", "SftpMeter", "char_width",
           "choose_observer", "meter_line", "name_field", "observing"]

if TYPE_CHECKING:
    from psftp_shell.shell.context import Shell

MAX_COLUMNS = 512
DEFAULT_ROWS = 24


# -- the terminal -------------------------------------------------------------

def terminal_columns(fd: int) -> int:
    """sftp's ``setscreensize``: the width of *fd*, 80 if unknown, <= 512."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        cols = struct.unpack("HHHH", packed)[1]
    except OSError:
        return DEFAULT_COLUMNS
    if cols == 0:
        return DEFAULT_COLUMNS
    return min(cols, MAX_COLUMNS)


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal *fd*; 80x24 if unknown."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        rows, cols = struct.unpack("HHHH", packed)[:2]
    except OSError:
        return DEFAULT_COLUMNS, DEFAULT_ROWS
    return (min(cols, MAX_COLUMNS) or DEFAULT_COLUMNS,
            rows or DEFAULT_ROWS)


def is_foreground(fd: int) -> bool:
    """sftp's ``can_output``: our process group owns the terminal *fd*."""
    try:
        return os.getpgrp() == os.tcgetpgrp(fd)
    except OSError:
        return False


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


# -- choosing a view ----------------------------------------------------------

def choose_observer(shell: Shell) -> TransferObserver:
    """The progress display for the next command, as sftp decides.

    Nothing unless the progress setting is on and stdout is a terminal
    in whose foreground process group we are; then sftp's meter for one
    stream, or the live view for several.
    """
    out = shell.out
    fd = _fileno(out.stdout)
    if not shell.settings.progress or fd is None or not os.isatty(fd) \
            or not is_foreground(fd):
        return NullObserver()

    def can_output() -> bool:
        return is_foreground(fd)

    if shell.settings.streams <= 1:
        return SftpMeter(out.stdout, columns=lambda: terminal_columns(fd),
                         can_output=can_output)
    return LiveView(out, size=lambda: terminal_size(fd),
                    can_output=can_output,
                    interrupted=lambda: shell.engine.is_interrupted())


def close_observer(observer: Any) -> None:
    """End whatever a view still shows (the command is over)."""
    close = getattr(observer, "close", None)
    if callable(close):
        close()


@contextmanager
def observing(shell: Shell) -> Iterator[TransferObserver]:
    """Give the engine the right progress view for one command.

    The view is closed (summary printed, output streams restored) and
    the engine gets a :class:`NullObserver` back when the command ends,
    however it ends.
    """
    observer = choose_observer(shell)
    shell.engine.observer = observer
    try:
        yield observer
    finally:
        try:
            close_observer(observer)
        finally:
            shell.engine.observer = NullObserver()
