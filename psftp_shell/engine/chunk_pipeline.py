"""The pipelines a stream runs over the chunks of a shared file.

Each stream that helps with a :class:`~psftp_shell.engine.chunked_file
.ChunkedFile` runs a :class:`PullRun` (download) or :class:`PushRun`
(upload): it takes chunks from the file's queue - or steals half of the
slowest one - and keeps requests in flight within its stream's budget,
going on to the next chunk with no pause.  The chunk that reaches the
expected end follows the file to its real end of file, one request at a
time for downloads, as sftp does.  A run closes its handle right behind
its last request (and opens the file again should work come back to
it).  All-zero blocks are not written into the fresh temporary (it reads
as zeros already), so sparse files stay cheap.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import Any

from psftp_shell.engine.chunked_file import ChunkedFile
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.chunk_ranges import Chunk
from psftp_shell.filecopy.copy_context import MAX_BUFFER
from psftp_shell.filecopy.localdest import pwrite_all
from psftp_shell.filecopy.request_pipeline import read_local
from psftp_shell.sftp.client import StatusError

MAX_HELD = 2
"""Chunks a run may have requests out for: the one it is asking for and
the one before it, still draining."""
_ZEROS = bytes(MAX_BUFFER)


def is_zero(data: bytes) -> bool:
    """Whether *data* is all zero bytes (quick to say no)."""
    size = len(data)
    if not size or data[0] or data[-1]:
        return not size
    return data == (_ZEROS if size == MAX_BUFFER else bytes(size))


class Run:
    """One stream's pipeline over chunks of one file."""

    def __init__(self, file: ChunkedFile, stream: Stream,
                 handle: bytes) -> None:
        self.file = file
        self.ctx = file.ctx
        self.stream = stream
        self.client = stream.client
        self.handle = handle
        self.closed = False         # the handle was closed early
        self.inflight: deque[tuple[asyncio.Future[Any], int, int,
                                   Chunk]] = deque()
        self.held: list[Chunk] = []
        self.counts: dict[Chunk, int] = {}
        self.current: Chunk | None = None

    async def run(self) -> None:
        """Take chunks and move their bytes until there are none."""
        try:
            while True:
                await self._fill()
                self._close_if_done()
                if not self.inflight:
                    break
                await self._settle_next()
        except BaseException:
            self._abort()
            raise
        if not self.file.stopped and (
                self.held or self.ctx.is_interrupted()):
            self.file.stop()        # interrupted with work left

    def _close_if_done(self) -> None:
        """Close as soon as the last request is out: the server answers
        in order, so the CLOSE costs no round trip of its own.

        Once the file has no work left to take or steal, every run of
        it that has sent its last request closes, not only this one: a
        run waiting for replies, which held off while work could still
        come to it, must not wait for them to learn that it is done.
        """
        file = self.file
        if not file.closes_early or file.queue.pending \
                or file.queue.stealable() is not None:
            return
        for run in file.running:
            if not run.closed and run._sent_all():
                run.closed = True
                file.close_early(run.stream, run.handle)

    def _sent_all(self) -> bool:
        """Whether this run has sent its last request for its chunks."""
        if self.file.stopped or self.ctx.is_interrupted() \
                or not self.stream.usable():
            return False
        return not any(c.pos < c.end or (c.follow and not self._probed(c))
                       for c in self.held)

    def _probed(self, chunk: Chunk) -> bool:
        """Whether a chunk that follows the file past its expected end
        has nothing more to send for now."""
        return False

    def _abort(self) -> None:
        self._take_arrived()        # what arrived counts for the journal
        for fut, _, _, _ in self.inflight:
            fut.cancel()
            self.stream.budget.release()
        self.inflight.clear()
        held, self.held = self.held, []
        self.file.hand_back(held)

    def _chunk(self) -> Chunk | None:
        """The chunk to request from next, taking one if needed."""
        chunk = self.current
        if chunk is not None and chunk.pos >= chunk.end:
            if chunk.follow and not self._extend(chunk):
                return None
            if chunk.pos >= chunk.end:      # (not extended: it ended)
                self.current = None
                self._retire(chunk)
                chunk = None
        if chunk is None:
            if len(self.held) >= MAX_HELD:
                return None         # let other streams have the rest
            chunk = self.file.next_chunk()
            if chunk is None:
                return None
            self.current = chunk
            self.held.append(chunk)
            self.counts[chunk] = 0
            if chunk.pos >= chunk.end and not chunk.follow:
                return self._chunk()
        return chunk

    def _extend(self, chunk: Chunk) -> bool:
        """Go on past the expected end (the following chunk); False to
        wait.  Ending *chunk* instead (:meth:`_ended`) says the file
        ends there."""
        chunk.end = chunk.pos + self.file.block
        return True

    def _retire(self, chunk: Chunk) -> None:
        """Release *chunk* once fully requested and answered."""
        if chunk is self.current or self.counts.get(chunk, 0):
            return
        self.counts.pop(chunk, None)
        if chunk in self.held:
            self.held.remove(chunk)
        self.file.queue.release(chunk)
        self.file.check_done()

    def _take_arrived(self) -> None:
        """Settle the replies already in, oldest first, without waiting.

        While a slow or rate-limited stream is still filling its budget,
        its early replies count at once (for progress and the journal);
        an error reply is left for :meth:`_settle_next` to raise.
        """
        inflight = self.inflight
        while inflight:
            fut, start, length, chunk = inflight[0]
            if not fut.done() or fut.cancelled() or \
                    fut.exception() is not None:
                return
            inflight.popleft()
            self.counts[chunk] -= 1
            if not self._settle(fut.result(), start, length, chunk):
                self.stream.budget.release()
            self._retire(chunk)

    async def _fill(self) -> None:
        budget = self.stream.budget
        while not self.file.stopped and not self.ctx.is_interrupted():
            self._take_arrived()
            chunk = self._chunk()
            if chunk is None:
                return
            if budget.locked() and self.inflight:
                return
            if self.closed:         # work came back: open again
                handle = await self.file.reopen(self.stream)
                if handle is None:
                    return          # the file failed
                self.handle, self.closed = handle, False
                continue            # the world may have moved meanwhile
            await budget.acquire()
            length = min(self.file.block, chunk.end - chunk.pos)
            try:
                await self.ctx.throttle(length)
                fut, issued = self._issue(chunk.pos, length)
            except BaseException:
                budget.release()
                raise
            if fut is None:
                budget.release()
                self._ended(chunk, chunk.pos)
                continue
            self.inflight.append((fut, chunk.pos, issued, chunk))
            self.counts[chunk] += 1
            chunk.pos += issued
            if issued < length:
                self._ended(chunk, chunk.pos)
            await self._after_issue()

    def _issue(self, offset: int, length: int
               ) -> tuple[asyncio.Future[Any] | None, int]:
        """Send one request; (None, 0) at the local end of file."""
        raise NotImplementedError

    async def _after_issue(self) -> None:
        """Wait for the transport if it asks (uploads)."""

    def _ended(self, chunk: Chunk, offset: int) -> None:
        """The source ends at *offset*, inside *chunk*."""
        self.file.saw_eof(offset, self.stream)
        chunk.follow = False
        chunk.end = min(chunk.end, offset)

    async def _settle_next(self) -> None:
        fut, start, length, chunk = self.inflight.popleft()
        self.counts[chunk] -= 1
        try:
            result = await fut
        except BaseException:
            self.stream.budget.release()
            raise
        if not self._settle(result, start, length, chunk):
            self.stream.budget.release()
        self._retire(chunk)

    def _settle(self, result: Any, start: int, length: int,
                chunk: Chunk) -> bool:
        """Take a reply; True if its budget slot went to a new request."""
        raise NotImplementedError

    def _moved(self, start: int, nbytes: int) -> None:
        self.file.done.add(start, start + nbytes)
        self.file.high = max(self.file.high, start + nbytes)
        job = self.file.job
        job.transferred += nbytes
        self.ctx.observer.advanced(job, nbytes, self.stream.index)
        self.file.checkpoints.tick(self.file.done)


class PullRun(Run):
    """A download run: READ requests, data written at their offsets."""

    def _extend(self, chunk: Chunk) -> bool:
        # The first look past the expected end goes out with the last
        # reads (its end of file then costs no round trip of its own);
        # past that, one request at a time, as sftp follows a file.
        if self.counts.get(chunk, 0) and chunk.pos != self.file.size:
            return False
        return super()._extend(chunk)

    _probe: asyncio.Future[Any] | None = None
    _probe_sent = 0.0

    def _probed(self, chunk: Chunk) -> bool:
        """Whether the first look past the expected end is out (and no
        data was found there so far: then the file is followed)."""
        size = self.file.size
        return chunk.pos > size and self.file.high <= size

    def _issue(self, offset: int, length: int
               ) -> tuple[asyncio.Future[Any] | None, int]:
        fut = self.client.read_nowait(self.handle, offset, length)
        if not self.inflight and self.ctx.tuner is not None:
            self._probe, self._probe_sent = fut, time.monotonic()
        return fut, length

    async def _settle_next(self) -> None:
        probe = self.inflight[0][0] is self._probe
        try:
            await super()._settle_next()
        except StatusError as exc:
            self.file.fail(f'read remote "{self.file.job.source}" : '
                           f"{exc.text}", keeps=True)
        if probe and self.ctx.tuner is not None:
            self.ctx.tuner.round_trip(
                self.client, time.monotonic() - self._probe_sent)

    def _settle(self, result: Any, start: int, length: int,
                chunk: Chunk) -> bool:
        data: bytes = result
        if not data:
            self._ended(chunk, start)
            return False
        if self.file.message is not None:
            return False            # failed: drain, store nothing more
        got = len(data)
        try:
            if self.file.recheck and not self.file.differed:
                self.file.differed = not _held(self.file.fd, data, start)
            if self.file.sparse and is_zero(data):
                self.file.skipped = True
            else:
                pwrite_all(self.file.fd, data, start)
        except OSError as exc:
            self.file.fail(f'write local "{self.file.job.destination}": '
                           f"{exc.strerror}")
            return False
        finally:
            self.client.give_back(data)
        self._moved(start, got)
        if self.ctx.tuner is not None:
            self.ctx.tuner.received(self.client, got)
        if got >= length or self.closed:
            return False            # (closed: the hole is fetched later)
        rest = start + got          # a short read: ask for the rest now
        fut = self.client.read_nowait(self.handle, rest, length - got)
        self.inflight.appendleft((fut, rest, length - got, chunk))
        self.counts[chunk] += 1
        return True


def _held(fd: int, data: bytes, offset: int) -> bool:
    """Whether *fd* holds *data* at *offset* already (False if it cannot
    be read: a file opened to write only)."""
    try:
        return os.pread(fd, len(data), offset) == data
    except OSError:
        return False


class PushRun(Run):
    """An upload run: local reads sent as WRITEs at their offsets."""

    def _issue(self, offset: int, length: int
               ) -> tuple[asyncio.Future[Any] | None, int]:
        data = read_local(self.ctx, self.file.fd, offset, length,
                          self.file.job.source)
        if not data:
            return None, 0
        # zeros are left unwritten, but not at the end: the last WRITE
        # sets the file's size
        if self.file.sparse and offset + len(data) < self.file.size \
                and is_zero(data):
            self.file.skipped = True
            done: asyncio.Future[Any] = \
                asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done, len(data)
        return self.client.write_nowait(self.handle, offset, data), \
            len(data)

    def _extend(self, chunk: Chunk) -> bool:
        # a local file: whether it goes on is known at once
        if not self._probed(chunk):
            return super()._extend(chunk)
        self._ended(chunk, chunk.pos)
        return True

    def _probed(self, chunk: Chunk) -> bool:
        return os.fstat(self.file.fd).st_size <= chunk.pos

    async def _after_issue(self) -> None:
        # the CLOSE goes before waiting for the transport: meanwhile the
        # last WRITE may be answered
        self._close_if_done()
        await self.client.drain()

    async def _settle_next(self) -> None:
        try:
            await super()._settle_next()
        except StatusError as exc:
            self.file.fail(f'write remote "{self.file.job.destination}": '
                           f"{exc.text}")

    def _settle(self, result: Any, start: int, length: int,
                chunk: Chunk) -> bool:
        self._moved(start, length)
        return False
