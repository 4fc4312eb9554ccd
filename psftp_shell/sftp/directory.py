"""Reading a whole remote directory as sftp's ``do_lsreaddir`` does.

Shared by the shell (``ls``, globbing) and the engine's recursive
transfers, so it lives below both.
"""

from __future__ import annotations

from collections.abc import Callable

from psftp_shell.core.errors import CommandError
from psftp_shell.core.escape import handle_error
from psftp_shell.core.ordered_output import Printer
from psftp_shell.sftp.client import (
    EndlessListing,
    Name,
    SFTPClient,
    StatusError,
    check_batch,
)
from psftp_shell.sftp.few_handles import open_with_room


async def read_directory(client: SFTPClient, out: Printer, path: str, *,
                         report_open: bool = True,
                         interrupted: Callable[[], bool] | None = None
                         ) -> list[Name]:
    """sftp's ``do_lsreaddir``: a whole directory, suspect names dropped.

    A server name that contains ``/`` (an absolute or traversal name) is
    reported with sftp's message and skipped, whoever reads the directory.
    A read failure prints sftp's message and raises :class:`CommandError`;
    so does an OPENDIR failure with *report_open* (without it, the
    :class:`StatusError` propagates unprinted), and a listing that never
    ends (:func:`~psftp_shell.sftp.client.check_batch`).  When *interrupted*
    says so, reading stops and nothing is returned, as sftp discards a
    partial listing.
    """
    try:
        handle = await open_with_room(client, lambda: client.opendir(path),
                                      directory=True)
    except StatusError as exc:
        if report_open:
            out.error(handle_error(f'remote readdir("{path}")', exc.text))
            raise CommandError("") from None
        raise
    stop = interrupted or (lambda: False)
    names: list[Name] = []
    seen: set[str] = set()
    count = 0
    try:
        while not stop():
            try:
                batch = await client.readdir(handle)
                if not batch:
                    break
                check_batch(batch, seen, count, path)
            except StatusError as exc:
                out.error(f"Couldn't read directory: {exc.text}")
                raise CommandError("") from None
            except EndlessListing as exc:
                out.error(str(exc))
                raise CommandError("") from None
            count += len(batch)
            for name in batch:
                if "/" in name.filename:
                    out.error(f'Server sent suspect path "{name.filename}" '
                              f'during readdir of "{path}"')
                else:
                    names.append(name)
    finally:
        try:
            await client.close_handle(handle)
        except StatusError as exc:
            out.error(f"close remote: {exc.text}")
    return [] if stop() else names
