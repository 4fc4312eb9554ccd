"""An upload in chunks: the temporary its streams share, and its start.

:class:`PutFile` is how each stream opens the remote temporary and
writes its chunks; :class:`TempOpens` sends the idle streams' OPENs of
a new temporary with the lead's; :class:`TempGuess` is a chunked
upload's start sent before its target was known to be no directory;
:func:`abandon_temp` removes a temporary once no OPEN of it is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from psftp_shell.engine.chunk_pipeline import PushRun, Run
from psftp_shell.engine.chunked_file import ChunkedFile
from psftp_shell.engine.early_opens import EarlyOpens
from psftp_shell.engine.job_board import Lane
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.remotedest import (
    OntoItself,
    RemoteFile,
    abandon,
    open_remote,
)
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import OPEN_WRITE, SFTPClient, SFTPError, StatVFS


class PutFile(ChunkedFile):
    """An upload in chunks: every stream opens the temporary to write."""

    temp: str = ""

    async def open_on(self, stream: Stream, *, wait: bool = False) -> bytes:
        """OPEN the remote temporary for writing on *stream* (or take
        the OPEN sent with the lead's, :class:`TempOpens`)."""
        return await self.early_or(stream, lambda: open_remote(
            self.ctx, stream.client, self.temp, OPEN_WRITE, wait=wait))

    def make_run(self, stream: Stream, handle: bytes) -> Run:
        """A WRITE pipeline on *stream*."""
        return PushRun(self, stream, handle)


class TempOpens(EarlyOpens):
    """The idle streams' OPENs of a new temporary, sent with the lead's
    (see :func:`~psftp_shell.filecopy.remotedest.remote_temp`)."""

    def __init__(self, lane: Lane) -> None:
        super().__init__(lane.board.ctx)
        self.lane = lane

    def open_temp(self, temp: str, flags: int, attrs: Attrs) -> None:
        """Send the OPEN of *temp* on every idle stream."""
        board = self.lane.board
        for stream in self.idle(board.streams, self.lane.stream):
            self.send(stream, open_remote(board.ctx, stream.client, temp,
                                          flags, attrs))


async def abandon_temp(early: EarlyOpens | None, client: SFTPClient,
                       dest: RemoteFile) -> None:
    """Close and remove the temporary once no OPEN of it is pending."""
    if early is not None:
        await early.settle()
    await abandon(client, dest)


def shareable(attrs: Attrs) -> bool:
    """Whether the helpers may open a new temporary together with the
    lead: not if its mode lets only its creator write to it."""
    return attrs.permissions is None or bool(attrs.permissions & 0o200)


@dataclass(slots=True)
class TempGuess:
    """The start of a chunked upload sent before its target was known:
    the statvfs, the helpers' OPENs and the temporary (:func:`remote_temp`
    as a task)."""

    room: asyncio.Future[StatVFS] | None
    early: TempOpens | None
    made: asyncio.Future[RemoteFile | None]
    taken: bool = False

    async def take(self) -> RemoteFile | None:
        """The temporary, now the copy's (None: the copy goes in place)."""
        self.taken = True
        return await self.made

    def drop(self, ctx: CopyContext, client: SFTPClient) -> None:
        """Not used after all: remove the temporary once it is made."""
        if self.room is not None:
            self.room.cancel()
        made, early = self.made, self.early

        async def undo() -> None:
            with contextlib.suppress(SFTPError, OntoItself):
                dest = await made
                if dest is not None:
                    await abandon_temp(early, client, dest)
        ctx.background(undo())
