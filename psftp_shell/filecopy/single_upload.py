"""One file uploaded on one stream, as sftp's ``do_upload``.

As in :mod:`.single_download`: a new copy goes to a remote temporary,
renamed over the destination only once every byte is acknowledged;
``reput`` and ``put -a`` without a journal append in place, as sftp
does.
"""

from __future__ import annotations

import asyncio
import os
import stat as stat_mod

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
from psftp_shell.filecopy.onto_itself import onto_itself, upload_guard
from psftp_shell.filecopy.remote_rename import close_into_place
from psftp_shell.filecopy.remotedest import (
    OntoItself,
    RemoteFile,
    abandon,
    close_remote,
    fsetstat_remote,
    fsync_remote,
    keep_remote_temp,
    open_remote_dest,
)
from psftp_shell.filecopy.request_pipeline import Pushed, push
from psftp_shell.filecopy.verify import verify_upload
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    FX_NO_SUCH_FILE,
    SFTPClient,
    StatusError,
)
from psftp_shell.sftp.request_core import retrieved


def upload_attrs(st: os.stat_result, preserve: bool) -> Attrs:
    """What an upload's OPEN sends: perm & 0777, times with -p."""
    attrs = Attrs(permissions=st.st_mode & 0o777)
    if preserve:
        attrs.atime, attrs.mtime = int(st.st_atime), int(st.st_mtime)
    return attrs


def open_source(out: Printer, path: str, shown: str) -> int | None:
    """Open an upload's source; ``open local "%s": %s`` on failure."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as exc:
        out.error(f'open local "{shown}": {exc.strerror}')
        return None


async def upload_file(ctx: CopyContext, client: SFTPClient, out: Printer,
                      local_path: str, remote_path: str, flags: Flags,
                      stream: int = 0) -> bool:
    """Copy one local file to *remote_path* (sftp's ``do_upload``).

    :returns: True on success; failures print sftp's messages
    :raises FatalError: a local read error (sftp exits on it)
    :raises SFTPError: when the connection is lost
    """
    fd = open_source(out, ctx.local(local_path), local_path)
    if fd is None:
        return False
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            out.error(f'local "{local_path}" is not a regular file')
            return False
        return await upload_fd(ctx, client, out, fd, st, local_path,
                               remote_path, flags, stream)
    finally:
        os.close(fd)


async def remote_offset(client: SFTPClient, out: Printer, local_path: str,
                        remote_path: str, size: int, *, tree: bool = False
                        ) -> int | None:
    """sftp's resume checks for an upload: the remote size, or None.

    In a tree (*tree*), a missing file starts at 0 and a complete one
    gives *size*: nothing to send.
    """
    try:
        there = await client.stat(remote_path)
    except StatusError as exc:
        if tree and exc.code == FX_NO_SUCH_FILE:
            return 0
        out.error(f"stat remote: {exc.text}")
        return None
    offset = there.size or 0
    if tree and offset == size:
        return size
    if offset >= size:
        out.error(f'resume "{local_path}": destination file same size '
                  "or larger")
        return None
    return offset


async def upload_fd(ctx: CopyContext, client: SFTPClient, out: Printer,
                    fd: int, st: os.stat_result, local_path: str,
                    remote_path: str, flags: Flags, stream: int = 0,
                    orphans: list[str] | None = None) -> bool:
    """The rest of ``do_upload`` once the local file is open.

    :param orphans: gets the name of a remote temporary that could not
        be removed because the connection was lost
    """
    attrs = upload_attrs(st, flags.preserve)
    offset = 0
    if flags.resume:
        found = await remote_offset(client, out, local_path, remote_path,
                                    st.st_size, tree=flags.tree)
        if found is None:
            return False
        if found == st.st_size:     # complete already (-a -R)
            return True
        offset = found
    try:
        dest = await open_remote_dest(ctx, client, out, remote_path, attrs,
                                      flags.resume, upload_guard(fd, st),
                                      fresh=flags.fresh)
    except OntoItself:
        out.error(onto_itself("upload", local_path, remote_path))
        return False
    if dest is None:
        return False
    job = TransferJob(True, local_path, remote_path, st.st_size, offset,
                      offset, in_turn=out.call)
    try:
        return await reported(ctx.observer, job, _send(
            ctx, client, out, fd, dest, job, attrs, flags, stream))
    finally:
        if dest.open or dest.temp is not None:
            await asyncio.shield(abandon(client, dest))
        if dest.temp is not None and orphans is not None:
            orphans.append(dest.temp)


def keep_partial_upload(ctx: CopyContext, dest: RemoteFile, fd: int,
                        job: TransferJob, pushed: Pushed) -> None:
    """Keep a stopped upload's remote temporary, with a local journal of
    the bytes acknowledged, so that ``reput`` goes on from there."""
    if dest.temp is None or pushed.write_error is not None \
            or pushed.highwater <= 0:
        return
    try:
        st = os.fstat(fd)
    except OSError:
        return
    jpath = journal.upload_path(ctx.environ, ctx.site, job.destination,
                                st.st_size, st.st_mtime_ns)
    temp = dest.temp
    if keep_remote_temp(dest, jpath, journal.Journal(
            os.path.abspath(ctx.local(job.source)), st.st_size,
            st.st_mtime_ns, temp, RangeSet([(0, pushed.highwater)]))):
        tell_kept(ctx.observer, job, temp, pushed.highwater)


async def _send(ctx: CopyContext, client: SFTPClient, out: Printer, fd: int,
                dest: RemoteFile, job: TransferJob, attrs: Attrs,
                flags: Flags, stream: int) -> bool:
    """Move the data of an opened upload and finish it."""
    pushed = Pushed(job.offset)
    sized: list[asyncio.Future[Attrs]] = []

    def ask_size() -> None:     # rides along with the last WRITEs
        if dest.temp is not None and ctx.verify != "none":
            sized.append(client.fstat_nowait(dest.handle))
            sized[0].add_done_callback(retrieved)
    try:
        await push(ctx, client, dest.handle, fd, job.offset, job, stream,
                   pushed, ask_size)
        return await _finish_upload(ctx, client, out, fd, dest, job, attrs,
                                    flags, pushed, sized)
    except BaseException:       # lost connection (the finish's too), SIGTERM
        keep_partial_upload(ctx, dest, fd, job, pushed)
        raise


async def _finish_upload(ctx: CopyContext, client: SFTPClient, out: Printer,
                         fd: int, dest: RemoteFile, job: TransferJob,
                         attrs: Attrs, flags: Flags, pushed: Pushed,
                         sized: list[asyncio.Future[Attrs]]) -> bool:
    """Check, close and rename an upload whose data has all been sent."""
    interrupted = ctx.is_interrupted()
    if pushed.write_error is not None:
        out.error(f'write remote "{dest.final}": '
                  f"{pushed.write_error.text}")
    failed = pushed.write_error is not None or interrupted
    if failed and dest.temp is not None:
        keep_partial_upload(ctx, dest, fd, job, pushed)
        return False        # the caller's finally cleans up
    if dest.temp is not None and not failed and not await verify_upload(
            ctx, client, out, dest.temp, dest.handle, fd, job,
            pushed.highwater, sized[0] if sized else None,
            reopened=dest.reopened):
        return False        # the caller's finally cleans up
    if failed and flags.resume:
        await fsetstat_remote(client, out, dest.handle,
                              Attrs(size=pushed.highwater))
    if flags.preserve:
        await fsetstat_remote(client, out, dest.handle, attrs)
    if flags.fsync:
        await fsync_remote(client, out, dest.handle)
    dest.open = False
    if failed:
        await close_remote(client, out, dest.handle)
        return False
    return await close_into_place(client, out, dest, dest.handle)
