"""Commands run on the server over a transport's SSH connections.

:func:`exec_runner` makes the
:data:`~psftp_shell.filecopy.copy_context.RemoteExec` that
``-X verify-exec=yes`` hashes with (a ``dd`` and ``sha256sum`` command,
:mod:`psftp_shell.filecopy.range_hashes`); the front end hands it to the
engine, which knows nothing of SSH (and filecopy, a sibling of this
layer, is not imported: the runner's type is spelt out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable


def exec_runner(transport: object
                ) -> Callable[[str], Awaitable[bytes | None]] | None:
    """A :data:`~psftp_shell.filecopy.copy_context.RemoteExec` on
    *transport*'s SSH connection; None for transports without one (``-D``,
    ``-S``)."""
    connections = getattr(transport, "connections", None)
    if not isinstance(connections, list):
        return None

    async def run(command: str) -> bytes | None:
        import asyncssh  # loaded once a command runs, as before
        for conn in list(connections):
            try:
                result = await conn.run(command, check=False,
                                        encoding=None)
            except UnicodeError:        # a name only SFTP can carry
                return None
            except (asyncssh.Error, OSError):
                continue
            if result.exit_status != 0 or not isinstance(result.stdout,
                                                         bytes):
                return None
            return result.stdout
        return None
    return run
