"""One upload as a job of the board: whole, or in chunks.

A small file, a server without ``posix-rename``, a special target or a
resume with no journal is copied by sftp's own single-stream code.  A
big file copied in parallel goes to a remote temporary that every
stream opens for writing and fills at its offsets; once every byte is
acknowledged the temporary gets the attributes (``-p``), is synced
(``-f``) and renamed over the target.  If the copy stops early the
temporary stays on the server and a journal under
``$XDG_STATE_HOME/psftp-shell/journal`` records the ranges done, for
``reput`` to finish.

A put of one file to a target that may be a directory (:class:`MaybeDir`)
does not wait for the STAT that tells: a copy in chunks opens its
temporary beside the target meanwhile, on the guess that it is not one,
and drops it if it was; the job prints sftp's ``Uploading`` line once
it knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat as stat_mod
from dataclasses import dataclass, field

from psftp_shell.core.observer import TransferJob
from psftp_shell.core.ordered_output import Slot
from psftp_shell.engine.chunked_file import MORE_ROUNDS
from psftp_shell.engine.early_opens import EarlyOpens
from psftp_shell.engine.job_board import Lane
from psftp_shell.engine.put_chunks import (
    PutFile,
    TempGuess,
    TempOpens,
    abandon_temp,
    shareable,
)
from psftp_shell.engine.put_finish import PutFinish
from psftp_shell.engine.source_changes import restart_if_rewritten
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.filecopy.copy_context import (
    SHARE_MIN,
    CopyContext,
    Flags,
    reported,
)
from psftp_shell.filecopy.localdest import named_by_temp
from psftp_shell.filecopy.onto_itself import onto_itself, upload_guard
from psftp_shell.filecopy.remotedest import (
    OntoItself,
    RemoteFile,
    open_remote,
    remote_temp,
)
from psftp_shell.filecopy.single_upload import (
    open_source,
    upload_attrs,
    upload_fd,
)
from psftp_shell.filecopy.write_check import WriteCheck
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_WRITE,
    SFTPClient,
    SFTPError,
    StatusError,
    StatVFS,
)
from psftp_shell.sftp.request_core import retrieved


def _dirname(path: str) -> str:
    return path.rpartition("/")[0]


@dataclass(slots=True)
class MaybeDir:
    """A put's target that may be a directory.

    :param looking: sftp's ``remote_is_dir`` of the target, in flight
    :param inside: where the copy goes if the target is a directory
    """

    looking: asyncio.Future[bool]
    inside: str


@dataclass(eq=False)
class PutJob:
    """Copy local *src* (as typed) to remote *dst*.

    :param failure: a line printed when the copy fails (trees)
    """

    src: str
    dst: str
    flags: Flags
    slot: Slot
    journals: journal.UploadJournals    # the command's
    failure: str | None = None
    maybe_dir: MaybeDir | None = None
    _source: str = field(default="", init=False)

    again: bool = field(default=False, init=False)
    orphans: list[str] = field(default_factory=list, init=False)

    def close_slot(self) -> None:
        """Let later messages out."""
        self.slot.close()

    def retry(self) -> None:
        """Run again elsewhere, from the journal if one was left."""
        self.again = True

    async def run(self, lane: Lane) -> bool:
        """Copy the file on *lane*'s stream."""
        ctx = lane.board.ctx
        guess = None
        if self.maybe_dir is not None:
            fd, guess = await self._aim(lane, self.maybe_dir)
        else:
            fd = open_source(self.slot, ctx.local(self.src), self.src)
        if fd is None:
            ok = False
        else:
            try:
                ok = await self._run(lane, fd, guess)
            finally:
                os.close(fd)
                if guess is not None and not guess.taken:
                    guess.drop(ctx, lane.stream.client)
        if not ok and self.failure is not None:
            self.slot.error(self.failure)
        return ok

    async def _aim(self, lane: Lane, maybe: MaybeDir
                   ) -> tuple[int | None, TempGuess | None]:
        """Learn whether the target is a directory and print sftp's
        ``Uploading`` line; meanwhile open the source and, for a copy in
        chunks, the temporary beside the target as named."""
        ctx, client = lane.board.ctx, lane.stream.client
        self.maybe_dir = None           # (a retry knows the target)
        try:
            fd: int | None = os.open(ctx.local(self.src), os.O_RDONLY)
        except OSError:
            fd = None                   # the error is printed in turn
        guess = None
        try:
            if fd is not None:
                guess = self._guess(lane, fd, os.fstat(fd))
            is_dir = await maybe.looking
        except BaseException as exc:
            if guess is not None:
                guess.drop(ctx, client)
            if fd is not None:
                os.close(fd)
            if isinstance(exc, SFTPError):
                return None, None   # the control connection is gone:
            raise                   # the session ends, not this stream
        if is_dir:
            self.dst = maybe.inside
            if guess is not None:
                guess.drop(ctx, client)
                guess = None
        self.slot.info(f"Uploading {self.src} to {self.dst}")
        if fd is None:
            fd = open_source(self.slot, ctx.local(self.src), self.src)
        return fd, guess

    def _guess(self, lane: Lane, fd: int, st: os.stat_result
               ) -> TempGuess | None:
        """Start a chunked copy's temporary beside :attr:`dst`, if the
        file is to go in chunks (the rest as :meth:`_run` would)."""
        ctx, client = lane.board.ctx, lane.stream.client
        if not stat_mod.S_ISREG(st.st_mode) or not lane.board.parallel \
                or st.st_size < ctx.share_min:
            return None
        attrs = upload_attrs(st, self.flags.preserve)
        room = self._ask_room(client, st.st_size)
        early = TempOpens(lane) if shareable(attrs) else None
        made = asyncio.ensure_future(remote_temp(
            ctx, client, self.dst, attrs, early, upload_guard(fd, st)))
        made.add_done_callback(retrieved)
        return TempGuess(room, early, made)

    async def _single(self, lane: Lane, fd: int, st: os.stat_result
                      ) -> bool:
        return await upload_fd(lane.board.ctx, lane.stream.client,
                               self.slot, fd, st, self.src, self.dst,
                               self.flags, lane.stream.index, self.orphans)

    async def _sweep(self, client: SFTPClient) -> None:
        """Remove temporaries a lost connection could not remove."""
        orphans, self.orphans = self.orphans, []
        for temp in orphans:
            with contextlib.suppress(StatusError):
                await client.remove(temp)

    async def _run(self, lane: Lane, fd: int, guess: TempGuess | None
                   ) -> bool:
        ctx, client = lane.board.ctx, lane.stream.client
        self._source = os.path.abspath(ctx.local(self.src))
        await self._sweep(client)
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            self.slot.error(f'local "{self.src}" is not a regular file')
            return False
        again = self.again or self.flags.resume
        jpath = self.journals.path(ctx.site, self.dst, st.st_size,
                                   st.st_mtime_ns)
        for other in (journal.other_uploads(jpath) if again
                      else self.journals.others(jpath)):
            await self._discard(client, other, changed=True)
        attrs = upload_attrs(st, self.flags.preserve)
        if again:
            found = journal.load(jpath)
            if found is not None:
                dest = await self._reopen(ctx, client, found)
                if dest is not None:
                    return await self._chunked(lane, fd, st, attrs, dest,
                                               found.done, jpath)
                await self._discard(client, jpath)
            if self.flags.resume:
                return await self._single(lane, fd, st)
        if again or self.journals.listed(jpath):
            await self._discard(client, jpath)
        if not lane.board.parallel or st.st_size < ctx.share_min:
            return await self._single(lane, fd, st)
        if guess is None:
            guess = self._guess(lane, fd, st)
            assert guess is not None
        # the free-space check and the helpers' OPENs ride along with
        # the LSTAT and the OPEN
        room, early = guess.room, guess.early
        try:
            made = await guess.take()
        except OntoItself:
            if room is not None:
                room.cancel()
            self.slot.error(onto_itself("upload", self.src, self.dst))
            return False
        if made is None:
            if room is not None:
                room.cancel()
            return await self._single(lane, fd, st)
        return await self._chunked(lane, fd, st, attrs, made, RangeSet(),
                                   jpath, room, early)

    async def _discard(self, client: SFTPClient, jpath: str,
                       changed: bool = False) -> None:
        """Drop an unused journal and the remote temporary it names, and
        say so (*changed*: the source was rewritten since)."""
        found = journal.load(jpath)
        if found is None:
            if changed:             # garbage
                journal.remove(jpath)
            return
        removed = False
        if named_by_temp(found.temp) is not None:     # ours
            with contextlib.suppress(StatusError):
                await client.remove(found.temp)
                removed = True
        journal.remove(jpath)
        if removed:
            self.slot.logit(journal.dropped_text(
                found.temp, found.done.total, found.source, changed))

    async def _reopen(self, ctx: CopyContext, client: SFTPClient,
                      found: journal.Journal) -> RemoteFile | None:
        """The journal's temporary, if it is still there and ours (its
        OPEN waits for a handle: see :func:`open_remote`)."""
        temp = found.temp
        # ours: beside the target, or beside the file a target link names
        final = named_by_temp(temp)
        if final is None or found.source != self._source:
            return None
        try:
            there = await client.lstat(temp)
            if not there.is_reg():
                return None
            handle = await open_remote(ctx, client, temp, OPEN_WRITE,
                                       wait=True)
        except StatusError:
            return None
        return RemoteFile(handle, final, temp, check=WriteCheck.if_regular(
            client, final, self.dst))

    def _room_error(self, need: int, room: int) -> None:
        self.slot.error(f'remote "{self.dst}": not enough free space '
                        f"({need} bytes needed, {room} available)")

    def _ask_room(self, client: SFTPClient, need: int
                  ) -> asyncio.Future[StatVFS] | None:
        """Send the statvfs of the target's directory, where the server
        offers it and *need* is worth a check; None if not sent."""
        if need < SHARE_MIN or \
                not client.has_extension("statvfs@openssh.com"):
            return None
        asking = asyncio.ensure_future(
            client.statvfs(_dirname(self.dst) or "/"))
        asking.add_done_callback(retrieved)
        return asking

    async def _room(self, client: SFTPClient, need: int,
                    asked: asyncio.Future[StatVFS] | None) -> bool:
        """Whether *need* bytes fit in the target's directory.

        :param asked: the statvfs already sent for it (see
            :meth:`_ask_room`); sent now if None
        """
        asking = asked or self._ask_room(client, need)
        if asking is None:
            return True
        try:
            st = await asking
        except StatusError:
            return True
        room = st.bavail * st.frsize
        if need > room:
            self._room_error(need, room)
            return False
        return True

    async def _chunked(self, lane: Lane, fd: int, st: os.stat_result,
                       attrs: Attrs, dest: RemoteFile, done: RangeSet,
                       jpath: str,
                       room: asyncio.Future[StatVFS] | None = None,
                       early: EarlyOpens | None = None) -> bool:
        board, client = lane.board, lane.stream.client
        size = st.st_size
        ranges = done.missing(0, size)
        need = sum(e - s for s, e in ranges)
        try:
            fits = await self._room(client, need, room)
        except BaseException:
            if done.total:
                dest.temp = None        # keep it for a later reput
            board.ctx.background(abandon_temp(early, client, dest))
            raise
        if not fits:
            if done.total:
                dest.temp = None        # keep it for a later reput
            await abandon_temp(early, client, dest)
            return False
        job = TransferJob(True, self.src, self.dst, size, done.total,
                          done.total, in_turn=self.slot.call)
        file = PutFile(board.ctx, job, fd, ranges, size, done,
                       board.planned)
        assert dest.temp is not None
        file.temp, file.mtime = dest.temp, st.st_mtime_ns
        file.early = early
        # each stream closes its handle behind its last WRITE, with an
        # FSTAT for the size check; a sync or a hash needs a handle
        file.closes_early = not self.flags.fsync and \
            board.ctx.verify != "hash"
        file.look_each = True
        file.handles[lane.stream] = dest.handle
        end = PutFinish(self.src, self.slot, self.flags, self._source)
        file.checkpoints.saver = end.saver(file, jpath)
        dest.open = False               # the file's handles now
        try:
            return await reported(board.ctx.observer, job, self._move(
                lane, file, st, attrs, dest, jpath, end))
        finally:
            board.unshare(file)

    async def _move(self, lane: Lane, file: PutFile, st: os.stat_result,
                    attrs: Attrs, dest: RemoteFile, jpath: str,
                    end: PutFinish) -> bool:
        """The data phase of a chunked upload, then its finish."""
        board = lane.board
        try:
            board.share(file)
            if lane.stream.runs == 0 and lane.stream.usable():
                await file.help(lane.stream)
            await file.wait()
            for _ in range(MORE_ROUNDS):
                now = os.fstat(file.fd)
                if not restart_if_rewritten(file, now.st_mtime_ns,
                                            now.st_size):
                    break
                # the journal is keyed by the source's size and mtime
                journal.remove(jpath)
                jpath = journal.upload_path(
                    board.ctx.environ, board.ctx.site, self.dst, file.size,
                    file.mtime or 0)
                file.checkpoints.saver = end.saver(file, jpath)
                if not await file.more(lane.stream):
                    break
            board.unshare(file)
            return await end.finish(lane, file, st, attrs, dest, jpath)
        except BaseException:
            file.checkpoints.saver = None
            if not end.keep(file, dest, jpath):
                board.ctx.background(abandon_temp(
                    file.early, lane.stream.client, dest))
            file.close_later()
            raise
