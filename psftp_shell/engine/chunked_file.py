"""The shared state of one file copied by several streams at once.

A :class:`ChunkedFile` holds what the streams share: the chunk queue,
the ranges done, the end of file seen, the first error, each stream's
handle.  Streams help by running a pipeline over its chunks
(:mod:`psftp_shell.engine.chunk_pipeline`); when a stream's connection is
lost, what it had not finished goes back to the queue for the others, while an
error or an interrupt stops the whole file.  Subclasses say how a stream
opens the remote file and which pipeline it runs
(:mod:`psftp_shell.engine.get_chunks`, :mod:`psftp_shell.engine.put_chunks`).
Helpers take the OPENs sent early for them
(:mod:`psftp_shell.engine.early_opens`), and each stream closes its handle
as soon as it has sent its last request (:meth:`ChunkedFile.close_early`),
so the end costs no round trip: behind a download's last READ, and behind
an upload's last WRITE with the FSTAT that checks its size (unless the
upload still needs a handle at the end, to sync or hash the file).  The
journal's checkpoints: :mod:`psftp_shell.engine.checkpoints`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from psftp_shell.core.escape import handle_error
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.ordered_output import Printer
from psftp_shell.engine.checkpoints import Checkpoints
from psftp_shell.engine.early_opens import EarlyOpens, close_quietly
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.chunk_ranges import (
    Chunk,
    ChunkQueue,
    RangeSet,
    chunk_size,
)
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import FX_FAILURE, SFTPError, StatusError
from psftp_shell.sftp.request_core import retrieved


class StreamRun(Protocol):
    """One stream's pipeline over the file's chunks, as the file sees it
    (:class:`psftp_shell.engine.chunk_pipeline.Run`; that module imports this
    one)."""

    stream: Stream
    handle: bytes
    closed: bool                # its handle was closed early

    async def run(self) -> None:
        """Take chunks and move their bytes until there are none."""

    def _sent_all(self) -> bool:
        """Whether it has sent its last request for its chunks."""


Closed = list[tuple[Stream, BaseException | None]]
"""What each stream's CLOSE gave: None, or the error."""


WATCH_SECONDS = 0.2
"""How often a copy waiting for its streams looks whether it was
interrupted (Ctrl-C, or the control connection lost) with no stream at
work on it: then nothing would ever finish it, and it stops."""

MORE_ROUNDS = 3
"""How often a copy goes over its file again: for holes left by a source
that shrank and grew, or for a source rewritten meanwhile."""


def _nothing() -> None:
    pass


class ChunkedFile:
    """The shared state of one file copied in chunks.

    :param ranges: what is still to be copied
    :param size: where the file is expected to end
    :param fd: the local file (written for downloads, read for uploads)

    The destination must be a temporary that reads as zeros where
    nothing was written (new, or holding only ranges from this source).
    """

    def __init__(self, ctx: CopyContext, job: TransferJob, fd: int,
                 ranges: list[tuple[int, int]], size: int,
                 done: RangeSet, streams: int) -> None:
        block = ctx.read_size if not job.upload else ctx.write_size
        chunk = ctx.chunk or chunk_size(size, streams, block)
        self.ctx = ctx
        self.job = job
        self.fd = fd
        self.size = size
        self.block = block
        self.done = done
        self.queue = ChunkQueue(ranges, size, chunk=chunk, align=block,
                                steal_min=max(block, chunk // 4))
        self.eof_at: int | None = None
        self.eof_by: Stream | None = None   # the stream that met it
        self.high = 0               # the end of the data moved
        self.stopped = False
        self.message: str | None = None
        self.keeps = False          # the bytes in hand stay for reget
        self.runs = 0
        self.sparse = True          # zero blocks may be left unwritten
        self.skipped = False        # and some were
        self.recheck = False        # a pass reading again compares
        self.differed = False       # and found other bytes than before
        self.handles: dict[Stream, bytes] = {}
        self.early: EarlyOpens | None = None
        self.closes_early = True    # each run closes behind its last
        self.look_each = False      # and each, not just the last, FSTATs
        self.closing: list[tuple[Stream, asyncio.Future[None]]] = []
        self.running: list[StreamRun] = []    # the runs at work on the file
        self.opens = 0              # OPENs made by the streams so far
        self._looks: list[tuple[int, asyncio.Future[Attrs]]] = []
        self.excluded: dict[Stream, int | None] = {}
        """Streams refused an OPEN of the file; for a refusal a handle
        limit could explain, the count of their session's closes then:
        they may help again after one more."""
        self.notify: Callable[[], None] = _nothing
        self.on_lost: Callable[[Stream], None] = _nothing_lost
        self.mtime: int | None = None
        self.checkpoints = Checkpoints()
        self._finished = asyncio.Event()

    # ---- what the runs and the board ask

    def wants(self, stream: Stream) -> bool:
        """Whether *stream* could help: work to take or to steal."""
        if self.stopped or self._shut_out(stream):
            return False
        return bool(self.queue.pending) or \
            self.queue.stealable() is not None

    def _shut_out(self, stream: Stream) -> bool:
        if stream not in self.excluded:
            return False
        closes = self.excluded[stream]
        if closes is not None and stream.client.handles.closed != closes:
            del self.excluded[stream]   # a handle was closed: try again
            return False
        return True

    def next_chunk(self) -> Chunk | None:
        """A chunk to work on: the next one, else half of the slowest."""
        return self.queue.take() or self.queue.steal()

    def saw_eof(self, offset: int, stream: Stream | None = None) -> None:
        """The source ends at or before *offset* (as *stream* saw)."""
        if self.eof_at is None or offset < self.eof_at:
            self.eof_at, self.eof_by = offset, stream

    def fail(self, message: str | None, keeps: bool = False) -> None:
        """Stop the copy; *message* is sftp's error line (first wins).
        With *keeps*, what arrived is good and stays for ``reget``."""
        if self.message is None:
            self.message, self.keeps = message, keeps
        self.stop()

    def stop(self) -> None:
        """No more requests for this file (error or interrupt)."""
        self.stopped = True
        self.queue.drop()
        self.check_done()

    def check_done(self) -> None:
        """Signal the owner once no run is left and nothing is to do."""
        if self.runs == 0 and (self.stopped or self.queue.idle):
            self._finished.set()

    def hand_back(self, chunks: list[Chunk]) -> None:
        """Requeue what *chunks* did not finish (a stream was lost)."""
        for chunk in chunks:
            end = max(chunk.end, chunk.pos)
            missing = self.done.missing(chunk.start, end)
            if not self.stopped:
                self.queue.put_back(missing, end if chunk.follow else None)
            self.queue.release(chunk)
        self.notify()

    async def wait(self) -> None:
        """Wait until the data phase is over (done, failed or stopped).

        Interrupted while no stream works on it (every stream lost, its
        chunks queued for a replacement that may never help), the copy
        stops instead of waiting for ever.
        """
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), WATCH_SECONDS)
            if self.runs == 0 and self.ctx.is_interrupted():
                self.stop()
        await self.checkpoints.settle()

    @property
    def held_still(self) -> bool:
        """Whether a pass made again read what the one before read."""
        return self.recheck and not self.differed

    @property
    def complete(self) -> bool:
        """Whether every byte up to the end of file has arrived."""
        return (not self.stopped and self.eof_at is not None
                and self.done.covers(0, self.eof_at))

    async def close_handles(self, out: Printer) -> bool:
        """CLOSE every stream's handle at once; report a failure as
        sftp does (once)."""
        return self.report_closes(out, await self.close_all())

    async def close_all(self, keep: Stream | None = None) -> Closed:
        """CLOSE every stream's handle at once (but *keep*'s, left in
        :attr:`handles`), and quietly the early handles nobody took;
        return what each reported CLOSE gave."""
        handles = self.handles
        self.handles = {keep: handles.pop(keep)} \
            if keep in handles else {}
        live = [(s, h) for s, h in handles.items() if s.usable()]
        spare: list[tuple[Stream, bytes]] = []
        if self.early is not None:
            spare = self.early.opened()
            self.early.drop()
        sent, self.closing = self.closing, []
        results = await asyncio.gather(
            *(s.client.close_handle(h) for s, h in live),
            *(fut for _, fut in sent),
            *(close_quietly(s, h) for s, h in spare),
            return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and \
                    not isinstance(result, SFTPError):
                raise result
        streams = [s for s, _ in live] + [s for s, _ in sent]
        return [(s, r if isinstance(r, BaseException) else None)
                for s, r in zip(streams, results, strict=False)]

    @staticmethod
    def report_closes(out: Printer, closed: Closed) -> bool:
        """Print sftp's message for the first CLOSE that failed; mark
        the streams whose connection was lost.  True if all closed."""
        ok = True
        for stream, result in closed:
            if isinstance(result, StatusError):
                if ok:
                    out.error(f"close remote: {result.text}")
                ok = False
            elif result is not None:
                stream.alive = False
        return ok

    async def any_handle(self, spare: Stream | None = None
                         ) -> tuple[Stream, bytes] | None:
        """A live stream with a handle on the file, opening one on
        *spare* if no stream that helped is left."""
        for stream, handle in self.handles.items():
            if stream.usable():
                return stream, handle
        if spare is None or not spare.usable():
            return None
        try:
            handle = await self.open_on(spare, wait=True)
        except StatusError:
            return None
        self.handles[spare] = handle
        return spare, handle

    def close_early(self, stream: Stream, handle: bytes) -> None:
        """CLOSE *stream*'s *handle* now, behind its last requests.

        Just before it goes an FSTAT (see :meth:`look`): from every
        stream if :attr:`look_each`, else only from the last stream
        holding a handle.  What the CLOSE gives is reported with the
        others' at the end (:meth:`close_all`).
        """
        if self.handles.get(stream) == handle:
            del self.handles[stream]
        if self.look_each or not any(s.usable() for s in self.handles):
            self._looks.append((self.opens, _sent_now(
                stream.client.fstat(handle))))
        self.closing.append((stream, _sent_now(
            stream.client.close_handle(handle))))

    def look(self) -> asyncio.Future[Attrs] | None:
        """The FSTAT sent by the last stream to close its handle, if no
        stream opened the file after it."""
        if not self._looks or self._looks[-1][0] != self.opens:
            return None
        return self._looks[-1][1]

    async def largest_size(self) -> int | None:
        """The largest size the FSTATs sent with the CLOSEs saw; None if
        none was sent or one failed.

        With :attr:`look_each`, every stream sent one behind its last
        WRITE, and a file written at offsets only grows: the largest is
        the file's size once every stream is done.
        """
        looks, self._looks = self._looks, []
        sizes = await asyncio.gather(*(fut for _, fut in looks),
                                     return_exceptions=True)
        known = [a.size for a in sizes if isinstance(a, Attrs)]
        for result in sizes:
            if isinstance(result, BaseException) and \
                    not isinstance(result, SFTPError):
                raise result
        if not known or len(known) < len(sizes) or None in known:
            return None
        return max(k for k in known if k is not None)

    async def reopen(self, stream: Stream) -> bytes | None:
        """Open the file again on *stream* (its handle was closed); on
        failure, fail the copy (None)."""
        try:
            handle = await self.open_on(stream, wait=True)
        except StatusError as exc:
            self.fail(handle_error(f'remote open "{self.job.source}"',
                                   exc.text))
            return None
        self.opens += 1
        self.handles[stream] = handle
        return handle

    def close_later(self) -> None:
        """Close the handles of an abandoned copy in the background."""
        handles, self.handles = self.handles, {}
        self.closing = []           # sent already; failures retrieved
        if self.early is not None:
            self.early.drop()

        async def close() -> None:
            for stream, handle in handles.items():
                if stream.usable():
                    with contextlib.suppress(SFTPError):
                        await stream.client.close_handle(handle)

        self.ctx.background(close())

    async def more(self, stream: Stream) -> bool:
        """Queue the holes below the end of file again; False if none.

        Holes appear only when the source shrank and grew again while
        streams read it; they are fetched once more.
        """
        if self.stopped or self.eof_at is None or self.complete:
            return False
        self.queue.put_back(self.done.missing(0, self.eof_at), None)
        self._finished.clear()
        self.notify()
        if stream.runs == 0 and stream.usable():
            await self.help(stream)
        await self.wait()
        return True

    # ---- helping

    def early_or(self, stream: Stream,
                 opening: Callable[[], Awaitable[bytes]]
                 ) -> Awaitable[bytes]:
        """*stream*'s OPEN sent early (:class:`EarlyOpens`), if any;
        else *opening* (called now)."""
        taken = self.early.take(stream) if self.early is not None else None
        return taken if taken is not None else opening()

    async def open_on(self, stream: Stream, *, wait: bool = False) -> bytes:
        """Open the remote file on *stream* (subclasses); with *wait*, a
        refusal while the session's handles are taken waits for one
        (:func:`~psftp_shell.filecopy.remotedest.open_remote`): not for
        a stream that comes to help, which leaves the file to the
        others instead."""
        raise NotImplementedError

    def make_run(self, stream: Stream, handle: bytes) -> StreamRun:
        """The pipeline for *stream* (subclasses)."""
        raise NotImplementedError

    async def help(self, stream: Stream) -> None:
        """Work on this file's chunks on *stream* until none are left."""
        self.runs += 1
        stream.runs += 1
        try:
            handle = self.handles.get(stream)
            if handle is None and not self.stopped:
                count = stream.client.handles
                closes, held = count.closed, count.open
                try:
                    handle = await self.open_on(stream)
                except StatusError as exc:
                    limit = exc.code == FX_FAILURE and \
                        max(held, count.open) > 0
                    if limit:
                        count.limited = True
                    self.excluded[stream] = closes if limit else None
                    return
                self.opens += 1
                self.handles[stream] = handle
            if handle is not None:
                run = self.make_run(stream, handle)
                self.running.append(run)
                try:
                    await run.run()
                finally:
                    self.running.remove(run)
        except StatusError:
            raise
        except SFTPError:
            if stream.control:
                raise               # the control connection: fatal
            self.on_lost(stream)
        finally:
            stream.runs -= 1
            self.runs -= 1
            self.check_done()
            self.notify()


def _nothing_lost(stream: Stream) -> None:
    stream.alive = False


def _sent_now(request: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
    """Start *request* (it goes out in this turn of the event loop,
    behind what was sent before); its failure never goes unseen."""
    task = asyncio.ensure_future(request)
    task.add_done_callback(retrieved)
    return task
