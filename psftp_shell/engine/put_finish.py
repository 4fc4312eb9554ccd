"""The end of an upload in chunks: its finish and its journal.

:class:`PutFinish` trims, sets the attributes of, syncs, closes and
renames a chunked upload's remote temporary over its target once every
byte is acknowledged; meanwhile it gives the checkpoints' saver, and on
a stop it keeps the temporary with a journal for ``reput``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psftp_shell.core.ordered_output import Slot
from psftp_shell.engine.job_board import Lane
from psftp_shell.engine.put_chunks import PutFile
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.filecopy.copy_context import Flags, tell_kept
from psftp_shell.filecopy.remote_rename import (
    close_into_place,
    rename_into_place,
)
from psftp_shell.filecopy.remotedest import (
    RemoteFile,
    abandon,
    fsetstat_remote,
    fsync_remote,
    keep_remote_temp,
)
from psftp_shell.filecopy.verify import verify_upload
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.request_core import retrieved


@dataclass(slots=True)
class PutFinish:
    """The finish of :class:`~psftp_shell.engine.putjob.PutJob`'s copy of
    local *src* (as typed) in chunks.

    :param source: the source's absolute path, as journals name it
    """

    src: str
    slot: Slot
    flags: Flags
    source: str

    def saver(self, file: PutFile, jpath: str
               ) -> Callable[[RangeSet], Awaitable[None]]:
        """A checkpoint: record the ranges the server acknowledged."""
        def work(done: RangeSet) -> None:
            journal.save(jpath, journal.Journal(
                self.source, file.size, file.mtime, file.temp, done))

        async def save(done: RangeSet) -> None:
            await asyncio.get_running_loop().run_in_executor(
                None, work, done)
        return save

    def keep(self, file: PutFile, dest: RemoteFile, jpath: str) -> bool:
        """Record the ranges done, so that reput can finish the copy."""
        if file.done.total == 0 or dest.temp is None:
            journal.remove(jpath)
            return False
        temp = dest.temp
        if not keep_remote_temp(dest, jpath, journal.Journal(
                self.source, file.size, file.mtime, temp, file.done)):
            return False
        tell_kept(file.ctx.observer, file.job, temp, file.done.total)
        return True

    async def finish(self, lane: Lane, file: PutFile, st: os.stat_result,
                     attrs: Attrs, dest: RemoteFile, jpath: str) -> bool:
        """Trim, set attributes, sync, close and rename the temporary."""
        out, board = self.slot, lane.board
        if file.early is not None:      # no OPEN may create it after
            await file.early.settle()
        if not file.complete:
            await file.close_handles(out)
            self._finish_failed(file, dest, jpath)
            live = board.live_stream(lane.stream)
            if dest.temp is not None and live is not None:
                await abandon(live.client, dest)
            return False
        if not file.handles:
            done = await self._finish_closed(lane, file, st, attrs, dest,
                                             jpath)
            if done is not None:
                return done
        found = await file.any_handle(board.live_stream(lane.stream))
        if found is None:           # no connection left to finish on
            self.keep(file, dest, jpath)
            return False
        lead, client, handle = found[0], found[0].client, found[1]
        assert file.eof_at is not None
        # the other streams' CLOSEs go out with the size check; the
        # lead's handle finishes the file and is closed last
        closing = asyncio.ensure_future(file.close_all(keep=lead))
        closing.add_done_callback(retrieved)
        # a source that shrank meanwhile ends at its new size: what was
        # read past it is not the source's any more
        file.eof_at = min(file.eof_at, os.fstat(file.fd).st_size)
        if file.skipped or file.high > file.eof_at:
            await fsetstat_remote(client, out, handle,
                                  Attrs(size=file.eof_at))
        def reopened(new: bytes | None) -> None:
            nonlocal handle
            if new is None:
                file.handles.pop(lead, None)
            else:
                file.handles[lead] = handle = new

        if not await verify_upload(board.ctx, client, out, file.temp,
                                   handle, file.fd, file.job, file.eof_at,
                                   reopened=reopened):
            file.report_closes(out, await closing + await file.close_all())
            journal.remove(jpath)
            await abandon(client, dest)
            return False
        self._changed(file.fd, st)
        if self.flags.preserve:
            await fsetstat_remote(client, out, handle, attrs)
        if self.flags.fsync:
            await fsync_remote(client, out, handle)
        ok = file.report_closes(out, await closing)
        if ok:                  # nothing is renamed after a failed CLOSE
            file.handles.pop(lead, None)
            ok = await close_into_place(client, out, dest, handle)
        else:
            await file.close_all()
        if dest.temp is not None:
            await abandon(client, dest)
        journal.remove(jpath)
        return ok and not board.ctx.is_interrupted()

    async def _finish_closed(self, lane: Lane, file: PutFile,
                             st: os.stat_result, attrs: Attrs,
                             dest: RemoteFile, jpath: str) -> bool | None:
        """The finish once every stream has closed its handle behind its
        last WRITE and FSTAT: all that is left is the rename (with the
        attributes of ``-p``), one round trip.

        None when the temporary still needs a handle: its size is not
        the source's (the source shrank, or an FSTAT failed); the usual
        finish then opens one, trims and checks.
        """
        out, board = self.slot, lane.board
        known = await file.largest_size()
        assert file.eof_at is not None
        file.eof_at = min(file.eof_at, os.fstat(file.fd).st_size)
        if known != file.eof_at:
            return None
        stream = board.live_stream(lane.stream)
        if stream is None:          # no connection left to finish on
            self.keep(file, dest, jpath)
            return False
        closed = file.report_closes(out, await file.close_all())
        if not closed:              # nothing is renamed after a failed CLOSE
            journal.remove(jpath)
            await abandon(stream.client, dest)
            return False
        if board.ctx.verify != "none":
            file.job.verified = "size"
        self._changed(file.fd, st)
        ok = await rename_into_place(stream.client, out, dest,
                                     attrs if self.flags.preserve else None)
        if dest.temp is not None:
            await abandon(stream.client, dest)
        journal.remove(jpath)
        return ok and not board.ctx.is_interrupted()

    def _changed(self, fd: int, st: os.stat_result) -> None:
        """sftp's warning if the source's size or mtime is not *st*'s."""
        now = os.fstat(fd)
        if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            self.slot.error(
                f'Source file "{self.src}" changed during transfer')

    def _finish_failed(self, file: PutFile, dest: RemoteFile,
                       jpath: str) -> None:
        if file.message is not None:
            self.slot.error(file.message)
            journal.remove(jpath)
        else:
            self.keep(file, dest, jpath)

