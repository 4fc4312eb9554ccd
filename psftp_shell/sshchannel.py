"""The SFTP channel on an SSH connection.

:func:`open_sftp_channel` starts the SFTP subsystem (or a server
command) and copies the server's stderr to ours, ahead of any
``Connection closed`` that follows the end of its output.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import IO, Any

import asyncssh

from psftp_shell.sshtarget import ConnectError


class SFTPChannelReader:
    """The server's output on an SFTP channel.

    Before an end of file is reported, whatever the server wrote to its
    stderr has been copied to ours, so that it comes before the
    ``Connection closed`` that follows.
    """

    def __init__(self, reader: asyncssh.SSHReader[bytes],
                 stderr_task: asyncio.Task[None]) -> None:
        self._reader = reader
        self._stderr_task = stderr_task

    async def _flush_stderr(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
        except (TimeoutError, asyncio.CancelledError):
            pass

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes (``asyncio.IncompleteReadError`` at EOF).
        """
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError:
            await self._flush_stderr()
            raise

    async def read(self, n: int = -1) -> bytes:
        """Read up to *n* bytes (``b""`` at EOF)."""
        data = await self._reader.read(n)
        if not data:
            await self._flush_stderr()
        return data

    def at_eof(self) -> bool:
        """Whether the server has closed its output."""
        return self._reader.at_eof()


async def _copy_stderr(reader: asyncssh.SSHReader[bytes],
                       out: Callable[[], IO[bytes] | None]) -> None:
    while True:
        try:
            data = await reader.read(65536)
        except (asyncssh.Error, OSError):
            return
        if not data:
            return
        stream = out()
        if stream is not None:
            stream.write(data)
            stream.flush()


def _stderr_buffer() -> IO[bytes] | None:
    return getattr(sys.stderr, "buffer", None)


_channel_tasks: set[asyncio.Task[None]] = set()


async def open_sftp_channel(
        conn: asyncssh.SSHClientConnection, subsystem: str = "sftp", *,
        window: int | None = None, max_pktsize: int | None = None,
        stderr: Callable[[], IO[bytes] | None] = _stderr_buffer,
) -> tuple[SFTPChannelReader, asyncssh.SSHWriter[bytes]]:
    """Start SFTP on *conn*: a subsystem, or a command if it has a ``/``.

    Returns a binary reader (``readexactly``) and writer (``write``,
    ``drain``, ``close``).  The server's stderr is copied to ours.
    """
    kwargs: dict[str, Any] = dict(encoding=None, request_pty=False,
                                  term_type=None, x11_forwarding=False)
    if window:
        kwargs["window"] = window
    if max_pktsize:
        kwargs["max_pktsize"] = max_pktsize
    if "/" in subsystem:
        kwargs["command"] = subsystem
        what = "exec"
    else:
        kwargs.update(command=None, subsystem=subsystem)
        what = "subsystem"
    try:
        writer, reader, err = await conn.open_session(**kwargs)
    except asyncssh.ChannelOpenError as exc:
        if "request failed" in exc.reason.lower():
            raise ConnectError([f"{what} request failed on channel 0"]) \
                from None
        raise ConnectError([f"channel 0: open failed: {exc.reason}"]) \
            from None
    except (asyncssh.Error, OSError) as exc:
        raise ConnectError([str(exc)]) from None
    task = asyncio.get_running_loop().create_task(_copy_stderr(err, stderr))
    _channel_tasks.add(task)
    task.add_done_callback(_channel_tasks.discard)
    return SFTPChannelReader(reader, task), writer
