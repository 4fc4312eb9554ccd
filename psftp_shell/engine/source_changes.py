"""A chunked copy's source changing while its streams read it.

:func:`restart_if_rewritten` starts a copy over when its source was
rewritten meanwhile (downloads and uploads); :func:`source_changed` and
:func:`source_rewritten` are a download's checks of its remote source,
on the FSTAT its last stream sent with its CLOSE.
"""

from __future__ import annotations

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


async def source_changed(file: GetFile, attrs: Attrs, spare: Stream
                         ) -> bool:
    """Whether the source's size or mtime moved since the start.

    A source that shrank moves the end of file back to its new size:
    what was fetched past it was read before the change, and the copy
    must not end with data the source no longer has.  That is asked of
    the file itself first (a READ at the new size, on *spare*): a server
    may state a size short of the data it serves, and sftp, which reads
    to the end of file, copies it all.
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
    differs = (now.size, now.mtime) != (attrs.size, attrs.mtime)
    if now.size is not None and file.eof_at is not None \
            and now.size < file.eof_at:
        if await file.has_data_at(spare, now.size):
            return differs      # understated, not changed
        file.eof_at = now.size
    return moved or differs


async def source_rewritten(file: GetFile) -> bool:
    """Whether the source was rewritten while it was read; if so, every
    byte is to be fetched again (see
    :func:`restart_if_rewritten`)."""
    if not file.complete:
        return False
    try:
        now = await _look(file)
    except SFTPError:
        return False
    return now is not None and restart_if_rewritten(file, now.mtime,
                                                    now.size)


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
