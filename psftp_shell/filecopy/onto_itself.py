"""Whether a copy would go onto its own source.

``get f f`` against a server on this machine, or a home directory that
both ends mount, names one file twice; sftp truncates it to nothing.
SFTP shows no inode numbers, so the check works in two steps: a local
and a remote file that agree on size, mtime and mode are suspects; for
a suspect, the local file's access time is set to a marker, the remote
one is STATed, and the marker showing up there proves it is one file.
The access time is put back at once.  A file whose times cannot be set
is not proven the same (the temporary a copy goes to keeps the data
safe in most cases anyway).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat as stat_mod
from collections.abc import Awaitable, Callable

from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import SFTPClient, StatusError

Guard = Callable[[SFTPClient, str, Attrs], Awaitable[bool]]
"""Whether an existing remote file (its path and attributes) is the
upload's own source."""

_NS = 1_000_000_000


def alike(st: os.stat_result, attrs: Attrs) -> bool:
    """Whether local *st* and remote *attrs* could be one regular file."""
    return (stat_mod.S_ISREG(st.st_mode) and attrs.is_reg()
            and attrs.size == st.st_size
            and attrs.mtime == int(st.st_mtime)
            and attrs.permissions is not None
            and stat_mod.S_IMODE(attrs.permissions)
            == stat_mod.S_IMODE(st.st_mode))


def _marker(st: os.stat_result, attrs: Attrs) -> int:
    """An access time that neither side shows now."""
    taken = {int(st.st_atime), attrs.atime}
    while True:
        mark = 1_000_000_000 + secrets.randbelow(1 << 29)
        if mark not in taken:
            return mark


async def same_file(target: int | str, st: os.stat_result, attrs: Attrs,
                    look: Callable[[], Awaitable[Attrs]]) -> bool:
    """Whether local *target* (a path or an open fd, whose stat is *st*)
    is the remote file that *look* STATs (its attributes were *attrs*).

    Nothing is touched unless *target* is still the file of *st*,
    unchanged (an fd number may have been reused by then).

    :raises SFTPError: from *look*, when the connection is lost
    """
    if not alike(st, attrs):
        return False
    try:        # as it is now: still the file of *st*, unchanged
        now = os.stat(target)
    except OSError:
        return False
    if (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
        return False
    mark = _marker(now, attrs)
    try:
        os.utime(target, ns=(mark * _NS, now.st_mtime_ns))
    except OSError:
        return False
    try:
        seen = await look()
    except StatusError:         # gone meanwhile: not the same file
        return False
    finally:
        with contextlib.suppress(OSError):
            os.utime(target, ns=(now.st_atime_ns, now.st_mtime_ns))
    return seen.atime == mark


def onto_itself(verb: str, source: str, destination: str) -> str:
    """The message that refuses a copy onto its own source."""
    return f'{verb} "{source}": "{destination}" is the same file'


def upload_guard(fd: int, st: os.stat_result) -> Guard:
    """The guard an upload of open file *fd* (whose stat is *st*) gives
    :func:`~psftp_shell.filecopy.remotedest.remote_temp`."""
    async def guard(client: SFTPClient, path: str, old: Attrs) -> bool:
        return await same_file(fd, st, old, lambda: client.stat(path))
    return guard
