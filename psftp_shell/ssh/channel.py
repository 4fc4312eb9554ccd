"""The SFTP channel on an SSH connection.

:func:`open_sftp_channel` starts the SFTP subsystem (or a server
command) and copies the server's stderr to ours, ahead of any
``Connection closed`` that follows the end of its output.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import asyncssh

from psftp_shell.ssh.target import ConnectError


class SFTPSession(asyncssh.SSHClientSession[bytes]):
    """The SFTP channel's session: the server's output, buffered for
    :meth:`readexactly`, and its stderr, copied to ours as it comes.

    asyncssh's stream session (``open_session``) does the same work
    through per-read locks, lists and slices; this one keeps the packets
    it is handed and joins them only into the pieces asked for.  Reading
    pauses (and with it the channel's window) while more than the
    channel's window is buffered.  The server's stderr arrives in order
    with its output, so it has been copied before an end of file is
    reported.
    """

    takes_views = True
    """It may be handed memoryviews of received packets (see :mod:`~
    psftp_shell.ssh.fast_receive`): what it returns is always bytes, and
    a reply that spans packets is joined from the views in one copy."""

    def __init__(self, stderr: Callable[[], IO[bytes] | None]) -> None:
        self._stderr = stderr
        self._chunks: deque[bytes | memoryview] = deque()
        self._offset = 0            # into the first chunk
        self._size = 0              # bytes buffered
        self._limit = 2 << 20
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._exc: BaseException | None = None
        self._read_paused = False
        self._write_paused = False
        self._drainers: list[asyncio.Future[None]] = []
        self._dispatch: Callable[[], None] | None = None
        self.channel: Any = None

    # ---- asyncssh's callbacks

    def connection_made(self, chan: Any) -> None:
        self.channel = chan
        self._limit = max(chan.get_recv_window(), 1 << 16)

    def data_received(self, data: bytes | memoryview, datatype: Any
                      ) -> None:
        if datatype is not None:
            if datatype == asyncssh.EXTENDED_DATA_STDERR:
                self._copy_stderr(data)
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self._limit and not self._read_paused:
            self._read_paused = True
            self.channel.pause_reading()
        if self._waiter is not None and self._size >= self._want:
            if self._dispatch is not None:
                self._dispatch()
                if self._size < self._want:
                    return
            self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None and self._exc is None:
            self._exc = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drainers, self._drainers = self._drainers, []
        for fut in drainers:
            if not fut.done():
                fut.set_result(None)

    # ---- reading

    def _copy_stderr(self, data: bytes | memoryview) -> None:
        stream = self._stderr()
        if stream is not None:
            try:
                stream.write(data)
                stream.flush()
            except (OSError, ValueError):
                pass

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self, n: int) -> bytes:
        """Remove and return the first *n* buffered bytes (n <= size)."""
        chunks = self._chunks
        first = chunks[0]
        offset = self._offset
        end = offset + n
        if end <= len(first):
            if end == len(first):
                chunks.popleft()
                self._offset = 0
                data = first[offset:] if offset else first
            else:
                self._offset = end
                data = first[offset:end]
            if type(data) is memoryview:
                data = bytes(data)
        else:
            parts = [memoryview(first)[offset:]]
            chunks.popleft()
            need = end - len(first)
            while need:
                chunk = chunks[0]
                if len(chunk) <= need:
                    parts.append(memoryview(chunk))
                    chunks.popleft()
                    need -= len(chunk)
                else:
                    parts.append(memoryview(chunk)[:need])
                    self._offset = need
                    break
            else:
                self._offset = 0
            data = b"".join(parts)
        self._size -= n
        if self._read_paused and self._size <= self._limit // 2:
            self._read_paused = False
            self.channel.resume_reading()
        return data

    def dispatch_with(self, dispatch: Callable[[], None]) -> None:
        """Call *dispatch* when data arrives for a waiting reader, before
        waking it: it may take whole replies itself (see :mod:`psftp_shell.
        sftp.reply_side`), and the reader is woken only if enough is left.
        """
        self._dispatch = dispatch

    def buffered(self) -> int:
        """Bytes buffered, not yet read."""
        return self._size

    def peek(self, n: int) -> bytes:
        """The first *n* buffered bytes (n <= buffered), left in place."""
        first, offset = self._chunks[0], self._offset
        if len(first) - offset >= n:
            return bytes(first[offset:offset + n])
        parts, have = [], -offset
        for chunk in self._chunks:
            parts.append(chunk)
            have += len(chunk)
            if have >= n:
                break
        return b"".join(parts)[offset:offset + n]

    take = _take

    async def readexactly(self, n: int) -> bytes:
        """Read exactly *n* bytes (``asyncio.IncompleteReadError`` at EOF,
        the channel's error if it failed with one and nothing is left).
        """
        if n <= 0:
            return b""
        while self._size < n:
            if self._eof:
                if self._exc is not None and not self._size:
                    raise self._exc
                raise asyncio.IncompleteReadError(
                    self._take(self._size) if self._size else b"", n)
            self._want = n
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._take(n)

    async def read(self, n: int = -1) -> bytes:
        """Read up to *n* bytes, all buffered ones if *n* < 0 (``b""`` at
        EOF)."""
        while not self._size and not self._eof:
            self._want = 1
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if not self._size:
            if self._exc is not None:
                raise self._exc
            return b""
        return self._take(self._size if n < 0 else min(n, self._size))

    def at_eof(self) -> bool:
        """Whether the server has closed its output and all was read."""
        return self._eof and not self._size

    # ---- writing

    async def drain(self) -> None:
        """Wait while the channel's send buffer is full."""
        while self._write_paused and not self._eof:
            fut = asyncio.get_running_loop().create_future()
            self._drainers.append(fut)
            await fut
        if self._eof and self._write_paused:
            raise self._exc or BrokenPipeError()


class SFTPChannelWriter:
    """The client's side of an SFTP channel (``write``, ``drain``...).

    What the SFTP client writes is already one turn's requests gathered
    into one piece, so it is handed to the socket at once: waiting for
    the connection's own end of turn (:class:`~psftp_shell.ssh.transport.
    TurnBatcher`) would cost every round trip one more turn of the event
    loop before its request leaves.
    """

    def __init__(self, session: SFTPSession) -> None:
        self._session = session
        self.channel = session.channel
        conn = getattr(self.channel, "_conn", None)
        batcher = getattr(conn, "_transport", None)
        self._send_now: Callable[[Callable[[bytes], None], bytes], None] \
            | None = getattr(batcher, "send_now", None)

    def write(self, data: bytes) -> None:
        """Send *data* on the channel."""
        if self._send_now is not None:
            self._send_now(self.channel.write, data)
        else:
            self.channel.write(data)

    def write_two(self, head: bytes, data: bytes | bytearray | memoryview
                  ) -> None:
        """Send *head* and then *data* on the channel, not joined where
        the channel takes them so (:mod:`~psftp_shell.ssh.fast_send`)."""
        two = getattr(self.channel, "write_two", None)
        if two is None:
            self.write(b"".join((head, data)))
        elif self._send_now is not None:
            self._send_now(lambda _: two(head, data), b"")
        else:
            two(head, data)

    async def drain(self) -> None:
        """Wait until the channel takes more."""
        await self._session.drain()

    def can_write_eof(self) -> bool:
        """Whether the channel can send an end of file."""
        return bool(self.channel.can_write_eof())

    def write_eof(self) -> None:
        """Send an end of file."""
        self.channel.write_eof()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


def _stderr_buffer() -> IO[bytes] | None:
    return getattr(sys.stderr, "buffer", None)


async def open_sftp_channel(
        conn: asyncssh.SSHClientConnection, subsystem: str = "sftp", *,
        window: int | None = None, max_pktsize: int | None = None,
        stderr: Callable[[], IO[bytes] | None] = _stderr_buffer,
) -> tuple[SFTPSession, SFTPChannelWriter]:
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
        _, session = await conn.create_session(
            lambda: SFTPSession(stderr), **kwargs)
    except asyncssh.ChannelOpenError as exc:
        if "request failed" in exc.reason.lower():
            raise ConnectError([f"{what} request failed on channel 0"]) \
                from None
        raise ConnectError([f"channel 0: open failed: {exc.reason}"]) \
            from None
    except (asyncssh.Error, OSError) as exc:
        raise ConnectError([str(exc)]) from None
    assert isinstance(session, SFTPSession)
    return session, SFTPChannelWriter(session)
