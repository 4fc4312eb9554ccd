"""An SFTP version 3 client over any pair of byte streams.

:class:`SFTPClient` speaks draft-ietf-secsh-filexfer-02 plus OpenSSH's
``@openssh.com`` extensions and reports errors with the texts OpenSSH's
sftp uses.  This module holds the typed requests; the machinery they run
on is :mod:`psftp_shell.sftp.request_core`, the wire format
:mod:`psftp_shell.sftp.wire` and the reply parsers
:mod:`psftp_shell.sftp.replies`.  The names of those modules that callers use
are re-exported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .attrs import Attrs
from .handle_count import HandleCount
from .outbox import ByteWriter
from .replies import (
    on_attrs,
    on_extended,
    on_handle,
    on_names,
    on_one_name,
    on_status,
    on_u64s,
    on_users_groups,
)
from .request_core import ByteReader, SFTPCore
from .wire import (
    ATTR_ACMODTIME,
    ATTR_EXTENDED,
    ATTR_PERMISSIONS,
    ATTR_SIZE,
    ATTR_UIDGID,
    FX_BAD_MESSAGE,
    FX_CONNECTION_LOST,
    FX_EOF,
    FX_FAILURE,
    FX_NO_CONNECTION,
    FX_NO_SUCH_FILE,
    FX_OK,
    FX_OP_UNSUPPORTED,
    FX_PERMISSION_DENIED,
    FXP_ATTRS,
    FXP_CLOSE,
    FXP_DATA,
    FXP_EXTENDED,
    FXP_EXTENDED_REPLY,
    FXP_FSETSTAT,
    FXP_FSTAT,
    FXP_HANDLE,
    FXP_INIT,
    FXP_LSTAT,
    FXP_MKDIR,
    FXP_NAME,
    FXP_OPEN,
    FXP_OPENDIR,
    FXP_READ,
    FXP_READDIR,
    FXP_READLINK,
    FXP_REALPATH,
    FXP_REMOVE,
    FXP_RENAME,
    FXP_RMDIR,
    FXP_SETSTAT,
    FXP_STAT,
    FXP_STATUS,
    FXP_SYMLINK,
    FXP_VERSION,
    FXP_WRITE,
    KNOWN_EXTENSIONS,
    MAX_MSG_LENGTH,
    OPEN_APPEND,
    OPEN_CREAT,
    OPEN_EXCL,
    OPEN_READ,
    OPEN_TRUNC,
    OPEN_WRITE,
    PROTOCOL_VERSION,
    U32,
    U64,
    ConnectionLost,
    Limits,
    Name,
    ProtocolError,
    SFTPError,
    StatusError,
    StatVFS,
    decode_attrs,
    decode_path,
    encode_attrs,
    encode_path,
    fx2txt,
    pack_path,
    pack_string,
)

__all__ = [
    "ATTR_ACMODTIME", "ATTR_EXTENDED", "ATTR_PERMISSIONS", "ATTR_SIZE",
    "ATTR_UIDGID", "ByteReader", "ByteWriter", "ConnectionLost",
    "FXP_ATTRS", "FXP_CLOSE", "FXP_DATA", "FXP_EXTENDED",
    "FXP_EXTENDED_REPLY", "FXP_FSETSTAT", "FXP_FSTAT", "FXP_HANDLE",
    "FXP_INIT", "FXP_LSTAT", "FXP_MKDIR", "FXP_NAME", "FXP_OPEN",
    "FXP_OPENDIR", "FXP_READ", "FXP_READDIR", "FXP_READLINK",
    "FXP_REALPATH", "FXP_REMOVE", "FXP_RENAME", "FXP_RMDIR", "FXP_SETSTAT",
    "FXP_STAT", "FXP_STATUS", "FXP_SYMLINK", "FXP_VERSION", "FXP_WRITE",
    "FX_BAD_MESSAGE", "FX_CONNECTION_LOST", "FX_EOF", "FX_FAILURE",
    "FX_NO_CONNECTION", "FX_NO_SUCH_FILE", "FX_OK", "FX_OP_UNSUPPORTED",
    "FX_PERMISSION_DENIED", "KNOWN_EXTENSIONS", "Limits", "MAX_MSG_LENGTH",
    "Name", "OPEN_APPEND", "OPEN_CREAT", "OPEN_EXCL", "OPEN_READ",
    "OPEN_TRUNC", "OPEN_WRITE", "PROTOCOL_VERSION", "ProtocolError",
    "SFTPClient", "SFTPError", "StatVFS", "StatusError", "decode_attrs",
    "EndlessListing", "MAX_DIR_ENTRIES", "check_batch",
    "decode_path", "encode_attrs", "encode_path", "fx2txt",
]


MAX_DIR_ENTRIES = 1_000_000
"""The most entries one directory listing may hold.

sftp reads until the server says end of file, so a server that never
does keeps it reading (and growing) forever.  A million entries is far
beyond any directory people list over SFTP, and still fits in memory
(about 500 bytes an entry); past it, the listing is abandoned with a
clear error instead of hanging.
"""


class EndlessListing(SFTPError):
    """A directory listing that does not end; the message says why."""


def check_batch(batch: list[Name], seen: set[str], count: int,
                path: str) -> None:
    """Raise :class:`EndlessListing` for a batch that shows no progress.

    A batch made only of names already listed means the server is going
    round in circles (one repeated name could be a race on the server; a
    whole repeated batch is not); a listing past
    :data:`MAX_DIR_ENTRIES` is cut off.
    """
    names = {name.filename for name in batch}
    if names <= seen:
        raise EndlessListing(f'Server repeats entries during readdir of '
                             f'"{path}": listing abandoned')
    if count + len(batch) > MAX_DIR_ENTRIES:
        raise EndlessListing(f'Too many entries (over {MAX_DIR_ENTRIES}) '
                             f'during readdir of "{path}": listing '
                             'abandoned')
    seen.update(names)


class SFTPClient(SFTPCore):
    """An SFTP v3 client session over a reader/writer pair.

    It counts the handles it holds open (:attr:`handles`), so that an
    OPEN the server refused while others were open can wait for one of
    them to close (:mod:`psftp_shell.sftp.few_handles`).

    :param on_lost: called with the error when the session ends for any
        reason other than :meth:`close` (transport died, protocol error)
    """

    def __init__(self, reader: ByteReader, writer: ByteWriter, *,
                 on_lost: Callable[[SFTPError], None] | None = None
                 ) -> None:
        super().__init__(reader, writer, on_lost=on_lost)
        self.handles = HandleCount()

    @property
    def requests_sent(self) -> int:
        """How many requests the session has sent (it wraps at 2**32)."""
        return self._next_id

    def _counted(self, fut: asyncio.Future[bytes], directory: bool = False
                 ) -> asyncio.Future[bytes]:
        def opened(fut: asyncio.Future[bytes]) -> None:
            if not fut.cancelled() and fut.exception() is None:
                self.handles.arrived(fut.result(), directory)
        fut.add_done_callback(opened)
        return fut

    def _shutdown(self, reason: SFTPError, lost: bool) -> None:
        super()._shutdown(reason, lost)
        self.handles.wake()     # the waits for a close end with it

    # ---- paths and attributes

    async def realpath(self, path: str) -> str:
        """Canonicalise *path* on the server (REALPATH)."""
        return str(await self._call(FXP_REALPATH, pack_path(path),
                                    on_one_name, "SSH2_FXP_REALPATH"))

    async def stat(self, path: str) -> Attrs:
        """Return the attributes of *path*, following symlinks."""
        return await self._call(FXP_STAT, pack_path(path), on_attrs)

    async def lstat(self, path: str) -> Attrs:
        """Return the attributes of *path* itself."""
        return await self.lstat_nowait(path)

    def lstat_nowait(self, path: str) -> asyncio.Future[Attrs]:
        """LSTAT sent in this turn (with the requests made in it)."""
        return self._submit(FXP_LSTAT, pack_path(path), on_attrs)

    async def fstat(self, handle: bytes) -> Attrs:
        """Return the attributes of an open handle."""
        return await self._call(FXP_FSTAT, pack_string(handle), on_attrs)

    def fstat_nowait(self, handle: bytes) -> asyncio.Future[Attrs]:
        """FSTAT sent in this turn (with the requests made in it)."""
        return self._submit(FXP_FSTAT, pack_string(handle), on_attrs)

    async def setstat(self, path: str, attrs: Attrs) -> None:
        """Set the attributes of *path* that are not None."""
        await self.setstat_nowait(path, attrs)

    def setstat_nowait(self, path: str, attrs: Attrs
                       ) -> asyncio.Future[None]:
        """SETSTAT sent in this turn (with the requests made in it)."""
        return self._submit(FXP_SETSTAT,
                            pack_path(path) + encode_attrs(attrs), on_status)

    async def fsetstat(self, handle: bytes, attrs: Attrs) -> None:
        """Set the attributes of an open handle that are not None."""
        await self._call(FXP_FSETSTAT,
                         pack_string(handle) + encode_attrs(attrs), on_status)

    async def set_either(self, handle: bytes, path: str, attrs: Attrs
                         ) -> bool:
        """FSETSTAT *attrs* on *handle*, else SETSTAT them on *path* (a
        server may refuse one and not the other); whether one was done."""
        for setting in (lambda: self.fsetstat(handle, attrs),
                        lambda: self.setstat(path, attrs)):
            try:
                await setting()
            except StatusError:
                continue
            return True
        return False

    # ---- files

    async def open(self, path: str, pflags: int,
                   attrs: Attrs | None = None) -> bytes:
        """Open a file (OPEN_* flags); return its handle."""
        return await self.open_nowait(path, pflags, attrs)

    def open_nowait(self, path: str, pflags: int,
                    attrs: Attrs | None = None) -> asyncio.Future[bytes]:
        """OPEN sent in this turn; the future gets the handle."""
        payload = b"".join((pack_path(path), U32.pack(pflags),
                            encode_attrs(attrs or Attrs())))
        return self._counted(self._submit(FXP_OPEN, payload, on_handle))

    async def close_handle(self, handle: bytes) -> None:
        """Close a file or directory handle."""
        await self.close_nowait(handle)

    def close_nowait(self, handle: bytes) -> asyncio.Future[None]:
        """CLOSE sent in this turn (with the requests made in it)."""
        fut: asyncio.Future[None] = self._submit(
            FXP_CLOSE, pack_string(handle), on_status)
        # open until the server says it is closed: some handle requests
        # concurrently, and count a handle until its CLOSE is done
        fut.add_done_callback(lambda _: self.handles.closed_one(handle))
        return fut

    async def read(self, handle: bytes, offset: int, length: int) -> bytes:
        """Read up to *length* bytes at *offset*; b"" at end of file."""
        return await self.read_nowait(handle, offset, length)

    async def write(self, handle: bytes, offset: int,
                    data: bytes | bytearray | memoryview) -> None:
        """Write *data* at *offset*."""
        await self.write_nowait(handle, offset, data)

    # ---- directories

    async def opendir(self, path: str) -> bytes:
        """Open a directory for reading; return its handle."""
        return await self._counted(
            self._submit(FXP_OPENDIR, pack_path(path), on_handle), True)

    async def readdir(self, handle: bytes) -> list[Name] | None:
        """Return the next batch of entries, or None at the end."""
        return await self._call(FXP_READDIR, pack_string(handle), on_names)

    async def listdir(self, path: str) -> list[Name]:
        """Return every entry of a directory, in server order.

        A listing that does not end raises :class:`EndlessListing`.
        """
        handle = await self.opendir(path)
        entries: list[Name] = []
        seen: set[str] = set()
        try:
            while batch := await self.readdir(handle):
                check_batch(batch, seen, len(entries), path)
                entries.extend(batch)
        finally:
            if not self._closed:
                await self.close_handle(handle)
        return entries

    async def remove(self, path: str) -> None:
        """Remove a file."""
        await self._call(FXP_REMOVE, pack_path(path), on_status)

    async def mkdir(self, path: str, attrs: Attrs | None = None) -> None:
        """Create a directory."""
        await self._call(FXP_MKDIR,
                         pack_path(path) + encode_attrs(attrs or Attrs()),
                         on_status)

    async def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        await self._call(FXP_RMDIR, pack_path(path), on_status)

    async def rename(self, old: str, new: str) -> None:
        """Rename with plain RENAME (fails if *new* exists on OpenSSH)."""
        await self._call(FXP_RENAME, pack_path(old) + pack_path(new),
                         on_status)

    async def readlink(self, path: str) -> str:
        """Return the target of a symbolic link."""
        return str(await self._call(FXP_READLINK, pack_path(path),
                                    on_one_name, "SSH_FXP_READLINK"))

    async def symlink(self, target: str, linkpath: str) -> None:
        """Create *linkpath* pointing at *target* (OpenSSH's wire order)."""
        await self._call(FXP_SYMLINK, pack_path(target) + pack_path(linkpath),
                         on_status)

    # ---- extensions (callers check has_extension first, as sftp does)

    async def extended(self, name: str, payload: bytes, *,
                       reply: int = FXP_EXTENDED_REPLY) -> bytes | None:
        """Send an EXTENDED request; return the reply body, None for OK.

        *reply* is the packet type the extension answers with (e.g.
        ``FXP_NAME`` for ``expand-path@openssh.com``); the body is what
        follows the request id.
        """
        result: bytes | None = await self._extended_call(
            name, payload, on_extended, reply)
        return result

    async def posix_rename(self, old: str, new: str) -> None:
        """Rename with POSIX semantics (replaces *new*)."""
        await self.posix_rename_nowait(old, new)

    def posix_rename_nowait(self, old: str, new: str
                            ) -> asyncio.Future[None]:
        """posix-rename sent in this turn (with the requests made in it)."""
        return self._submit(FXP_EXTENDED, b"".join((
            pack_path("posix-rename@openssh.com"), pack_path(old),
            pack_path(new))), on_status)

    async def statvfs(self, path: str) -> StatVFS:
        """Return file system statistics for *path*."""
        values = await self._extended_call("statvfs@openssh.com",
                                           pack_path(path), on_u64s, 11)
        return StatVFS(*values)

    async def fstatvfs(self, handle: bytes) -> StatVFS:
        """Return file system statistics for an open handle."""
        values = await self._extended_call("fstatvfs@openssh.com",
                                           pack_string(handle), on_u64s, 11)
        return StatVFS(*values)

    async def hardlink(self, old: str, new: str) -> None:
        """Create a hard link *new* to the existing file *old*."""
        await self._extended_call("hardlink@openssh.com",
                                  pack_path(old) + pack_path(new), on_status)

    async def fsync(self, handle: bytes) -> None:
        """Flush an open file to stable storage on the server."""
        await self._extended_call("fsync@openssh.com", pack_string(handle),
                                  on_status)

    async def lsetstat(self, path: str, attrs: Attrs) -> None:
        """Like :meth:`setstat` but does not follow a final symlink."""
        await self._extended_call("lsetstat@openssh.com",
                                  pack_path(path) + encode_attrs(attrs),
                                  on_status)

    async def limits(self) -> Limits:
        """Return the server's packet, read, write and handle limits."""
        values = await self._extended_call("limits@openssh.com", b"",
                                           on_u64s, 4)
        return Limits(*values)

    async def copy_data(self, read_handle: bytes, read_offset: int,
                        length: int, write_handle: bytes,
                        write_offset: int) -> None:
        """Copy on the server; *length* 0 copies up to end of file."""
        payload = b"".join((pack_string(read_handle),
                            U64.pack(read_offset), U64.pack(length),
                            pack_string(write_handle), U64.pack(write_offset)))
        await self._extended_call("copy-data", payload, on_status)

    async def users_groups_by_id(self, uids: list[int], gids: list[int]
                                 ) -> tuple[list[str], list[str]]:
        """Return user and group names, "" where the server has none."""
        payload = (pack_string(b"".join(U32.pack(u) for u in uids))
                   + pack_string(b"".join(U32.pack(g) for g in gids)))
        result: tuple[list[str], list[str]] = await self._extended_call(
            "users-groups-by-id@openssh.com", payload, on_users_groups,
            (len(uids), len(gids)))
        return result
