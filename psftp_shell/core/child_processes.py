"""The programs psftp-shell runs as its transport (``-D`` servers, ``-S``
ssh processes), and ending them when psftp-shell ends abruptly.

sftp's SIGTERM handler kills its ssh child before it exits
(``killchild``).  psftp-shell may have one such process per stream; a
process left behind would keep a connection, and the output pipes of
whoever started psftp-shell, open after it is gone.  Every exit that
skips the orderly close (the signal handlers, the grace timer) calls
:func:`kill_all` first.  A ProxyCommand is ended the same way, as ssh
ends it when it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal

_running: set[int] = set()


def started(pid: int) -> None:
    """Remember a transport process."""
    _running.add(pid)


def ended(pid: int) -> None:
    """Forget a transport process that has been waited for."""
    _running.discard(pid)


def kill_all() -> None:
    """Send SIGTERM to every transport process still running, and to
    any other child of this process (one whose start had not been
    recorded yet when the signal came, a ProxyCommand)."""
    for pid in _running | _other_children():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    _running.clear()


def _other_children() -> set[int]:
    """The pids whose parent is this process (Linux's /proc; elsewhere
    none are known beyond the recorded ones)."""
    me = os.getpid()
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(me).encode():
            found.add(int(entry))
    return found
