"""A chunked copy's source changing while its streams read it.

:func:`restart_if_rewritten` starts a copy over when its source was
rewritten meanwhile (downloads and uploads); :func:`source_changed` and
:func:`source_rewritten` are a download's checks of its remote source,
on the FSTAT its last stream sent with its CLOSE.
"""

from __future__ import annotations

import asyncio

from psftp_shell.engine.chunked_file import ChunkedFile
from psftp_shell.engine.get_chunks import GetFile
from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import SFTPError


def restart_if_rewritten(file: ChunkedFile, mtime: int | None,
                         size: int | None) -> bool:
    """Whether the source, now of *mtime* and *size*, was rewritten
    while it was copied (a new mtime, no growth); if so, every byte
    is to be moved again, and :meth:`~ChunkedFile.more` moves them.

    Ranges copied before the change may hold the old contents; the
    copy goes on in the same temporary, which now holds older data,
    so zero blocks are written too.  A source that only grew was
    followed to its end, as sftp does.
    """
    if not file.complete or mtime == file.mtime or size is None:
        return False
    assert file.eof_at is not None
    if size > file.eof_at:
        return False
    file.mtime = mtime
    file.size = file.eof_at = size
    file.done = RangeSet()
    file.sparse = False
    file.job.size, file.job.transferred = size, 0   # (progress)
    return True


async def source_changed(file: GetFile, attrs: Attrs,
                         streams: list[Stream]) -> bool:
    """Whether the source's size or mtime moved since the start.

    A source that shrank moves the end of file back to its new size:
    what was fetched past it was read before the change, and the copy
    must not end with data the source no longer has.  That is asked of
    the file itself first (a READ at the new size on each of *streams*):
    a server may state a size short of the data it serves, and sftp,
    which reads to the end of file, copies it all.

    The copy fails (:meth:`~ChunkedFile.fail`) when a stream met the
    end of file short of the size stated at the start, the FSTAT states
    more, and a READ there finds data: connections that see different
    files (replicas behind one name), or a source cut and written again
    meanwhile.  (A source that grew was followed past its first size.)
    """
    moved = file.eof_at is not None and file.eof_at != file.size
    if not file.complete:
        return moved
    try:
        now = await _look(file)
    except SFTPError:
        return moved
    if now is None:
        return moved
    differs = now.size != attrs.size or (
        now.mtime != attrs.mtime and not file.held_still)
    end = file.eof_at
    if now.size is None or end is None:
        return moved or differs
    if now.size < end:
        if await _has_data_at(file, streams, now.size):
            return differs      # understated, not changed
        file.eof_at = now.size
    elif end < min(now.size, file.size) \
            and await _has_data_at(file, streams, end):
        file.fail(f'download "{file.source}": the server ended the file '
                  f"at {end} bytes on one connection and has data past "
                  "that on another")
    return moved or differs


async def _has_data_at(file: GetFile, streams: list[Stream], offset: int
                       ) -> bool:
    """Whether a READ at *offset* finds data on any of *streams* (each
    one asked once, at once)."""
    live = list(dict.fromkeys(s for s in streams if s.usable()))
    found = await asyncio.gather(*(file.has_data_at(s, offset)
                                   for s in live))
    return any(found)


async def source_rewritten(file: GetFile) -> bool:
    """Whether the source was rewritten while it was read; if so, every
    byte is to be fetched again (see :func:`restart_if_rewritten`), and
    that pass compares what it reads with what the last one read.

    A pass that read the very same bytes ends the copy there, whatever
    the mtime says now: it moved without new content (a file touched,
    or a server that states the time of each STAT).  Each file is
    judged alone: one such file says nothing of the next.
    """
    if not file.complete or file.held_still:
        return False
    try:
        now = await _look(file)
    except SFTPError:
        return False
    if now is None or not restart_if_rewritten(file, now.mtime, now.size):
        return False
    file.recheck, file.differed = True, False
    return True


async def _look(file: GetFile) -> Attrs | None:
    """The source's attributes now: the FSTAT the last stream sent with
    its CLOSE, else one on a handle still open (None: no handle)."""
    look = file.look()
    if look is not None:
        return await look
    found = await file.any_handle()
    if found is None:
        return None
    return await found[0].client.fstat(found[1])
