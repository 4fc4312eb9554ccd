"""ProxyCommand, run the way ssh runs it.

ssh runs ``exec <command>`` with the user's shell (``$SHELL``, else
``/bin/sh``), the command's stdin and stdout being the connection and
its stderr the user's, so that a command that cannot run gets the
shell's own error.  :class:`ProxyProcess` does the same over a socket
pair whose other end asyncssh takes as its socket; the child ignores
SIGINT (Ctrl-C is for psftp-shell's prompt, as sftp's ssh child ignores
it) and gets SIGHUP when the connection ends, as ssh sends it.

The child is a plain :class:`subprocess.Popen`, reaped here, so that
asyncio's child watcher never sees it (nor warns about it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess


def _child_setup() -> None:
    """In the proxy's child: Ctrl-C is for psftp-shell alone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProxyProcess:
    """A running ProxyCommand and the socket that talks to it."""

    def __init__(self, command: str) -> None:
        shell = os.environ.get("SHELL") or "/bin/sh"
        self.sock, theirs = socket.socketpair()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [shell, "-c", "exec " + command], stdin=theirs.fileno(),
                stdout=theirs.fileno(), preexec_fn=_child_setup,
                close_fds=True)
        except OSError:
            self.sock.close()
            raise
        finally:
            theirs.close()
        self.sock.setblocking(False)

    def close(self) -> None:
        """Close the socket; hang up on the command; reap it if it ended."""
        self.sock.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGHUP)
                proc.wait(timeout=0.2)
            except (OSError, subprocess.TimeoutExpired):
                pass    # left to subprocess's own reaping, as ssh leaves it
