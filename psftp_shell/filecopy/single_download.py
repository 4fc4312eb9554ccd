"""One file downloaded on one stream, as sftp's ``do_download``.

Message for message what OpenSSH 9.2 does, with one deliberate
difference: a new copy goes to a temporary beside the destination and
is renamed over it only once every byte has arrived, so a failed or
interrupted copy never leaves partial data under the final name.
A resumed copy without a journal (``-a``, ``reget``) appends in place,
as sftp does.  Uploads are in :mod:`.single_upload`.
"""

from __future__ import annotations

import asyncio
import os

from psftp_shell.core.escape import handle_error
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.ordered_output import Printer
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.filecopy.copy_context import (
    CopyContext,
    Flags,
    reported,
    tell_kept,
)
from psftp_shell.filecopy.localdest import (
    LocalDest,
    final_path,
    keep_local_temp,
    open_local_dest,
    sync_dir,
)
from psftp_shell.filecopy.remotedest import (
    RemoteFile,
    abandon,
    close_remote,
    open_remote,
)
from psftp_shell.filecopy.request_pipeline import Pulled, pull
from psftp_shell.filecopy.verify import verify_download
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_READ,
    SFTPClient,
    StatusError,
)


async def source_attrs(client: SFTPClient, out: Printer, path: str,
                       attrs: Attrs | None) -> Attrs | None:
    """STAT a download's source unless known; None after sftp's error."""
    if attrs is None:
        try:
            attrs = await client.stat(path)
        except StatusError as exc:
            out.error(f"stat remote: {exc.text}")
            return None
    if attrs.permissions is not None and not attrs.is_reg():
        out.error(f"download {path}: not a regular file")
        return None
    return attrs


def new_mode(attrs: Attrs) -> int:
    """The mode sftp gives a new local file: remote perm & 0777."""
    perm = attrs.permissions
    return perm & 0o777 if perm is not None else 0o666


def preserve_local(out: Printer, fd: int, attrs: Attrs, mode: int,
                   local_path: str) -> None:
    """``-p`` on a downloaded file: mode & 0777 and whole seconds."""
    try:
        os.fchmod(fd, mode)
    except OSError as exc:
        out.error(f'local chmod "{local_path}": {exc.strerror}')
    if attrs.atime is not None and attrs.mtime is not None:
        try:
            os.utime(fd, (attrs.atime, attrs.mtime))
        except OSError as exc:
            out.error(f'local set times "{local_path}": {exc.strerror}')


def sync_local(out: Printer, fd: int, local_path: str) -> None:
    """``-f``: fsync, with sftp's message."""
    try:
        os.fsync(fd)
    except OSError as exc:
        out.error(f'local sync "{local_path}": {exc.strerror}')


def commit_local(out: Printer, dest: LocalDest, local_path: str,
                 fsync: bool) -> bool:
    """Rename a finished temporary onto its target."""
    if dest.temp is None:
        return True
    try:
        dest.commit()
    except OSError as exc:
        out.error(f'rename local "{local_path}": {exc.strerror}')
        return False
    if fsync:
        sync_dir(dest.final)
    return True


async def download_file(ctx: CopyContext, client: SFTPClient, out: Printer,
                        remote_path: str, local_path: str,
                        attrs: Attrs | None, flags: Flags,
                        stream: int = 0) -> bool:
    """Copy one remote file to *local_path* (sftp's ``do_download``).

    :returns: True on success; failures print sftp's messages
    :raises SFTPError: when the connection is lost (the temporary is
        removed first)
    """
    attrs = await source_attrs(client, out, remote_path, attrs)
    if attrs is None:
        return False
    mode, size = new_mode(attrs), attrs.size or 0
    try:
        handle = await open_remote(ctx, client, remote_path, OPEN_READ,
                                   wait=True)
    except StatusError as exc:
        out.error(handle_error(f'remote open "{remote_path}"', exc.text))
        return False
    try:
        dest = open_local_dest(ctx.local(local_path), mode, flags.resume,
                               flags.fresh)
    except OSError as exc:
        out.error(f'open local "{local_path}": {exc.strerror}')
        await close_remote(client, out, handle)
        return False
    remote = RemoteFile(handle, remote_path)
    offset = os.fstat(dest.fd).st_size if flags.resume else 0
    if offset > size:
        dest.close()
        out.error(f'Unable to resume download of "{local_path}": local '
                  "file is larger than remote")
        await close_remote(client, out, handle)
        return False
    job = TransferJob(False, remote_path, local_path, size, offset, offset,
                      in_turn=out.call)
    try:
        return await reported(ctx.observer, job, _fetch(
            ctx, client, out, remote, dest, job, attrs, mode, flags,
            stream))
    finally:
        dest.close()
        if remote.open:
            await asyncio.shield(abandon(client, remote))


def keep_partial(ctx: CopyContext, dest: LocalDest, job: TransferJob,
                 attrs: Attrs, pulled: Pulled, local: str) -> None:
    """Keep a stopped download's temporary, with a journal of the bytes
    in it, so that ``reget`` goes on from there (as it would after
    sftp's partial file).  Nothing is kept after a local write error:
    the space is what a full disk needs back.
    """
    if dest.temp is None or dest.closed \
            or pulled.write_error is not None or pulled.highwater <= 0:
        return      # (after reordered replies, highwater is still the
                    # prefix that arrived whole)
    temp = dest.temp
    jpath = journal.download_path(ctx.environ, final_path(local))
    if keep_local_temp(dest, jpath,
                       journal.Journal(job.source, attrs.size or 0,
                                       attrs.mtime, temp,
                                       RangeSet([(0, pulled.highwater)]))):
        tell_kept(ctx.observer, job, temp, pulled.highwater)


async def _fetch(ctx: CopyContext, client: SFTPClient, out: Printer,
                 remote: RemoteFile, dest: LocalDest, job: TransferJob,
                 attrs: Attrs, mode: int, flags: Flags, stream: int
                 ) -> bool:
    """Move the data of an opened download and finish it."""
    local_path = job.destination
    pulled = Pulled(job.offset)
    try:
        await pull(ctx, client, remote.handle, dest.fd, job.offset,
                   job.size, job, stream, pulled)
        return await _finish_download(ctx, client, out, remote, dest, job,
                                      attrs, mode, flags, pulled)
    except BaseException:       # lost connection (the finish's too), SIGTERM
        keep_partial(ctx, dest, job, attrs, pulled, ctx.local(local_path))
        raise


async def _finish_download(ctx: CopyContext, client: SFTPClient,
                           out: Printer, remote: RemoteFile, dest: LocalDest,
                           job: TransferJob, attrs: Attrs, mode: int,
                           flags: Flags, pulled: Pulled) -> bool:
    """Check, close and commit a download whose data has all arrived."""
    local_path = job.destination
    interrupted = ctx.is_interrupted()
    failed = (pulled.read_error is not None
              or pulled.write_error is not None or interrupted)
    if failed:
        keep_partial(ctx, dest, job, attrs, pulled, ctx.local(local_path))
    if failed and dest.temp is None:
        if flags.resume and pulled.reordered:
            out.error(f'Unable to resume download of "{local_path}": '
                      "server reordered requests")
        try:
            os.ftruncate(dest.fd, pulled.highwater)
        except OSError as exc:
            out.error(f'local ftruncate "{local_path}": {exc.strerror}')
    remote.open = False
    if pulled.read_error is not None:
        out.error(f'read remote "{job.source}" : {pulled.read_error.text}')
        await close_remote(client, out, remote.handle)
        return False
    if pulled.write_error is not None:
        out.error(f'write local "{local_path}": '
                  f"{pulled.write_error.strerror}")
        await close_remote(client, out, remote.handle)
        return False
    if dest.temp is not None and not interrupted:
        end = (os.fstat(dest.fd).st_size if pulled.reordered
               else pulled.highwater)
        if not await verify_download(ctx, client, out, remote.final,
                                     remote.handle, dest, job, end):
            await close_remote(client, out, remote.handle)
            return False
    closed = await close_remote(client, out, remote.handle)
    if flags.preserve:
        preserve_local(out, dest.fd, attrs, mode, local_path)
    if flags.resume and not pulled.modified:
        out.logit(f'File "{local_path}" was not modified')
    elif flags.fsync:
        sync_local(out, dest.fd, local_path)
    if interrupted:
        return False
    # every byte arrived: kept after a failed CLOSE, as sftp keeps it
    return commit_local(out, dest, local_path, flags.fsync) and closed
