"""Signals during a session: SIGTERM/SIGHUP end it cleanly, Ctrl-C
interrupts the running command (scripts and the auto-fetch; the REPL
binds Ctrl-C itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from psftp_shell.core import child_processes as children
from psftp_shell.core.errors import ExitStatus
from psftp_shell.core.output import INTERRUPT, Output
from psftp_shell.shell.context import Shell

TERMINATE_GRACE = 5.0
"""Seconds the cleanup after SIGTERM may take before the process exits."""


class Terminator:
    """SIGTERM and SIGHUP: stop the copies, keep their journals, exit 1.

    sftp's handler kills its ssh child and exits 1 at once.  Here the
    session's task is cancelled first, so that every copy closes its
    handles and removes its temporary or saves its journal; then
    :meth:`exit_if_fired` ends the process with sftp's status.  A second
    signal, or a cleanup longer than *grace* seconds, exits at once.
    """

    def __init__(self, grace: float = TERMINATE_GRACE) -> None:
        self.grace = grace
        self.signum: int | None = None
        self._task: asyncio.Task[Any] | None = None

    def install(self) -> None:
        """Catch the signals for the running task (the session)."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.fire, signum)

    def fire(self, signum: int) -> None:
        """Cancel the session; a second signal exits now."""
        if self.signum is not None:
            exit_now()
        self.signum = signum
        timer = threading.Timer(self.grace, exit_now)
        timer.daemon = True
        timer.start()
        if self._task is not None:
            self._task.cancel()

    def exit_if_fired(self, out: Output) -> None:
        """After the cleanup: flush the output and exit as sftp does."""
        if self.signum is None:
            return
        for stream in (out.stdout, out.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        exit_now()


def exit_now() -> None:
    """End the process with sftp's status for a signal, and the
    transport programs with it, as sftp's ``killchild`` does."""
    children.kill_all()
    os._exit(ExitStatus.ERROR)


@contextlib.contextmanager
def command_interrupts(shell: Shell) -> Iterator[None]:
    """Ctrl-C interrupts the running command, as sftp's ``cmd_interrupt``.

    For scripts and the auto-fetch; the REPL binds Ctrl-C itself.  The
    handler is installed even where SIGINT was ignored at start (a
    background job), as sftp installs its own.
    """
    def interrupt() -> None:
        with contextlib.suppress(OSError, ValueError):
            shell.out.stderr.write(INTERRUPT)
            shell.out.stderr.flush()
        shell.interrupted = True

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
    except (ValueError, RuntimeError):     # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
