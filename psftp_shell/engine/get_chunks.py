"""A download in chunks: the file its streams share, and what an
earlier one left.

:class:`GetFile` is how each stream opens the source and reads its
chunks; :func:`discard` drops a download's journal that will not be
used, and its temporary if :func:`stale` (ours, beside the target).
"""

from __future__ import annotations

import contextlib
import os

from psftp_shell.core.ordered_output import Slot
from psftp_shell.engine.chunk_pipeline import PullRun, Run
from psftp_shell.engine.chunked_file import ChunkedFile
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.localdest import final_path, named_by_temp
from psftp_shell.filecopy.remotedest import open_remote
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    FX_FAILURE,
    OPEN_READ,
    SFTPError,
    StatusError,
)


class GetFile(ChunkedFile):
    """A download in chunks: every stream opens the source to read."""

    source: str = ""

    async def open_on(self, stream: Stream, *, wait: bool = False) -> bytes:
        """OPEN the source for reading on *stream*.

        The OPEN sent early for *stream*
        (:class:`~psftp_shell.engine.early_opens.EarlyOpens`) is used
        if there is one.  When streams may reach other addresses
        (``-X addresses=all``), a stream that sees another size or mtime
        is kept off this file.
        """
        handle = await self.early_or(stream, lambda: open_remote(
            self.ctx, stream.client, self.source, OPEN_READ, wait=wait))
        await self.same_view(stream, handle)
        return handle

    async def same_view(self, stream: Stream, handle: bytes) -> None:
        """With ``-X addresses=all``: refuse (StatusError, handle closed)
        a stream that sees another size or mtime than the control did."""
        if not self.ctx.spread:
            return
        try:
            seen = await stream.client.fstat(handle)
        except StatusError:
            seen = None
        if seen is None or (seen.size, seen.mtime) != (self.size,
                                                       self.mtime):
            with contextlib.suppress(SFTPError):
                await stream.client.close_handle(handle)
            raise StatusError(FX_FAILURE)

    def make_run(self, stream: Stream, handle: bytes) -> Run:
        """A READ pipeline on *stream*."""
        return PullRun(self, stream, handle)

    async def has_data_at(self, stream: Stream, offset: int) -> bool:
        """Whether a READ at *offset* gives data now, on a handle of its
        own (False too when it cannot be asked)."""
        if not stream.usable():
            return False
        client = stream.client
        try:
            handle = await client.open(self.source, OPEN_READ)
        except SFTPError:
            return False
        try:
            return bool(await client.read(handle, offset, 1))
        except SFTPError:           # refused, or the connection lost
            return False
        finally:
            with contextlib.suppress(SFTPError):
                await client.close_handle(handle)


def ours(temp: str, final: str) -> bool:
    """Whether a journal's *temp* may be written and renamed onto
    *final*, or removed with the journal: a temporary named for *final*,
    in its directory.  A journal is only a file, and its ``temp`` could
    name any file the user may write (until 2026-12-07 a download's
    journal lay beside its target, where a server could send one)."""
    named = named_by_temp(temp)
    return named is not None and \
        os.path.basename(named) == os.path.basename(final) and \
        os.path.realpath(os.path.dirname(named) or ".") == \
        os.path.realpath(os.path.dirname(final) or ".")


def discard(jpath: str, local: str, out: Slot | None = None,
             src: str = "", attrs: Attrs | None = None) -> None:
    """Drop a journal that will not be used, and its temporary; tell
    *out* what was removed and whether the source *src* (now *attrs*)
    changed since."""
    found = journal.load(jpath)
    if found is None:
        return
    removed = False
    if ours(found.temp, final_path(local)):
        with contextlib.suppress(OSError):
            os.unlink(found.temp)
            removed = True
    journal.remove(jpath)
    if removed and out is not None:
        changed = attrs is None or not found.matches(
            src, attrs.size or 0, attrs.mtime)
        out.logit(journal.dropped_text(found.temp, found.done.total,
                                       found.source, changed))
