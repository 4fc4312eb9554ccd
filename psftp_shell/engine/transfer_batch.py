"""One transfer command's copies, handed to the board in sftp's order.

A ``get`` or ``put`` (one file, a glob, or trees) opens a :class:`Batch`
and hands it every file in the order sftp would copy them.  What the
command prints between files (``Fetching a to b``, walk messages) goes
to :attr:`Batch.out`; each file gets the next place in the output
order, so the lines come out as sftp's even when files are copied
concurrently.  A directory's epilogue (modes and times) runs in its
own turn in that order, once every file handed over before it is done;
later files go on meanwhile.  :meth:`Batch.finish` waits for them all.

Every file that fails is reported to the observer (``file_failed``, if
it has that method) with the first error printed for it (the cause; what
follows, such as ``Download of file ... failed``, is its consequence),
so that a progress view can end a multi-file command with one list of
failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from psftp_shell.core.observer import (
    report_failure,
    report_queued,
    report_walking,
)
from psftp_shell.core.ordered_output import Sequencer, Slot
from psftp_shell.engine import trees
from psftp_shell.engine.getjob import GetJob
from psftp_shell.engine.job_board import Board, Lane
from psftp_shell.engine.putjob import MaybeDir, PutJob
from psftp_shell.engine.trees import Finisher
from psftp_shell.filecopy.copy_context import CopyContext, Flags
from psftp_shell.filecopy.journal import UploadJournals
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import SFTPClient


class NotedSlot(Slot):
    """A file's slot that remembers the first error printed through it.

    Everything is passed on to the sequencer's own slot.
    """

    __slots__ = ("inner", "reason")

    def __init__(self, inner: Slot) -> None:
        # no Slot.__init__: the state lives in *inner*
        self.inner = inner
        self.reason: str | None = None

    @property
    def closed(self) -> bool:
        """Whether the slot was closed."""
        return self.inner.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self.inner.closed = value

    def line(self, text: str) -> None:
        """A stdout line, in turn."""
        self.inner.line(text)

    def info(self, text: str) -> None:
        """An informational line, in turn."""
        self.inner.info(text)

    def error(self, text: str) -> None:
        """An error message, in turn; the first one is remembered."""
        if self.reason is None:
            self.reason = text
        self.inner.error(text)

    def logit(self, text: str) -> None:
        """A ``logit`` message, in turn."""
        self.inner.logit(text)

    def call(self, action: Callable[[], None]) -> None:
        """Run *action* in turn."""
        self.inner.call(action)

    def flush(self) -> None:
        """Write what was held back."""
        self.inner.flush()

    def close(self) -> None:
        """Nothing more will be written here."""
        self.inner.close()


class Watched:
    """A job whose failure is reported, with its first error."""

    def __init__(self, job: GetJob | PutJob, slot: NotedSlot,
                 ctx: CopyContext) -> None:
        self.job = job
        self.slot = slot
        self.ctx = ctx

    def close_slot(self) -> None:
        """Let later messages out."""
        self.job.close_slot()

    def retry(self) -> None:
        """Run again elsewhere."""
        self.job.retry()

    async def run(self, lane: Lane) -> bool:
        """Run the job; report it if it failed."""
        ok = await self.job.run(lane)
        if not ok and not self.ctx.is_interrupted():
            report_failure(self.ctx.observer, self.job.src,
                           self.slot.reason or "failed")
        return ok


class Batch:
    """The copies of one command (see the module docstring).

    :param client: the control client, for tree walks
    """

    def __init__(self, ctx: CopyContext, client: SFTPClient, board: Board,
                 seq: Sequencer) -> None:
        self.ctx = ctx
        self.client = client
        self.board = board
        self._seq = seq
        self._current = seq.slot()
        self._deferred: list[asyncio.Future[None]] = []
        self._aborted = False
        self._journals = UploadJournals(ctx.environ)   # listed lazily
        self.failed = False

    @property
    def out(self) -> Slot:
        """Where the command prints now, in sftp's order."""
        return self._current

    def _take_slot(self) -> NotedSlot:
        """A place for a file's messages; the command goes on after it."""
        slot = NotedSlot(self._seq.slot())
        self._current.close()
        self._current = self._seq.slot()
        return slot

    def _absolute(self, path: str) -> str:
        """Remote paths reach the pool absolute: its clients may have
        started elsewhere than the control client (its cwd is ours)."""
        if self.board.parallel and not path.startswith("/"):
            raise ValueError(f"not an absolute remote path: {path!r}")
        return path

    async def download(self, src: str, dst: str, attrs: Attrs | None,
                       flags: Flags, failure: str | None = None) -> None:
        """Copy remote *src* to local *dst* (now, or queued)."""
        slot = self._take_slot()
        job = GetJob(self._absolute(src), dst, attrs, flags, slot, failure)
        report_queued(self.ctx.observer, attrs.size if attrs else None)
        if self.ctx.spread:     # the control connection's view counts
            job.viewer = self.client
        await self.board.submit(Watched(job, slot, self.ctx))

    async def upload(self, src: str, dst: str, flags: Flags,
                     failure: str | None = None,
                     maybe_dir: MaybeDir | None = None, *,
                     size: int | None = None) -> None:
        """Copy local *src* to remote *dst* (now, or queued); *size* is
        its size if the caller knows it (for the progress view's totals).

        With *maybe_dir*, *dst* may be a directory; the job finds out
        and prints the ``Uploading`` line (:class:`MaybeDir`).
        """
        slot = self._take_slot()
        if maybe_dir is not None:
            self._absolute(maybe_dir.inside)
        report_queued(self.ctx.observer, size)
        await self.board.submit(Watched(PutJob(
            src, self._absolute(dst), flags, slot, self._journals, failure,
            maybe_dir), slot, self.ctx))

    async def download_dir(self, src: str, dst: str, attrs: Attrs | None,
                           flags: Flags) -> None:
        """Copy a remote tree."""
        report_walking(self.ctx.observer, True)
        try:
            if not await trees.download_dir(self, src, dst, attrs, flags):
                self.failed = True
        finally:
            report_walking(self.ctx.observer, False)

    async def upload_dir(self, src: str, dst: str, flags: Flags) -> None:
        """Copy a local tree."""
        report_walking(self.ctx.observer, True)
        try:
            if not await trees.upload_dir(self, src, dst, flags):
                self.failed = True
        finally:
            report_walking(self.ctx.observer, False)

    async def defer(self, finish: Finisher) -> None:
        """Run a directory epilogue after the files handed over so far:
        at once when files go one by one, else in its slot's turn (every
        earlier file is over then; it was held to the command's end, and
        with it the output and the meter's lines of every later file)."""
        if not self.board.concurrent:
            await finish(self.out)
            return
        slot = self._take_slot()
        done = asyncio.get_running_loop().create_future()
        self._deferred.append(done)

        async def run() -> None:
            try:
                await finish(slot)
            finally:
                slot.close()

        def start() -> None:
            if self._aborted:       # as before: no epilogue after Ctrl-C
                done.set_result(None)
                slot.close()
                return
            task = asyncio.ensure_future(run())
            task.add_done_callback(lambda t: _pass_on(t, done))
        slot.call(start)

    async def finish(self) -> bool:
        """Wait for every copy and epilogue; True if the command
        succeeded."""
        self._current.close()
        ok = await self.board.finish()
        deferred, self._deferred = self._deferred, []
        for done in deferred:
            await done
        return ok and not self.failed

    async def abort(self) -> None:
        """The command ends early: stop the copies, print what is held."""
        self._aborted = True
        await self.board.cancel()
        self._seq.close_all()


def _pass_on(task: asyncio.Task[None], done: asyncio.Future[None]) -> None:
    """Give *task*'s outcome to *done*.  An error is marked as seen:
    :meth:`Batch.finish` raises the first, and the others (a lost
    connection fails every epilogue left) must not be logged as never
    retrieved (the campaign saw those tracebacks on stderr)."""
    if done.done():
        return
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())    # type: ignore[arg-type]
        done.exception()
    else:
        done.set_result(None)
