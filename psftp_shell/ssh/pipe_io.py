"""Reading a ``-S``/``-D`` process's output without asyncio's StreamReader.

A StreamReader copies every byte four times on its way to the caller:
from the ``read`` result into its buffer, out into a slice, into a new
``bytes``, and once more when the rest of the buffer moves up.  A DATA
reply of 256 KiB paid that whole.  :class:`PipeReader` reads small
things (lengths, headers, short replies) into a buffer of its own and a
DATA reply's data straight into the buffer the caller hands it
(:meth:`PipeReader.read_into`), one ``readv`` per wake-up, which also
takes the next reply's header.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

BUFFER = 64 * 1024
"""Bytes read ahead for small replies."""
HEADER = 13
"""Bytes read past a DATA reply's data: the next DATA reply's length,
type, id and data length.  More would be data to copy."""


class PipeReader:
    """The receive side of a pipe, for :class:`~psftp_shell.sftp.
    request_core.SFTPCore`: ``readexactly`` and ``read_into``.

    :param fd: the pipe's read end; it is made non-blocking and belongs
        to the reader from now on (:meth:`close`)
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._buf = bytearray(BUFFER)
        self._start = 0             # buffered bytes: _buf[_start:_end]
        self._end = 0

    def close(self) -> None:
        """Close the pipe."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)

    async def _readable(self) -> None:
        """Wait until the pipe has something to read (or its EOF)."""
        if self._fd < 0:
            raise ConnectionResetError("pipe closed")
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self._fd
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    def _eof(self, expected: int) -> asyncio.IncompleteReadError:
        return asyncio.IncompleteReadError(b"", expected)

    async def readexactly(self, n: int) -> bytes:
        """Read *n* bytes; raise IncompleteReadError at EOF."""
        while self._end - self._start < n:
            self._make_room(n)
            try:
                with memoryview(self._buf) as view:
                    got = os.readv(self._fd, [view[self._end:]])
            except BlockingIOError:
                await self._readable()
                continue
            if not got:
                raise self._eof(n)
            self._end += got
        start = self._start
        self._start = start + n
        with memoryview(self._buf) as view:
            return bytes(view[start:start + n])

    def _make_room(self, n: int) -> None:
        """Make the buffer hold *n* bytes from its first unread one."""
        start, end = self._start, self._end
        if start == end:
            self._start = self._end = 0
        if self._start + n <= len(self._buf):
            return
        have = end - start
        buf = self._buf if n <= len(self._buf) else bytearray(n)
        buf[:have] = self._buf[start:end]
        self._buf, self._start, self._end = buf, 0, have

    async def read_into(self, dest: bytearray) -> None:
        """Fill *dest*: buffered bytes first, the rest straight from the
        pipe, with at most :data:`HEADER` bytes past it into the buffer.
        Raises IncompleteReadError at EOF."""
        size = len(dest)
        with memoryview(dest) as out:
            pos = min(size, self._end - self._start)
            if pos:
                start = self._start
                with memoryview(self._buf) as view:
                    out[:pos] = view[start:start + pos]
                self._start = start + pos
            if pos < size:              # the buffer is empty now
                self._start = self._end = 0
            while pos < size:
                try:
                    with memoryview(self._buf) as view:
                        got = os.readv(self._fd,
                                       [out[pos:], view[:HEADER]])
                except BlockingIOError:
                    await self._readable()
                    continue
                if not got:
                    raise self._eof(size)
                pos += got
                if pos > size:
                    self._end = pos - size
                    pos = size


def _wake(ready: asyncio.Future[None]) -> None:
    """The pipe is readable: wake its reader once.  The loop may call
    this again before the reader has run, or after it was cancelled."""
    if not ready.done():
        ready.set_result(None)
