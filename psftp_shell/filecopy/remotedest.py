"""Remote handles with sftp's messages, and where uploads land.

An upload goes to a temporary ``.<name>.psftp-<random>`` beside the
target (created with EXCL, given the target's mode if it has one), moved
over the target with ``posix-rename@openssh.com`` once complete.  A
parallel upload's streams all open the temporary at once, without EXCL:
the first OPEN creates it (its 64 random bits cannot be guessed) and
none truncates it.  Without posix-rename, for links and special files,
or when the server lets nothing give the temporary an existing target's
mode (FSETSTAT and SETSTAT refused), it is written in place as sftp
does; a symbolic link target is resolved first.  An existing target
is also opened for writing, as sftp would, to learn whether sftp's copy
would have been allowed (the rename waits for that).  Failed requests
print sftp's message to a ``Printer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

from psftp_shell.core.escape import handle_error
from psftp_shell.core.ordered_output import Printer
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.localdest import temp_name
from psftp_shell.filecopy.onto_itself import Guard
from psftp_shell.filecopy.write_check import WriteCheck
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    FX_NO_SUCH_FILE,
    OPEN_APPEND,
    OPEN_CREAT,
    OPEN_EXCL,
    OPEN_TRUNC,
    OPEN_WRITE,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.few_handles import IDLE_LIMIT, open_with_room
from psftp_shell.sftp.request_core import retrieved


@dataclass(slots=True)
class RemoteFile:
    """An open remote file; for uploads maybe a temporary to rename.

    :param check: for a temporary that replaces an existing file, the
        OPEN that tells whether sftp could have written that file
    """

    handle: bytes
    final: str
    temp: str | None = None
    open: bool = True
    check: WriteCheck | None = None

    def reopened(self, handle: bytes | None) -> None:
        """The file's handle was closed (*handle* None: none is open in
        its place yet, or ever if the reopen fails), or *handle* opened
        in its place."""
        if handle is None:
            self.open = False
        else:
            self.handle, self.open = handle, True

    def drop_check(self) -> None:
        """The temporary will not replace the target: no answer needed."""
        if self.check is not None:
            self.check.drop()
            self.check = None


class OntoItself(Exception):
    """The upload's target is its own source (see :mod:`samefile`)."""


async def close_remote(client: SFTPClient, out: Printer,
                       handle: bytes) -> bool:
    """CLOSE a handle; ``close remote: %s`` on failure."""
    try:
        await client.close_handle(handle)
    except StatusError as exc:
        out.error(f"close remote: {exc.text}")
        return False
    return True


async def fsetstat_remote(client: SFTPClient, out: Printer, handle: bytes,
                          attrs: Attrs) -> None:
    """FSETSTAT; ``remote fsetstat: %s`` on failure."""
    try:
        await client.fsetstat(handle, attrs)
    except StatusError as exc:
        out.error(f"remote fsetstat: {exc.text}")


async def fsync_remote(client: SFTPClient, out: Printer,
                       handle: bytes) -> None:
    """``fsync@openssh.com`` where offered; ``remote fsync: %s``."""
    if not client.has_extension("fsync@openssh.com"):
        return
    try:
        await client.fsync(handle)
    except StatusError as exc:
        out.error(f"remote fsync: {exc.text}")


SHARED_TEMP = OPEN_WRITE | OPEN_CREAT
"""How each stream of a parallel upload opens a new temporary."""


class Sharers(Protocol):
    """The other streams of a parallel upload (see :func:`remote_temp`)."""

    def open_temp(self, temp: str, flags: int, attrs: Attrs) -> None:
        """Send their OPENs of *temp* now."""

    async def settle(self) -> bool:
        """Wait for every OPEN sent to be answered; close the handles
        nobody uses; True if any OPEN gave a handle."""


async def open_remote(ctx: CopyContext, client: SFTPClient, path: str,
                      flags: int, attrs: Attrs | None = None, *,
                      temporary: bool = False, wait: bool = False) -> bytes:
    """OPEN *path*; if cancelled meanwhile, undo it when it completes.

    The reply to a cancelled OPEN still creates a handle (and maybe a
    temporary file) on the server: close it, and remove a temporary.
    The OPEN leaves in this turn, without a task of its own.  With
    *wait* (the caller holds no other handle of *client*), one refused
    while other handles of *client* are open is sent again once one is
    closed (:func:`~psftp_shell.sftp.few_handles.open_with_room`).
    """
    if not wait:
        return await _open_once(ctx, client, path, flags, attrs, temporary)
    return await open_with_room(
        client, lambda: _open_once(ctx, client, path, flags, attrs,
                                   temporary),
        idle_limit=idle_limit(ctx))


def idle_limit(ctx: CopyContext) -> float | None:
    """:data:`~psftp_shell.sftp.few_handles.IDLE_LIMIT`, or none under
    ``-l`` (whose pauses look idle)."""
    return None if ctx.limiter is not None else IDLE_LIMIT


async def _open_once(ctx: CopyContext, client: SFTPClient, path: str,
                     flags: int, attrs: Attrs | None, temporary: bool
                     ) -> bytes:
    fut = client.open_nowait(path, flags, attrs)

    def undo(handle: bytes) -> None:
        # counted after the replies before it, as its own would have
        # been; abandon closes it
        asyncio.get_running_loop().call_soon(client.handles.arrived, handle)
        ctx.background(abandon(client, RemoteFile(
            handle, path, path if temporary else None)))
    client.on_late_reply(fut, undo)     # (no shield: a turn less a file)
    try:
        return await fut
    except asyncio.CancelledError:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            undo(fut.result())      # answered, then cancelled
        raise
    finally:
        if not fut.cancelled():
            client.on_late_reply(fut, None)


def keep_remote_temp(dest: RemoteFile, jpath: str,
                    entry: journal.Journal) -> bool:
    """Write *entry* to *jpath* (an upload journal, kept locally) and, if
    it was saved, leave the remote temporary for a later reput."""
    if journal.save(jpath, entry):
        dest.temp = None
        dest.drop_check()
        return True
    return False


async def abandon(client: SFTPClient, dest: RemoteFile) -> None:
    """Close a remote destination and remove its temporary, quietly."""
    dest.drop_check()
    with contextlib.suppress(SFTPError):
        if dest.open:
            dest.open = False
            await client.close_handle(dest.handle)
    if dest.temp is not None and not client.closed:
        with contextlib.suppress(SFTPError):
            await client.remove(dest.temp)
            dest.temp = None


async def remote_temp(ctx: CopyContext, client: SFTPClient,
                      remote_path: str, attrs: Attrs,
                      sharers: Sharers | None = None,
                      guard: Guard | None = None, *,
                      shown: str | None = None, follow: bool = True,
                      fresh: bool = False) -> RemoteFile | None:
    """Create a temporary beside *remote_path*, or None for in place.

    Needs posix-rename; an existing regular file lends its mode (sftp
    keeps it unless -p); a symbolic link is resolved and the temporary
    made beside the file it names; special files are written in place.
    The LSTAT of the target, the OPEN of the temporary and the
    *sharers*' OPENs of it go out together, so this costs one round
    trip, as sftp's own OPEN does.  When the copy is not to go to the
    temporary, it is removed once every OPEN of it was answered.

    :param guard: asked about an existing regular target
    :param shown: the target as messages name it (a link's path)
    :param follow: resolve a link (not again for the file it names)
    :param fresh: the target's directory was just made by this upload:
        no LSTAT, the temporary is kept
    :raises OntoItself: when *guard* says the target is the source
    """
    head, sep, name = remote_path.rpartition("/")
    if not name or not client.has_extension("posix-rename@openssh.com"):
        return None
    temp = head + sep + temp_name(name)
    create = Attrs(permissions=attrs.permissions)
    look = None if fresh else client.lstat_nowait(remote_path)
    if look is not None:
        look.add_done_callback(retrieved)
    flags = OPEN_WRITE | OPEN_CREAT | OPEN_EXCL
    if sharers is not None:
        flags = SHARED_TEMP
        sharers.open_temp(temp, flags, create)
    made = _Made(ctx, client, remote_path, shown or remote_path, temp,
                 sharers, guard, follow)
    try:
        handle = await open_remote(ctx, client, temp, flags, create,
                                   temporary=True, wait=True)
    except StatusError:
        if sharers is not None and await sharers.settle():
            await _remove_quietly(client, temp)
        return None
    except BaseException:
        if sharers is not None:
            ctx.background(_unshare(client, temp, sharers))
        raise
    if look is None:
        return RemoteFile(handle, remote_path, temp)
    dest = await made.kept(handle, look)
    if dest is None and made.link:
        return await remote_temp(ctx, client, made.link, attrs, None, guard,
                                 shown=made.shown, follow=False)
    return dest


@dataclass(slots=True)
class _Made:
    """What :func:`remote_temp` makes of its open temporary, once the
    LSTAT of the target is answered."""

    ctx: CopyContext
    client: SFTPClient
    remote_path: str
    shown: str
    temp: str
    sharers: Sharers | None
    guard: Guard | None
    follow: bool
    link: str = ""          # the file a link target names, to go to

    async def kept(self, handle: bytes, look: asyncio.Future[Attrs]
                   ) -> RemoteFile | None:
        """The temporary, unless the target says to copy in place or
        through a link (then it is closed and removed)."""
        client = self.client
        dest = RemoteFile(handle, self.remote_path, self.temp)
        try:
            old = await look
        except StatusError as exc:
            if exc.code == FX_NO_SUCH_FILE:
                return dest
            old = None
        except BaseException:
            self.ctx.background(abandon(client, dest))
            raise
        try:
            if old is not None and old.is_reg():
                if await self._replacing(dest, old):
                    return dest
            elif old is not None and old.is_link() and self.follow:
                with contextlib.suppress(StatusError):
                    found = await client.realpath(self.remote_path)
                    if found != self.remote_path:
                        self.link = found
        except OntoItself:
            await self._drop(dest)
            raise
        except BaseException:
            self.ctx.background(abandon(client, dest))
            raise
        await self._drop(dest)      # in place, as sftp, or via the link
        return None

    async def _replacing(self, dest: RemoteFile, old: Attrs) -> bool:
        """Whether the temporary may replace the regular file *old*: it
        must take *old*'s mode (FSETSTAT, else SETSTAT), or the copy goes
        in place as sftp's, which keeps the mode."""
        client = self.client
        if self.guard is not None and await self.guard(
                client, self.remote_path, old):
            raise OntoItself(self.shown)
        dest.check = WriteCheck.send(client, self.remote_path, self.shown)
        if old.permissions is None:
            return True
        return await client.set_either(
            dest.handle, self.temp,
            Attrs(permissions=old.permissions & 0o1777))

    async def _drop(self, dest: RemoteFile) -> None:
        if self.sharers is not None:
            await self.sharers.settle()
        await abandon(self.client, dest)


async def _remove_quietly(client: SFTPClient, path: str) -> None:
    if not client.closed:
        with contextlib.suppress(SFTPError):
            await client.remove(path)


async def _unshare(client: SFTPClient, temp: str,
                   sharers: Sharers) -> None:
    """Remove *temp* once no OPEN of it can still create it."""
    await sharers.settle()
    await _remove_quietly(client, temp)


async def open_remote_dest(ctx: CopyContext, client: SFTPClient,
                           out: Printer, remote_path: str, attrs: Attrs,
                           resume: bool, guard: Guard | None = None,
                           fresh: bool = False) -> RemoteFile | None:
    """OPEN the upload's target: a temporary, or sftp's in place
    (*fresh*: in a directory just made, see :func:`remote_temp`).

    :raises OntoItself: when *guard* says the target is the source
    """
    if not resume:
        dest = await remote_temp(ctx, client, remote_path, attrs, None,
                                 guard, fresh=fresh)
        if dest is not None:
            return dest
        if guard is not None:       # in place truncates: look first
            await _not_itself(client, remote_path, guard)
    flags = OPEN_WRITE | OPEN_CREAT
    flags |= OPEN_APPEND if resume else OPEN_TRUNC
    try:
        handle = await open_remote(ctx, client, remote_path, flags, attrs,
                                   wait=True)
    except StatusError as exc:
        out.error(handle_error(f'dest open "{remote_path}"', exc.text))
        return None
    return RemoteFile(handle, remote_path)


async def _not_itself(client: SFTPClient, remote_path: str,
                      guard: Guard) -> None:
    """Raise OntoItself if the existing *remote_path* is the source."""
    try:
        old = await client.stat(remote_path)
    except StatusError:
        return
    if await guard(client, remote_path, old):
        raise OntoItself(remote_path)


