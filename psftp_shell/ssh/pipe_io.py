"""A ``-S``/``-D`` process's pipes without asyncio's streams.

A StreamReader copies every byte four times on its way to the caller:
from the ``read`` result into its buffer, out into a slice, into a new
``bytes``, and once more when the rest of the buffer moves up.  A DATA
reply of 256 KiB paid that whole.  :class:`PipeReader` reads small
things (lengths, headers, short replies) into a buffer of its own and a
DATA reply's data straight into the buffer the caller hands it
(:meth:`PipeReader.read_into`), one ``readv`` per wake-up, which also
takes the next reply's header.

asyncio's pipe transport, on the way out, joins a WRITE's header and
data, appends what the pipe does not take at once to a buffer of its
own (a copy), and moves the rest of that buffer up after every write (a
copy more).  An upload keeps the pipe full, so that was most WRITEs.
:class:`PipeWriter` writes the header and data with one ``writev`` and
keeps what is left as views of the caller's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque

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


HIGH_WATER = 256 * 1024
"""Bytes waiting for the pipe above which :meth:`PipeWriter.drain` waits
(asyncio's pipe transport says 64 KiB; a WRITE is up to 256 KiB)."""
PIECES = 64
"""The most pieces handed to one ``writev``."""


class PipeWriter:
    """The send side of a pipe, for :class:`~psftp_shell.sftp.
    request_core.SFTPCore`: ``write``, ``write_two``, ``drain``,
    ``close``.

    What the pipe takes is written at once; the rest waits, in order, as
    views of the caller's ``bytes`` (never copied, never changed) until
    the pipe is writable.  A failed write (the program has gone: EPIPE)
    fails every later write and drain with ``BrokenPipeError``.

    :param fd: the pipe's write end; it is made non-blocking and belongs
        to the writer from now on (:meth:`close`)
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._queue: deque[memoryview] = deque()
        self._queued = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drainers: list[asyncio.Future[None]] = []
        self._error: OSError | None = None
        self._closing = False

    @property
    def queued(self) -> int:
        """Bytes written that the pipe has not taken yet."""
        return self._queued

    def write(self, data: bytes) -> None:
        """Send *data*."""
        self._put((data,))

    def write_two(self, head: bytes, data: bytes) -> None:
        """Send *head* and then *data*, not joined."""
        self._put((head, data))

    def _broken(self) -> BrokenPipeError:
        error = self._error
        why = error.strerror if error is not None else "closed"
        return BrokenPipeError(f"pipe to the server: {why}")

    def _put(self, pieces: tuple[bytes, ...]) -> None:
        if self._error is not None or self._closing:
            raise self._broken()
        done = 0
        if not self._queue:
            try:
                done = os.writev(self._fd, pieces)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._fail(exc)
                raise self._broken() from None
        for piece in pieces:
            size = len(piece)
            if done >= size:
                done -= size
                continue
            self._queue.append(memoryview(piece)[done:])
            self._queued += size - done
            done = 0
        if self._queue and self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        """The pipe takes more: write what waits."""
        queue = self._queue
        pieces = [queue[i] for i in range(min(len(queue), PIECES))]
        try:
            done = os.writev(self._fd, pieces)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(exc)
            return
        self._queued -= done
        while done:
            first = queue[0]
            if len(first) > done:
                queue[0] = first[done:]
                break
            done -= len(first)
            queue.popleft()
        if not queue:
            self._unwatch()
            if self._closing:
                self._close_fd()
        if self._queued <= HIGH_WATER:
            self._wake()

    def _unwatch(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            with contextlib.suppress(Exception):   # a closed loop
                loop.remove_writer(self._fd)

    def _wake(self) -> None:
        drainers, self._drainers = self._drainers, []
        for fut in drainers:
            if not fut.done():
                fut.set_result(None)

    def _fail(self, exc: OSError) -> None:
        self._error = exc
        self.abort()

    async def drain(self) -> None:
        """Wait while more than :data:`HIGH_WATER` bytes wait."""
        while self._queued > HIGH_WATER and self._error is None:
            fut = asyncio.get_running_loop().create_future()
            self._drainers.append(fut)
            await fut
        if self._error is not None:
            raise self._broken()

    def close(self) -> None:
        """Close the pipe once what waits is written (at once if
        nothing does): the program then reads its end of file."""
        self._closing = True
        if not self._queue:
            self._unwatch()
            self._close_fd()

    def abort(self) -> None:
        """Close the pipe now, dropping what waits."""
        self._closing = True
        self._queue.clear()
        self._queued = 0
        self._unwatch()
        self._close_fd()
        self._wake()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
