"""The work of one command, spread over the streams (the job board).

Each stream runs a few *lanes*.  A lane takes, in this order: unassigned
chunks of a big file already started (if its stream has no chunk run
going), the next file of the command, or half of the slowest chunk of a
big file (work stealing).  So several small files are in flight on each
stream, a big file is spread over every stream, and files start in the
order sftp would copy them; their messages come out in that order too,
through their :class:`~psftp_shell.core.ordered_output.Slot`.

At ``-n 1`` the control client alone runs the lanes (a board that is
*concurrent* but not *parallel*): several files are in flight on it,
none goes in chunks.  A board that is neither runs each job inline, one
after the other, as sftp's loop does.

A lane whose stream's connection is lost stops; the file it was copying
is started again on another stream, and the chunks its stream had not
finished go back to their queue.  The pool tries a replacement, which
joins the command through :meth:`Board.add_stream` when it opens.  When
no pool stream is left, the control client carries the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from psftp_shell.engine.chunked_file import ChunkedFile
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.sftp.client import SFTPError, StatusError

LANES_PER_STREAM = 4
MAX_PENDING = 512
"""Files queued ahead of the lanes before a tree walk waits."""


class Job(Protocol):
    """One file copy the board runs on some stream."""

    def close_slot(self) -> None:
        """The job is over: its place in the output order may pass."""

    def retry(self) -> None:
        """The job's stream was lost: it runs again on another one."""

    async def run(self, lane: Lane) -> bool:
        """Copy the file on *lane*'s stream; False after an error."""
        ...


@dataclass(eq=False)
class Lane:
    """A worker of the board, bound to one stream."""

    board: Board
    stream: Stream


class Board:
    """Runs a command's jobs on its streams.

    :param streams: the streams to run on (the control stream alone for
        ``-n 1``)
    :param parallel: the streams are the pool's: big files may go in
        chunks over them (and remote paths must be absolute)
    :param concurrent: run jobs on lanes, :attr:`lanes` per stream;
        else inline, one by one (default: as *parallel*)
    :param planned: the streams there will be once all have opened
    :param fallback: gives the control stream once every other is lost
    :param on_lost: told when a stream's connection is lost
    """

    def __init__(self, ctx: CopyContext, streams: list[Stream], *,
                 parallel: bool, planned: int = 1,
                 fallback: Callable[[], Stream | None] | None = None,
                 on_lost: Callable[[Stream], None] | None = None,
                 lanes: int = LANES_PER_STREAM,
                 concurrent: bool | None = None) -> None:
        self.ctx = ctx
        self.streams = list(streams)
        self.parallel = parallel
        self.concurrent = parallel if concurrent is None else concurrent
        self.planned = max(planned, len(streams))
        self.lanes = lanes
        self._fallback = fallback
        self._on_lost = on_lost
        self.pending: deque[Job] = deque()
        self.shared: list[ChunkedFile] = []
        self.failed = False
        self.closed = False
        self.active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._error: BaseException | None = None

    # ---- streams

    def add_stream(self, stream: Stream) -> None:
        """A stream that opened late joins the command."""
        if stream not in self.streams:
            self.streams.append(stream)
            if self.concurrent:
                self._spawn(stream)
            self._notify()

    def live_stream(self, prefer: Stream | None = None) -> Stream | None:
        """A stream that still works, *prefer* if it does."""
        if prefer is not None and prefer.usable():
            return prefer
        return next((s for s in self.streams if s.usable()), None)

    def stream_lost(self, stream: Stream) -> None:
        """*stream*'s connection is gone; fall back if none is left."""
        stream.alive = False
        if self._on_lost is not None:
            self._on_lost(stream)
        if stream.control:
            return
        if self.live_stream() is None and self._fallback is not None:
            spare = self._fallback()
            self._fallback = None
            if spare is not None:
                self.streams.append(spare)
                if self.concurrent:
                    self._spawn(spare)
        self._notify()

    # ---- sharing big files

    def share(self, file: ChunkedFile) -> None:
        """Let every stream help with *file*'s chunks (at ``-n 1``, the
        control's other lanes: a journal's resume runs in chunks, and its
        lead may find the stream busy with another file's run)."""
        file.notify = self._notify
        file.on_lost = self.stream_lost
        if self.concurrent:
            self.shared.append(file)
            self._notify()

    def unshare(self, file: ChunkedFile) -> None:
        """*file* needs no more help."""
        with contextlib.suppress(ValueError):
            self.shared.remove(file)

    # ---- jobs

    def _spawn(self, stream: Stream) -> None:
        for _ in range(self.lanes):
            task = asyncio.ensure_future(self._lane(Lane(self, stream)))
            self._tasks.add(task)
            task.add_done_callback(self._lane_done)

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None \
                and self._error is None:
            self._error = task.exception()
            self._notify()

    async def submit(self, job: Job) -> None:
        """Run *job* now (inline) or queue it for the lanes."""
        self._raise_error()
        if not self.concurrent:
            stream = self.live_stream()
            assert stream is not None
            await self._run_job(Lane(self, stream), job)
            return
        self.pending.append(job)
        self._notify()
        while len(self.pending) > MAX_PENDING:
            await self._wait()
            self._raise_error()

    async def _run_job(self, lane: Lane, job: Job) -> None:
        self.active += 1
        again = False
        try:
            if not await job.run(lane):
                self.failed = True
        except StatusError:
            raise
        except SFTPError:
            if lane.stream.control:
                raise
            self.stream_lost(lane.stream)
            job.retry()
            self.pending.appendleft(job)     # start it over elsewhere
            again = True
        finally:
            self.active -= 1
            if not again:
                job.close_slot()
            self._notify()

    async def _lane(self, lane: Lane) -> None:
        while lane.stream.usable():
            work = await self._next(lane)
            if work is None:
                return
            if isinstance(work, ChunkedFile):
                await work.help(lane.stream)
            else:
                await self._run_job(lane, work)
            await asyncio.sleep(0)      # never starve the loop

    async def _next(self, lane: Lane) -> Job | ChunkedFile | None:
        stream = lane.stream
        while stream.usable():
            if self.ctx.is_interrupted():
                self._drop_pending()
            free = stream.runs == 0 and not self.ctx.is_interrupted()
            if free:
                for file in self.shared:
                    if file.queue.pending and file.wants(stream):
                        return file
            if self.pending:
                return self.pending.popleft()
            if free:
                for file in self.shared:
                    if file.wants(stream):
                        return file
            if self.closed and self.active == 0:
                return None
            await self._wait()
        return None

    def _drop_pending(self) -> None:
        """Interrupted: files not started are not started."""
        while self.pending:
            self.failed = True
            self.pending.popleft().close_slot()

    # ---- waking

    def _notify(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def _wait(self) -> None:
        await self._wake.wait()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def finish(self) -> bool:
        """Wait for every job; True if none failed."""
        self.closed = True
        self._notify()
        try:
            while self._tasks:
                await asyncio.wait(set(self._tasks),
                                   return_when=asyncio.FIRST_EXCEPTION)
                self._raise_error()
        except BaseException:
            await self.cancel()
            raise
        self._drop_pending()
        return not self.failed

    async def cancel(self) -> None:
        """Stop every lane now (the command failed or was cancelled)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
