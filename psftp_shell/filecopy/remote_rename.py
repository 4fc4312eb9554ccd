"""Putting an upload's remote temporary in place.

The CLOSE and the posix-rename onto the target, with sftp's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from psftp_shell.core.escape import handle_error
from psftp_shell.core.ordered_output import Printer
from psftp_shell.filecopy.remotedest import RemoteFile
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_WRITE,
    SFTPClient,
    StatusError,
)
from psftp_shell.sftp.few_handles import open_with_room
from psftp_shell.sftp.request_core import retrieved


async def _allowed(out: Printer, dest: RemoteFile,
                   release: Callable[[], Awaitable[None]] | None = None
                   ) -> bool:
    """Whether sftp could have written the target the temporary is to
    replace; its ``dest open`` message if not.  *release* closes the
    temporary's handle before a plain failure is asked again."""
    check, dest.check = dest.check, None
    if check is None:
        return True
    refused = await check.refusal(release)
    if refused is None:
        return True
    out.error(handle_error(f'dest open "{check.shown}"', refused.text))
    return False


async def close_into_place(client: SFTPClient, out: Printer,
                           dest: RemoteFile, handle: bytes) -> bool:
    """CLOSE *handle* and posix-rename the temporary onto the target.

    Both requests go out together (one round trip); a POSIX server can
    rename a file still open.  Failures print sftp's close message, or
    ours for the rename.  Nothing is renamed over a target sftp could
    not have written (the caller removes the temporary), nor after a
    CLOSE that failed before the check was asked again.
    """
    closings: list[asyncio.Future[None]] = []

    def close() -> asyncio.Future[None]:
        if not closings:
            closings.append(client.close_nowait(handle))
            closings[0].add_done_callback(retrieved)
        return closings[0]

    async def release() -> None:
        await asyncio.wait([close()])

    allowed = await _allowed(out, dest, release)
    closing = close()
    if closing.done() and (closing.cancelled() or closing.exception()):
        allowed = False     # closed for the check, and that failed
    renaming = _send_rename(client, dest) if allowed else None
    ok = allowed
    try:
        await closing
    except StatusError as exc:
        out.error(f"close remote: {exc.text}")
        ok = False
    return await _renamed(out, dest, renaming) and ok


async def rename_into_place(client: SFTPClient, out: Printer,
                            dest: RemoteFile, attrs: Attrs | None = None
                            ) -> bool:
    """posix-rename the closed temporary onto the target, after a
    SETSTAT of *attrs* (``-p``) sent with it, in the same round trip.

    A refused SETSTAT is tried again as sftp's FSETSTAT on the renamed
    file (a server may refuse one and not the other); if that fails too,
    sftp's fsetstat message, and the file is kept, as sftp keeps a file
    whose attributes it could not set.  Nothing is renamed over a target
    sftp could not have written.
    """
    if not await _allowed(out, dest):
        return False
    setting = None
    if attrs is not None and dest.temp is not None:
        setting = client.setstat_nowait(dest.temp, attrs)
        setting.add_done_callback(retrieved)
    renaming = _send_rename(client, dest)
    refused = await _refusal(setting)
    moved = await _refusal(renaming)
    if refused is not None and moved is None and attrs is not None:
        refused = await _fsetstat_path(client, dest.final, attrs, refused)
    if refused is not None:
        out.error(f"remote fsetstat: {refused.text}")
    if moved is not None:
        out.error(f'remote rename "{dest.temp}" to "{dest.final}": '
                  f"{moved.text}")
        return False
    if renaming is not None:
        dest.temp = None
    return True


async def _refusal(request: asyncio.Future[None] | None
                   ) -> StatusError | None:
    """The server's refusal of *request*, if sent; None if it was done."""
    try:
        if request is not None:
            await request
    except StatusError as exc:
        return exc
    return None


async def _fsetstat_path(client: SFTPClient, path: str, attrs: Attrs,
                         refused: StatusError) -> StatusError | None:
    """OPEN *path* for writing, FSETSTAT *attrs*, CLOSE: None if set,
    else the FSETSTAT's refusal (*refused* if the OPEN failed)."""
    try:
        handle = await open_with_room(client,
                                      lambda: client.open(path, OPEN_WRITE))
    except StatusError:
        return refused
    try:
        await client.fsetstat(handle, attrs)
    except StatusError as exc:
        return exc
    finally:
        with contextlib.suppress(StatusError):
            await client.close_handle(handle)
    return None


def _send_rename(client: SFTPClient, dest: RemoteFile
                 ) -> asyncio.Future[None] | None:
    """Send the posix-rename of *dest*'s temporary, if it has one."""
    if dest.temp is None:
        return None
    renaming = client.posix_rename_nowait(dest.temp, dest.final)
    renaming.add_done_callback(retrieved)
    return renaming


async def _renamed(out: Printer, dest: RemoteFile,
                   renaming: asyncio.Future[None] | None) -> bool:
    """Wait for the rename *renaming*; our message if it failed."""
    if renaming is None:
        return True
    try:
        await renaming
    except StatusError as exc:
        out.error(f'remote rename "{dest.temp}" to "{dest.final}": '
                  f"{exc.text}")
        return False
    dest.temp = None
    return True
