"""The process's standard streams, made safe before anything is written.

OpenSSH's sftp starts with ``sanitise_stdfd()``: a standard descriptor
that is closed (``>&-`` in a script, a daemon's lost terminal) is opened
on ``/dev/null``, so that no file opened later takes its number and
receives output meant for it.  Python leaves ``sys.stdout`` and friends
as None then.  :func:`install` does what sftp does, and gives stdout and
stderr a :class:`~psftp_shell.core.output.StdioBuffer`, which fails as
C's stdio does (a full disk is ignored, a gone reader is SIGPIPE).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import IO

from psftp_shell.core.output import StdioBuffer


def open_closed_fds() -> None:
    """Open ``/dev/null`` on each of fds 0, 1 and 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


_PYTHONS = (io.BufferedWriter, io.FileIO)
"""What Python's own stdout and stderr write through (FileIO: ``-u``)."""


def _ours(stream: IO[str] | None, fd: int) -> bool:
    """Whether *stream* is Python's own stream on *fd* (not a test's
    stand-in, nor one replaced already)."""
    if stream is None:
        return True
    try:
        return stream.fileno() == fd and \
            type(getattr(stream, "buffer", None)) in _PYTHONS
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _writer(fd: int, old: IO[str] | None, errors: str) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "wb", closefd=False)
    encoding = getattr(old, "encoding", None) or "utf-8"
    line_buffering = raw.isatty()
    return io.TextIOWrapper(StdioBuffer(raw), encoding=encoding,
                            errors=getattr(old, "errors", None) or errors,
                            line_buffering=line_buffering)


def install() -> None:
    """Make fds 0 to 2 safe, and stdout and stderr fail as stdio does."""
    open_closed_fds()
    if sys.stdin is None:
        sys.stdin = io.TextIOWrapper(io.BufferedReader(
            io.FileIO(0, "rb", closefd=False)))
    if _ours(sys.stdout, 1):
        _flushed(sys.stdout)
        sys.stdout = _writer(1, sys.stdout, "strict")
    if _ours(sys.stderr, 2):
        _flushed(sys.stderr)
        sys.stderr = _writer(2, sys.stderr, "backslashreplace")


def _flushed(stream: IO[str] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
