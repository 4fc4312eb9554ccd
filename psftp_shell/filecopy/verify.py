"""Delivery verification (``-X verify=``), before a temporary is renamed.

Once every byte of a copy has arrived, and before its temporary (local
for ``get``, remote for ``put``) is renamed onto the final name, the copy
is checked:

``size`` (the default)
    the temporary's size equals the source's at end of file: an
    ``fstat`` locally, an FSTAT on the remote handle for uploads.
``hash``
    the file is hashed in :data:`BLOCK`-sized ranges on both sides.  The
    local file (the source for ``put``, the temporary for ``get``) is
    read in an executor thread; the server hashes its copy with its
    ``check-file`` extension where it offers it, otherwise - only with
    ``-X verify-exec=yes`` and an SSH connection - with a ``dd`` and
    ``sha256sum`` command run over that connection, otherwise the range
    is read back over SFTP and hashed here.  A range that differs is
    copied again and checked again; one that still differs after
    :data:`REPAIRS` copies fails the command.
``none``
    no check: sftp's own request sequence (saves the FSTAT round trip
    of every upload).

How each file was checked is left in
:attr:`~psftp_shell.core.observer.TransferJob.verified` for the progress
view; nothing is printed unless a check fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from psftp_shell.core.escape import handle_error
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.ordered_output import Printer
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.localdest import LocalDest, pwrite_all
from psftp_shell.filecopy.range_hashes import (
    BLOCK,
    Span,
    block_for,
    blocks_of,
    exec_script,
    hash_local,
    parse_sums,
    read_range,
    runs_of,
)
from psftp_shell.filecopy.remotedest import close_remote, open_remote
from psftp_shell.sftp import checkfile
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_READ,
    OPEN_WRITE,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.few_handles import open_with_room, refused_as_limit

REPAIRS = 2
"""How often a mismatched range is copied again before the copy fails."""
ALGORITHMS = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")
"""Hashes asked of ``check-file``, best first (all known to hashlib)."""

CHECK_FILE = "server check-file"
REMOTE_COMMAND = "remote command"
READ_BACK = "read-back"


class Interrupted(Exception):
    """Ctrl-C during a check: the copy fails without a message."""


@dataclass(eq=False)
class Check:
    """One file being checked: both copies and how to mend a range.

    :param local_fd: the local copy, readable (source or temporary)
    :param remote_path: the remote copy (source or temporary)
    :param handle: that file opened for reading
    :param repair: copies [start, end) again, source to destination
    :param block: the size of the ranges compared (:func:`block_for`)
    """

    ctx: CopyContext
    client: SFTPClient
    out: Printer
    job: TransferJob
    local_fd: int
    remote_path: str
    handle: bytes
    repair: Callable[[int, int], Awaitable[None]]
    block: int = BLOCK
    skip: set[str] = field(default_factory=set)

    async def local_hashes(self, spans: list[Span], algorithm: str
                           ) -> list[bytes]:
        """Hash the local copy's ranges in a thread."""
        return await asyncio.get_running_loop().run_in_executor(
            None, hash_local, self.local_fd, spans, algorithm)

    async def remote_hashes(self, spans: list[Span]
                            ) -> tuple[str, str, list[bytes]]:
        """(method, algorithm, digests) of the remote copy's ranges."""
        if CHECK_FILE not in self.skip \
                and await checkfile.probe_check_file(self.client):
            found = await self._check_file(spans)
            if found is not None:
                return CHECK_FILE, found[0], found[1]
            self.skip.add(CHECK_FILE)
        run = self.ctx.remote_exec
        if REMOTE_COMMAND not in self.skip and run is not None \
                and self.remote_path.startswith("/"):
            output = await run(exec_script(self.remote_path, spans,
                                           self.block))
            sums = None if output is None else parse_sums(output,
                                                          len(spans))
            if sums is not None:
                return REMOTE_COMMAND, "sha256", sums
            self.skip.add(REMOTE_COMMAND)
        return READ_BACK, "sha256", await self._read_back(spans)

    async def _check_file(self, spans: list[Span]
                          ) -> tuple[str, list[bytes]] | None:
        """Ask the server's ``check-file``; None if it will not do it.

        Only the forms ProFTPD gets right are sent: from 0 for a length,
        or from an offset to end of file (the extra hashes are dropped).
        """
        algorithm = ""
        digests: list[bytes] = []
        try:
            for start, end in runs_of(spans):
                algorithm, got = await checkfile.check_file_handle(
                    self.client, self.handle, ALGORITHMS, start,
                    end if start == 0 else 0, self.block)
                want = len(blocks_of(end - start, self.block))
                if len(got) < want or (start == 0 and len(got) > want):
                    return None
                digests.extend(got[:want])
        except (SFTPError, ValueError):
            if self.client.closed:
                raise
            return None
        return algorithm, digests

    async def _read_back(self, spans: list[Span]) -> list[bytes]:
        """Read the ranges over SFTP and hash them here."""
        digests = []
        for start, end in spans:
            self.stop_if_interrupted()
            digest = hashlib.sha256()
            async for _, data in read_range(
                    self.client, self.handle, start, end,
                    self.ctx.read_size, self.ctx.max_requests):
                digest.update(data)
            digests.append(digest.digest())
        return digests

    async def compare(self, spans: list[Span]
                      ) -> tuple[str, list[Span]]:
        """Hash both copies; return the label and the ranges that differ.

        The local hash runs while the server works; it is done again if
        the server chose another algorithm than SHA-256.
        """
        ours = asyncio.ensure_future(self.local_hashes(spans, "sha256"))
        try:
            method, algorithm, theirs = await self.remote_hashes(spans)
        except BaseException:
            ours.cancel()
            raise
        mine = await ours
        if algorithm != "sha256":
            mine = await self.local_hashes(spans, algorithm)
        bad = [span for span, a, b in zip(spans, mine, theirs, strict=True)
               if a != b]
        return f"{algorithm} ({method})", bad

    def stop_if_interrupted(self) -> None:
        """Raise :class:`Interrupted` once the user asked to stop."""
        if self.ctx.is_interrupted():
            raise Interrupted()

    async def run(self, size: int) -> bool:
        """Compare, mend and compare again; False after the error line."""
        try:
            return await self._run(size)
        except Interrupted:
            return False
        except StatusError as exc:
            self.out.error(f'verify "{self.job.destination}": {exc.text}')
        except OSError as exc:
            self.out.error(f'verify "{self.job.destination}": '
                           f"{exc.strerror}")
        return False

    async def _run(self, size: int) -> bool:
        self.block = block_for(size)
        spans = blocks_of(size, self.block)
        label = "size"
        for attempt in range(REPAIRS + 1):
            if not spans:
                break
            label, bad = await self.compare(spans)
            if not bad:
                break
            if attempt == REPAIRS:
                start, end = bad[0]
                self.out.error(
                    f'verify "{self.job.destination}": {label} differs '
                    f"in bytes {start}-{end} after {REPAIRS} retries")
                return False
            for start, end in bad:
                self.stop_if_interrupted()
                await self.repair(start, end)
            spans = bad
        self.job.verified = label
        return True


def _size_error(out: Printer, job: TransferJob, got: int, want: int
                ) -> bool:
    out.error(f'verify "{job.destination}": size {got} differs from '
              f"source size {want}")
    return False


async def verify_download(ctx: CopyContext, client: SFTPClient,
                          out: Printer, remote_path: str,
                          handle: bytes | None, dest: LocalDest,
                          job: TransferJob, size: int) -> bool:
    """Check a download's temporary before it is renamed into place.

    :param handle: the source open for reading; None to open one
    :param size: where the source ended (its EOF)
    :returns: False after an error line: the copy failed
    :raises SFTPError: when the connection is lost
    """
    if ctx.verify == "none" or dest.temp is None:
        return True
    got = os.fstat(dest.fd).st_size
    if got != size:
        return _size_error(out, job, got, size)
    if ctx.verify != "hash":
        job.verified = "size"
        return True
    try:
        local_fd = os.open(dest.temp, os.O_RDONLY)
    except OSError as exc:
        out.error(f'verify "{job.destination}": {exc.strerror}')
        return False
    opened = None
    try:
        if handle is None:
            try:
                handle = opened = await open_with_room(
                    client, lambda: client.open(remote_path, OPEN_READ))
            except StatusError as exc:
                out.error(handle_error(f'remote open "{remote_path}"',
                                         exc.text))
                return False
        source = handle

        async def repair(start: int, end: int) -> None:
            async for offset, data in read_range(
                    client, source, start, end, ctx.read_size,
                    ctx.max_requests):
                pwrite_all(dest.fd, data, offset)

        check = Check(ctx, client, out, job, local_fd, remote_path, handle,
                      repair)
        return await check.run(size)
    finally:
        os.close(local_fd)
        if opened is not None and not client.closed:
            await _close_quietly(client, opened)


async def verify_upload(ctx: CopyContext, client: SFTPClient, out: Printer,
                        temp: str, handle: bytes, fd: int,
                        job: TransferJob, size: int,
                        sized: Awaitable[Attrs] | None = None, *,
                        reopened: Callable[[bytes | None], None]) -> bool:
    """Check an upload's remote temporary before it is renamed.

    :param handle: the temporary, open for writing (for repairs); it may
        be closed and replaced (see *reopened*)
    :param fd: the local source
    :param size: where the source ended (its EOF)
    :param sized: an FSTAT of *handle* already sent after the last WRITE
        (so the size check costs no round trip of its own)
    :param reopened: told when *handle* is closed (None) and of the
        handle opened in its place (:func:`_reopen_for_both`)
    :returns: False after an error line: the copy failed
    :raises SFTPError: when the connection is lost
    """
    if ctx.verify == "none":
        return True
    try:
        there = await (client.fstat(handle) if sized is None else sized)
    except StatusError:
        there = None        # no size to compare: hashes may still do
    known = None if there is None else there.size
    if known is not None and known != size:
        return _size_error(out, job, known, size)
    if ctx.verify != "hash":
        job.verified = "" if known is None else "size"
        return True
    try:
        reader = await open_remote(ctx, client, temp, OPEN_READ)
    except StatusError as exc:
        if not refused_as_limit(client, exc):
            out.error(handle_error(f'remote open "{temp}"', exc.text))
            return False
        client.handles.limited = True
        found = await _reopen_for_both(ctx, client, out, temp, handle,
                                       reopened)
        if found is None:
            return False
        reader = handle = found
    writer = handle

    async def repair(start: int, end: int) -> None:
        writes = []
        for pos in range(start, end, ctx.write_size):
            data = os.pread(fd, min(ctx.write_size, end - pos), pos)
            writes.append(client.write_nowait(writer, pos, data))
        await asyncio.gather(*writes)

    try:
        check = Check(ctx, client, out, job, fd, temp, reader, repair)
        return await check.run(size)
    finally:
        if reader != writer and not client.closed:
            await _close_quietly(client, reader)


async def _reopen_for_both(ctx: CopyContext, client: SFTPClient,
                           out: Printer, temp: str, handle: bytes,
                           reopened: Callable[[bytes | None], None]
                           ) -> bytes | None:
    """The temporary open for reading and writing, in place of *handle*.

    For a server that refused the check a second handle of the session
    as a limit would (one open file at a time, for some): the
    temporary's own handle is closed (every WRITE of it was answered),
    and the temporary opened again, once the session has room, for the
    hashes, the repairs and the rest of the upload.  None after an
    error line.
    """
    reopened(None)
    if not await close_remote(client, out, handle):
        return None
    try:
        found = await open_remote(ctx, client, temp, OPEN_READ | OPEN_WRITE,
                                  wait=True)
    except StatusError as exc:
        out.error(handle_error(f'remote open "{temp}"', exc.text))
        return None
    reopened(found)
    return found


async def _close_quietly(client: SFTPClient, handle: bytes) -> None:
    """CLOSE a handle of ours; a failure does not matter."""
    try:
        await asyncio.shield(client.close_handle(handle))
    except SFTPError:
        pass
