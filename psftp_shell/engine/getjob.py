"""One download as a job of the board: whole, or in chunks.

A small file, a special destination (``/dev/null``) or a resume with no
journal is copied by sftp's own single-stream code.  A big file copied
in parallel goes to a temporary beside its target in chunks, every
stream writing at its offsets; it is renamed onto the target once every
byte up to the end of file has arrived.  If the copy stops early (Ctrl-C,
lost connections) the temporary stays, with a journal of the ranges
done, for ``reget`` to finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from psftp_shell.core.escape import handle_error
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.ordered_output import Slot
from psftp_shell.engine.chunked_file import MORE_ROUNDS
from psftp_shell.engine.early_opens import EarlyOpens
from psftp_shell.engine.get_chunks import GetFile, discard, ours
from psftp_shell.engine.job_board import Lane
from psftp_shell.engine.source_changes import (
    source_changed,
    source_rewritten,
)
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.filecopy.copy_context import (
    Flags,
    reported,
    tell_kept,
)
from psftp_shell.filecopy.localdest import (
    LocalDest,
    final_path,
    free_space,
    keep_local_temp,
    local_temp,
    preallocate,
    reopen_temp,
)
from psftp_shell.filecopy.onto_itself import onto_itself, same_file
from psftp_shell.filecopy.remotedest import close_remote, open_remote
from psftp_shell.filecopy.single_download import (
    commit_local,
    download_file,
    new_mode,
    preserve_local,
    source_attrs,
    sync_local,
)
from psftp_shell.filecopy.verify import verify_download
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_READ,
    SFTPClient,
    StatusError,
)


@dataclass(eq=False)
class GetJob:
    """Copy remote *src* to local *dst* (as typed, for messages).

    :param failure: a line printed when the copy fails (trees)
    :param viewer: STATs the source instead of the job's stream (the
        control client, when streams reach other addresses)
    """

    src: str
    dst: str
    attrs: Attrs | None
    flags: Flags
    slot: Slot
    failure: str | None = None
    viewer: SFTPClient | None = None

    again: bool = field(default=False, init=False)

    def close_slot(self) -> None:
        """Let later messages out."""
        self.slot.close()

    def retry(self) -> None:
        """Run again elsewhere, from the journal if one was left (the
        first try may have left one, even in a directory it made)."""
        self.again = True
        self.flags = dataclasses.replace(self.flags, fresh=False)

    async def run(self, lane: Lane) -> bool:
        """Copy the file on *lane*'s stream."""
        ok = await self._run(lane)
        if not ok and self.failure is not None:
            self.slot.error(self.failure)
        return ok

    async def _single(self, lane: Lane, attrs: Attrs) -> bool:
        return await download_file(
            lane.board.ctx, lane.stream.client, self.slot, self.src,
            self.dst, attrs, self.flags, lane.stream.index)

    async def _run(self, lane: Lane) -> bool:
        ctx, client, out = lane.board.ctx, lane.stream.client, self.slot
        attrs = await source_attrs(self.viewer or client, out, self.src,
                                   self.attrs)
        if attrs is None:
            return False
        local = ctx.local(self.dst)
        again = self.flags.resume or self.again
        # in a directory this copy made, no old file, link or journal
        fresh = self.flags.fresh and not self.flags.resume
        final = local if fresh else final_path(local)
        jpath = journal.download_path(ctx.environ, final)
        if not again and not fresh and await self._onto_itself(
                self.viewer or client, final, attrs):
            return False
        if again:
            found = await self._resume(lane, attrs, local, jpath)
            if found is not None:
                return found
            if self.flags.resume:
                return await self._single(lane, attrs)
        if not fresh:
            discard(jpath, local, self.slot, self.src, attrs)
        if not lane.board.parallel or (attrs.size or 0) < ctx.share_min:
            return await self._single(lane, attrs)
        lead = asyncio.ensure_future(
            open_remote(ctx, client, self.src, OPEN_READ, wait=True))
        early = self._open_early(lane)
        try:
            return await self._fresh(lane, attrs, local, jpath, lead, early)
        finally:
            early.drop()            # what no stream took

    async def _onto_itself(self, client: SFTPClient, final: str,
                           attrs: Attrs) -> bool:
        """Whether *final* (the target, links followed) is the source
        itself; the refusal if so."""
        try:
            st = os.stat(final)
        except OSError:
            return False
        same = await same_file(final, st, attrs,
                               lambda: client.stat(self.src))
        if same:
            self.slot.error(onto_itself("download", self.src, self.dst))
        return same

    def _open_early(self, lane: Lane) -> EarlyOpens:
        """OPEN the source now on the idle streams that could help."""
        board = lane.board
        early = EarlyOpens(board.ctx)
        for stream in early.idle(board.streams, lane.stream):
            early.send(stream, open_remote(
                board.ctx, stream.client, self.src, OPEN_READ))
        return early

    async def _fresh(self, lane: Lane, attrs: Attrs, local: str,
                     jpath: str, lead: Awaitable[bytes],
                     early: EarlyOpens) -> bool:
        """A new chunked download, once the lead's OPEN is answered."""
        client, out = lane.stream.client, self.slot
        try:
            handle = await lead
        except StatusError as exc:
            out.error(handle_error(f'remote open "{self.src}"', exc.text))
            return False
        try:
            dest = local_temp(local, new_mode(attrs), self.flags.fresh)
        except OSError as exc:
            out.error(f'open local "{self.dst}": {exc.strerror}')
            await close_remote(client, out, handle)
            return False
        if dest is None:            # in place, as sftp
            early.drop()
            await close_remote(client, out, handle)
            return await self._single(lane, attrs)
        return await self._chunked(lane, attrs, dest, RangeSet(), jpath,
                                   handle, early)

    async def _resume(self, lane: Lane, attrs: Attrs, local: str,
                      jpath: str) -> bool | None:
        """Finish from a journal; None if there is no usable one."""
        found = journal.load(jpath)
        if found is not None:
            # a journal is a file like any other: one the server sent may
            # name only a temporary of this very target (see ours)
            if found.matches(self.src, attrs.size or 0, attrs.mtime) and \
                    ours(found.temp, final_path(local)):
                dest = reopen_temp(local, found.temp)
                if dest is not None:
                    return await self._chunked(lane, attrs, dest,
                                               found.done, jpath, None)
            discard(jpath, local, self.slot, self.src, attrs)
        return None

    async def _chunked(self, lane: Lane, attrs: Attrs, dest: LocalDest,
                       done: RangeSet, jpath: str, handle: bytes | None,
                       early: EarlyOpens | None = None) -> bool:
        board, out = lane.board, self.slot
        size = attrs.size or 0
        ranges = done.missing(0, size)
        if not self._room(ranges, dest):
            if handle is not None:
                await close_remote(lane.stream.client, out, handle)
            if done.total:
                dest.keep()
            dest.close()
            return False
        job = TransferJob(False, self.src, self.dst, size, done.total,
                          done.total, in_turn=out.call)
        file = GetFile(board.ctx, job, dest.fd, ranges, size, done,
                       board.planned)
        file.source, file.mtime = self.src, attrs.mtime
        file.early = early
        file.checkpoints.saver = self._saver(file, dest, jpath)
        try:
            return await reported(board.ctx.observer, job, self._move(
                lane, file, attrs, dest, jpath, handle))
        finally:
            board.unshare(file)
            dest.close()

    async def _move(self, lane: Lane, file: GetFile, attrs: Attrs,
                    dest: LocalDest, jpath: str, handle: bytes | None
                    ) -> bool:
        """The data phase of a chunked download, then its finish."""
        board, out = lane.board, self.slot
        try:
            if handle is None:
                handle = await open_remote(board.ctx, lane.stream.client,
                                           self.src, OPEN_READ, wait=True)
            try:
                await file.same_view(lane.stream, handle)
            except StatusError:
                out.error(f'download "{self.src}": the file differs '
                          "between the host's addresses")
                self._keep(file, dest, jpath)
                return False
            file.handles[lane.stream] = handle
            board.share(file)
            if lane.stream.runs == 0 and lane.stream.usable():
                await file.help(lane.stream)
            await file.wait()
            for _ in range(MORE_ROUNDS):
                if not await file.more(lane.stream):
                    break
            for _ in range(MORE_ROUNDS):
                if not await source_rewritten(file) or \
                        not await file.more(lane.stream):
                    break
            board.unshare(file)
            return await self._finish(lane, file, attrs, dest, jpath)
        except StatusError as exc:      # the journal's source went away
            out.error(handle_error(f'remote open "{self.src}"', exc.text))
            self._keep(file, dest, jpath)
            return False
        except BaseException:
            file.checkpoints.saver = None
            self._keep(file, dest, jpath)
            file.close_later()
            raise

    def _saver(self, file: GetFile, dest: LocalDest, jpath: str
               ) -> Callable[[RangeSet], Awaitable[None]]:
        """A checkpoint: sync the temporary, then record what is in it."""
        temp = dest.temp
        assert temp is not None

        def work(done: RangeSet) -> None:
            os.fdatasync(dest.fd)
            journal.save(jpath, journal.Journal(
                self.src, file.size, file.mtime, temp, done))

        async def save(done: RangeSet) -> None:
            await asyncio.get_running_loop().run_in_executor(
                None, work, done)
        return save

    def _room(self, ranges: list[tuple[int, int]], dest: LocalDest
              ) -> bool:
        """Check the free space; reserve it where the file system can."""
        need = sum(e - s for s, e in ranges)
        room = free_space(dest.final)
        if room is not None and need > room:
            self.slot.error(f'local "{self.dst}": not enough free space '
                            f"({need} bytes needed, {room} available)")
            return False
        for start, end in ranges:
            preallocate(dest.fd, start, end - start)
        return True

    def _keep(self, file: GetFile, dest: LocalDest, jpath: str) -> None:
        """Leave the temporary and a journal if anything arrived."""
        if file.done.total == 0 or dest.temp is None or dest.closed:
            journal.remove(jpath)
            return
        temp = dest.temp
        if keep_local_temp(dest, jpath, journal.Journal(
                self.src, file.size, file.mtime, temp, file.done)):
            tell_kept(file.ctx.observer, file.job, temp, file.done.total)

    async def _finish(self, lane: Lane, file: GetFile, attrs: Attrs,
                      dest: LocalDest, jpath: str) -> bool:
        """Close the handles, then commit, keep or drop the temporary."""
        out, board = self.slot, lane.board
        # FSTAT goes out first, so the CLOSEs behind it cost no round trip
        changed, closed = await asyncio.gather(
            source_changed(file, attrs, [lane.stream, *board.streams]),
            file.close_handles(out))
        if not file.complete:
            if file.message is not None:
                out.error(file.message)
            if file.message is None or file.keeps:
                self._keep(file, dest, jpath)
            else:
                journal.remove(jpath)
            return False
        assert file.eof_at is not None
        if os.fstat(dest.fd).st_size != file.eof_at:
            os.ftruncate(dest.fd, file.eof_at)
        live = board.live_stream(lane.stream) or lane.stream
        if not await verify_download(board.ctx, live.client, out, self.src,
                                     None, dest, file.job, file.eof_at):
            journal.remove(jpath)
            return False
        if changed:
            out.error(f'Source file "{self.src}" changed during transfer')
        if self.flags.preserve:
            preserve_local(out, dest.fd, attrs, new_mode(attrs), self.dst)
        if self.flags.fsync:
            sync_local(out, dest.fd, self.dst)
        # every byte arrived: kept after a failed CLOSE, as sftp keeps it
        ok = commit_local(out, dest, self.dst, self.flags.fsync) and closed
        journal.remove(jpath)
        return ok and not board.ctx.is_interrupted()
