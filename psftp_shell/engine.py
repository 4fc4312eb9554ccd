"""The transfer engine: pipelined file copies between server and here.

One :class:`TransferEngine` serves a shell session.  It copies files
(:meth:`~TransferEngine.download`, :meth:`~TransferEngine.upload`) and
trees (:meth:`~TransferEngine.download_dir`,
:meth:`~TransferEngine.upload_dir`) as OpenSSH 9.2's ``sftp-client.c``
does, message for message, with one deliberate difference: a new copy is
written to a temporary file beside the destination and renamed over it
only once every byte has arrived, so a failed or interrupted transfer
never leaves partial data under the final name.  Resumed transfers
(``-a``, ``reget``, ``reput``) append in place, as sftp does.

The engine prints through :class:`~psftp_shell.output.Output` and
reports progress to a :class:`TransferObserver`; it knows nothing of
terminals.  The byte pipelines (:meth:`TransferEngine._pull`,
:meth:`TransferEngine._push`) take the client and the byte range as
arguments, so that several streams can share one file later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat as stat_mod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from psftp_shell.attrs import Attrs
from psftp_shell.errors import FatalError
from psftp_shell.observer import (
    NullObserver,
    TransferJob,
    TransferObserver,
)
from psftp_shell.output import Output
from psftp_shell.paths import path_append
from psftp_shell.protocol import (
    FX_NO_SUCH_FILE,
    OPEN_APPEND,
    OPEN_CREAT,
    OPEN_EXCL,
    OPEN_READ,
    OPEN_TRUNC,
    OPEN_WRITE,
    Name,
    SFTPClient,
    SFTPError,
    StatusError,
)

DEFAULT_BUFFER = 32768
"""sftp's block size when the server does not send its limits."""
MAX_BUFFER = 256 * 1024 - 1024
"""The largest block that fits sftp's 256 KiB packets (261120)."""
MIN_READ_SIZE = 512
DEFAULT_REQUESTS = 64
MAX_DIR_DEPTH = 64
TEMP_MARK = ".psftp-"
"""Temporaries are named ``.<name>.psftp-<random>`` beside the target."""
_USER_WX = stat_mod.S_IWUSR | stat_mod.S_IXUSR


class TransferFailed(Exception):
    """A file copy failed; its message (if any) was already printed."""


def _never() -> bool:
    return False


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of *data* at *offset* (sftp's lseek + atomicio)."""
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


def _temp_name(name: str) -> str:
    return f".{name}{TEMP_MARK}{secrets.token_hex(4)}"


@dataclass(slots=True)
class _LocalDest:
    """A local destination open for writing: a temporary, or in place."""

    fd: int
    final: str
    temp: str | None = None
    closed: bool = False

    def commit(self) -> None:
        """Move the temporary onto the final name."""
        if self.temp is not None:
            os.replace(self.temp, self.final)
            self.temp = None

    def close(self) -> None:
        """Close the file; remove the temporary if it was not committed."""
        if not self.closed:
            self.closed = True
            os.close(self.fd)
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None


def _adopt(fd: int, old: os.stat_result) -> None:
    """Give a temporary the mode (and, if allowed, owner) of *old*."""
    os.fchmod(fd, stat_mod.S_IMODE(old.st_mode))
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):
            os.fchown(fd, old.st_uid, old.st_gid)


def _local_temp(path: str, mode: int) -> _LocalDest | None:
    """Open a temporary beside *path*'s target; None to write in place.

    Raises OSError when sftp's own open of an existing file would fail.
    """
    final = os.path.realpath(path) if os.path.islink(path) else path
    try:
        old: os.stat_result | None = os.stat(final)
    except FileNotFoundError:
        old = None
    except OSError:
        return None
    if old is not None:
        if not stat_mod.S_ISREG(old.st_mode):
            return None     # /dev/null, a FIFO...: in place, as sftp
        os.close(os.open(final, os.O_WRONLY))   # sftp's errors, if any
        mode = stat_mod.S_IMODE(old.st_mode)
    head, name = os.path.split(final)
    if not name:
        return None
    for _ in range(8):
        temp = os.path.join(head, _temp_name(name))
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         mode | stat_mod.S_IWUSR)
        except FileExistsError:
            continue
        except OSError:
            return None
        if old is not None:
            _adopt(fd, old)
        return _LocalDest(fd, final, temp)
    return None


def _open_local_dest(path: str, mode: int, resume: bool) -> _LocalDest:
    """Open where a download goes (sftp's open, or a temporary)."""
    if not resume:
        dest = _local_temp(path, mode)
        if dest is not None:
            return dest
    flags = os.O_WRONLY | os.O_CREAT | (0 if resume else os.O_TRUNC)
    return _LocalDest(os.open(path, flags, mode | stat_mod.S_IWUSR), path)


def _sync_dir(path: str) -> None:
    """fsync the directory holding *path* (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(slots=True)
class _Pulled:
    """What a download pipeline achieved."""

    highwater: int
    modified: bool = False
    reordered: bool = False
    read_error: StatusError | None = None
    write_error: OSError | None = None


@dataclass(slots=True)
class _Pushed:
    """What an upload pipeline achieved."""

    highwater: int
    write_error: StatusError | None = None


@dataclass(slots=True)
class _RemoteFile:
    """An open remote file; for uploads maybe a temporary to rename."""

    handle: bytes
    final: str
    temp: str | None = None
    open: bool = True


class TransferEngine:
    """Copies files and trees over one SFTP client.

    :param client: the control connection's client
    :param out: where sftp's messages go
    :param read_size: bytes per READ request
    :param write_size: bytes per WRITE request
    :param max_requests: requests in flight per file
    :param local_cwd: what relative local paths are relative to; the
        shell keeps it current (psftp-shell never calls ``os.chdir``)

    Set :attr:`observer` for progress and :attr:`is_interrupted` to a
    callable that turns true on Ctrl-C: no new requests are sent, the
    outstanding ones drain and the copy fails without a message.
    """

    def __init__(self, client: SFTPClient, out: Output, *,
                 read_size: int = DEFAULT_BUFFER,
                 write_size: int = DEFAULT_BUFFER,
                 max_requests: int = DEFAULT_REQUESTS,
                 local_cwd: str | None = None) -> None:
        self.client = client
        self.out = out
        self.read_size = read_size
        self.write_size = write_size
        self.max_requests = max_requests
        self.local_cwd = local_cwd or os.getcwd()
        self.observer: TransferObserver = NullObserver()
        self.is_interrupted: Callable[[], bool] = _never
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    async def create(cls, client: SFTPClient, out: Output, *,
                     buffer_size: int | None = None,
                     max_requests: int | None = None) -> TransferEngine:
        """Size blocks and requests as sftp's ``do_init`` does.

        *buffer_size* and *max_requests* are ``-B`` and ``-R``; without
        them the server's ``limits@openssh.com`` decides (a limit of 0,
        "none", gives the largest block rather than sftp's 64 bytes).
        """
        read = write = buffer_size or DEFAULT_BUFFER
        requests = max_requests or DEFAULT_REQUESTS
        if client.has_extension("limits@openssh.com"):
            try:
                limits = await client.limits()
            except StatusError:
                raise FatalError("do_init: limits failed") from None
            if not buffer_size:
                read = max(min(limits.max_read_len or MAX_BUFFER,
                               MAX_BUFFER), 64)
                write = max(min(limits.max_write_len or MAX_BUFFER,
                                MAX_BUFFER), 64)
            if not max_requests and limits.max_open_handles:
                requests = max(min(DEFAULT_REQUESTS,
                                   limits.max_open_handles), 1)
        return cls(client, out, read_size=read, write_size=write,
                   max_requests=requests)

    # ---- small wrappers with sftp's messages

    def _local(self, path: str) -> str:
        return os.path.join(self.local_cwd, path)

    async def _close(self, handle: bytes) -> bool:
        """CLOSE a handle; ``close remote: %s`` on failure."""
        try:
            await self.client.close_handle(handle)
        except StatusError as exc:
            self.out.error(f"close remote: {exc.text}")
            return False
        return True

    async def _fsetstat(self, handle: bytes, attrs: Attrs) -> None:
        try:
            await self.client.fsetstat(handle, attrs)
        except StatusError as exc:
            self.out.error(f"remote fsetstat: {exc.text}")

    async def _fsync(self, handle: bytes) -> None:
        if not self.client.has_extension("fsync@openssh.com"):
            return
        try:
            await self.client.fsync(handle)
        except StatusError as exc:
            self.out.error(f"remote fsync: {exc.text}")

    async def _realpath(self, path: str) -> str | None:
        try:
            return await self.client.realpath(path)
        except StatusError as exc:
            text = exc.server_message or exc.text
            self.out.error(f"realpath {path}: {text}")
            return None

    async def _readdir(self, path: str) -> list[Name] | None:
        """sftp's ``do_readdir``: all entries, or None after an error."""
        try:
            handle = await self.client.opendir(path)
        except StatusError as exc:
            self.out.error(f'remote readdir("{path}"): {exc.text}')
            return None
        names: list[Name] = []
        failed = False
        try:
            while not self.is_interrupted():
                try:
                    batch = await self.client.readdir(handle)
                except StatusError as exc:
                    self.out.error(f"Couldn't read directory: {exc.text}")
                    failed = True
                    break
                if not batch:
                    break
                for name in batch:
                    if "/" in name.filename:
                        self.out.error(
                            f'Server sent suspect path "{name.filename}" '
                            f'during readdir of "{path}"')
                    else:
                        names.append(name)
        finally:
            await self._close(handle)
        if failed:
            return None
        return [] if self.is_interrupted() else names

    async def _open(self, path: str, flags: int, attrs: Attrs | None = None,
                    *, temporary: bool = False) -> bytes:
        """OPEN *path*; if cancelled meanwhile, undo it when it completes.

        The reply to a cancelled OPEN still creates a handle (and maybe a
        temporary file) on the server: close it, and remove a temporary.
        """
        task = asyncio.ensure_future(self.client.open(path, flags, attrs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(
                lambda done: self._undo_open(done, path, temporary))
            raise

    def _undo_open(self, done: asyncio.Task[bytes], path: str,
                   temporary: bool) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        dest = _RemoteFile(done.result(), path, path if temporary else None)
        cleanup = asyncio.ensure_future(self._abandon(dest))
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    async def _abandon(self, dest: _RemoteFile) -> None:
        """Close a remote destination and remove its temporary, quietly."""
        with contextlib.suppress(SFTPError):
            if dest.open:
                dest.open = False
                await self.client.close_handle(dest.handle)
        if dest.temp is not None:
            temp, dest.temp = dest.temp, None
            with contextlib.suppress(SFTPError):
                await self.client.remove(temp)

    # ---- downloads

    async def download(self, remote_path: str, local_path: str,
                       attrs: Attrs | None, *, preserve: bool,
                       resume: bool, fsync: bool) -> bool:
        """Copy one remote file to *local_path* (sftp's ``do_download``).

        :param attrs: the file's attributes if known (readdir), else the
            file is STATed first
        :returns: True on success; failures print sftp's messages
        :raises SFTPError: when the connection is lost (the temporary is
            removed first)
        """
        if attrs is None:
            try:
                attrs = await self.client.stat(remote_path)
            except StatusError as exc:
                self.out.error(f"stat remote: {exc.text}")
                return False
        perm = attrs.permissions
        mode = perm & 0o777 if perm is not None else 0o666
        if perm is not None and not attrs.is_reg():
            self.out.error(f"download {remote_path}: not a regular file")
            return False
        size = attrs.size or 0
        try:
            handle = await self._open(remote_path, OPEN_READ)
        except StatusError as exc:
            self.out.error(f'remote open "{remote_path}": {exc.text}')
            return False
        try:
            dest = _open_local_dest(self._local(local_path), mode, resume)
        except OSError as exc:
            self.out.error(f'open local "{local_path}": {exc.strerror}')
            await self._close(handle)
            return False
        remote = _RemoteFile(handle, remote_path)
        offset = 0
        if resume:
            offset = os.fstat(dest.fd).st_size
            if offset > size:
                dest.close()
                self.out.error(f'Unable to resume download of '
                               f'"{local_path}": local file is larger '
                               'than remote')
                await self._close(handle)
                return False
        job = TransferJob(False, remote_path, local_path, size, offset,
                          offset)
        self.observer.file_started(job)
        error: BaseException | None = TransferFailed()
        try:
            ok = await self._fetch(remote, dest, job, attrs, mode,
                                   preserve=preserve, resume=resume,
                                   fsync=fsync)
            if ok:
                error = None
            return ok
        except BaseException as exc:
            error = exc
            raise
        finally:
            dest.close()
            self.observer.file_finished(job, error)
            if remote.open:
                await asyncio.shield(self._abandon(remote))

    async def _fetch(self, remote: _RemoteFile, dest: _LocalDest,
                     job: TransferJob, attrs: Attrs, mode: int, *,
                     preserve: bool, resume: bool, fsync: bool) -> bool:
        """Move the data of an opened download and finish it."""
        local_path = job.destination
        pulled = await self._pull(self.client, remote.handle, dest.fd,
                                  job.offset, job.size, job)
        interrupted = self.is_interrupted()
        failed = (pulled.read_error is not None
                  or pulled.write_error is not None or interrupted)
        if failed and dest.temp is None:
            if resume and pulled.reordered:
                self.out.error(f'Unable to resume download of '
                               f'"{local_path}": server reordered '
                               'requests')
            self._truncate(dest.fd, pulled.highwater, local_path)
        remote.open = False
        if pulled.read_error is not None:
            self.out.error(f'read remote "{job.source}" : '
                           f"{pulled.read_error.text}")
            await self._close(remote.handle)
            return False
        if pulled.write_error is not None:
            self.out.error(f'write local "{local_path}": '
                           f"{pulled.write_error.strerror}")
            await self._close(remote.handle)
            return False
        ok = await self._close(remote.handle) and not interrupted
        if preserve:
            self._preserve_local(dest.fd, attrs, mode, local_path)
        if resume and not pulled.modified:
            self.out.logit(f'File "{local_path}" was not modified')
        elif fsync:
            try:
                os.fsync(dest.fd)
            except OSError as exc:
                self.out.error(f'local sync "{local_path}": {exc.strerror}')
        if ok and dest.temp is not None:
            try:
                dest.commit()
            except OSError as exc:
                self.out.error(f'rename local "{local_path}": '
                               f"{exc.strerror}")
                return False
            if fsync:
                _sync_dir(dest.final)
        return ok

    def _truncate(self, fd: int, highwater: int, local_path: str) -> None:
        """Cut an in-place file at its contiguous prefix, as sftp does."""
        try:
            os.ftruncate(fd, highwater)
        except OSError as exc:
            self.out.error(f'local ftruncate "{local_path}": '
                           f"{exc.strerror}")

    def _preserve_local(self, fd: int, attrs: Attrs, mode: int,
                        local_path: str) -> None:
        """``-p`` on a downloaded file: mode & 0777 and whole seconds."""
        try:
            os.fchmod(fd, mode)
        except OSError as exc:
            self.out.error(f'local chmod "{local_path}": {exc.strerror}')
        if attrs.atime is not None and attrs.mtime is not None:
            try:
                os.utime(fd, (attrs.atime, attrs.mtime))
            except OSError as exc:
                self.out.error(f'local set times "{local_path}": '
                               f"{exc.strerror}")

    async def _pull(self, client: SFTPClient, handle: bytes, fd: int,
                    offset: int, size: int, job: TransferJob) -> _Pulled:
        """Read from *offset* to EOF into *fd*, sftp's download loop.

        Requests ramp up from 1 by one per reply to ``max_requests``;
        past the expected *size* one at a time, so a growing file is
        followed to its EOF.  A short read re-requests the rest and
        shrinks the block size.  Replies are taken in request order.
        """
        buflen = self.read_size
        result = _Pulled(offset)
        queue: deque[tuple[asyncio.Future[bytes], int, int]] = deque()
        max_req = 1
        try:
            while queue or max_req > 0:
                if self.is_interrupted():
                    if not queue:
                        break
                    max_req = 0
                while len(queue) < max_req:
                    queue.append((client.read_nowait(handle, offset, buflen),
                                  offset, buflen))
                    offset += buflen
                fut, start, length = queue.popleft()
                try:
                    data = await fut
                except StatusError as exc:
                    result.read_error = result.read_error or exc
                    max_req = 0
                    continue
                if not data:        # EOF
                    max_req = 0
                    continue
                got = len(data)
                self._store(result, fd, data, start)
                if result.write_error is not None:
                    max_req = 0
                job.transferred += got
                self.observer.advanced(job, got)
                if got < length:
                    rest = start + got
                    queue.appendleft((client.read_nowait(
                        handle, rest, length - got), rest, length - got))
                    if got < buflen:
                        buflen = max(MIN_READ_SIZE, got)
                if max_req > 0:
                    if 0 < size < offset:
                        max_req = 1
                    elif max_req < self.max_requests:
                        max_req += 1
        finally:
            for fut, _, _ in queue:
                fut.cancel()
        return result

    @staticmethod
    def _store(result: _Pulled, fd: int, data: bytes, start: int) -> None:
        result.modified = True
        if result.write_error is not None:
            return
        try:
            _pwrite_all(fd, data, start)
        except OSError as exc:
            result.write_error = exc
            return
        if result.reordered:
            return
        if start <= result.highwater:
            result.highwater = max(result.highwater, start + len(data))
        else:
            result.reordered = True

    async def download_dir(self, remote_path: str, local_path: str,
                           attrs: Attrs | None, *, preserve: bool,
                           resume: bool, fsync: bool) -> bool:
        """Copy a remote tree (sftp's ``download_dir``).

        Prints ``Retrieving <dir>`` for every directory, even when quiet;
        files go in server order; links and special files are skipped.
        """
        canon = await self._realpath(remote_path)
        if canon is None:
            self.out.error(f'download "{remote_path}": path '
                           "canonicalization failed")
            return False
        return await self._download_tree(
            canon, local_path, 0, attrs,
            (preserve, resume, fsync))

    async def _download_tree(self, src: str, dst: str, depth: int,
                             dirattrs: Attrs | None,
                             flags: tuple[bool, bool, bool]) -> bool:
        if depth >= MAX_DIR_DEPTH:
            self.out.error(
                f"Maximum directory depth exceeded: {depth} levels")
            return False
        if dirattrs is None:
            try:
                dirattrs = await self.client.stat(src)
            except StatusError:
                self.out.error(f'stat remote "{src}" directory failed')
                return False
        if not dirattrs.is_dir():
            self.out.error(f'"{src}" is not a directory')
            return False
        self.out.line(f"Retrieving {src}")
        mode = tmpmode = 0o777
        if dirattrs.permissions is not None:
            mode = dirattrs.permissions & 0o1777
            tmpmode = mode | _USER_WX
        local = self._local(dst)
        try:
            os.mkdir(local, tmpmode)
        except FileExistsError:
            pass
        except OSError as exc:
            self.out.error(f"mkdir {dst}: {exc.strerror}")
            return False
        entries = await self._readdir(src)
        if entries is None:
            self.out.error(f'remote readdir "{src}" failed')
            return False
        ok = await self._download_entries(src, dst, depth, entries, flags)
        preserve = flags[0]
        if preserve and dirattrs.mtime is not None \
                and dirattrs.atime is not None:
            try:
                os.utime(local, (dirattrs.atime, dirattrs.mtime))
            except OSError as exc:
                self.out.error(f'local set times on "{dst}": '
                               f"{exc.strerror}")
        if mode != tmpmode:
            try:
                os.chmod(local, mode)
            except OSError as exc:
                self.out.error(f'local chmod directory "{dst}": '
                               f"{exc.strerror}")
        return ok

    async def _download_entries(self, src: str, dst: str, depth: int,
                                entries: list[Name],
                                flags: tuple[bool, bool, bool]) -> bool:
        preserve, resume, fsync = flags
        ok = True
        for entry in entries:
            if self.is_interrupted():
                break
            name, attrs = entry.filename, entry.attrs
            new_src, new_dst = path_append(src, name), path_append(dst, name)
            if attrs.is_dir():
                if name in (".", ".."):
                    continue
                if not await self._download_tree(new_src, new_dst,
                                                 depth + 1, attrs, flags):
                    ok = False
            elif attrs.is_reg():
                if not await self.download(new_src, new_dst, attrs,
                                           preserve=preserve, resume=resume,
                                           fsync=fsync):
                    self.out.error(f"Download of file {new_src} to "
                                   f"{new_dst} failed")
                    ok = False
            else:
                self.out.logit(f'download "{new_src}": not a regular file')
        return ok

    # ---- uploads

    async def upload(self, local_path: str, remote_path: str, *,
                     preserve: bool, resume: bool, fsync: bool) -> bool:
        """Copy one local file to *remote_path* (sftp's ``do_upload``).

        :returns: True on success; failures print sftp's messages
        :raises FatalError: a local read error (sftp exits on it)
        :raises SFTPError: when the connection is lost
        """
        try:
            fd = os.open(self._local(local_path), os.O_RDONLY)
        except OSError as exc:
            self.out.error(f'open local "{local_path}": {exc.strerror}')
            return False
        try:
            return await self._upload_fd(fd, local_path, remote_path,
                                         preserve=preserve, resume=resume,
                                         fsync=fsync)
        finally:
            os.close(fd)

    async def _upload_fd(self, fd: int, local_path: str, remote_path: str,
                         *, preserve: bool, resume: bool, fsync: bool
                         ) -> bool:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            self.out.error(f'local "{local_path}" is not a regular file')
            return False
        attrs = Attrs(permissions=st.st_mode & 0o777)
        if preserve:
            attrs.atime, attrs.mtime = int(st.st_atime), int(st.st_mtime)
        offset = 0
        if resume:
            try:
                there = await self.client.stat(remote_path)
            except StatusError as exc:
                self.out.error(f"stat remote: {exc.text}")
                return False
            offset = there.size or 0
            if offset >= st.st_size:
                self.out.error(f'resume "{local_path}": destination file '
                               "same size or larger")
                return False
        dest = await self._open_remote_dest(remote_path, attrs, resume)
        if dest is None:
            return False
        job = TransferJob(True, local_path, remote_path, st.st_size,
                          offset, offset)
        self.observer.file_started(job)
        error: BaseException | None = TransferFailed()
        try:
            ok = await self._send(fd, dest, job, attrs, preserve=preserve,
                                  resume=resume, fsync=fsync)
            if ok:
                error = None
            return ok
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.observer.file_finished(job, error)
            if dest.open or dest.temp is not None:
                await asyncio.shield(self._abandon(dest))

    async def _open_remote_dest(self, remote_path: str, attrs: Attrs,
                                resume: bool) -> _RemoteFile | None:
        """OPEN the upload's target: a temporary, or sftp's in place."""
        if not resume:
            dest = await self._remote_temp(remote_path, attrs)
            if dest is not None:
                return dest
        flags = OPEN_WRITE | OPEN_CREAT
        flags |= OPEN_APPEND if resume else OPEN_TRUNC
        try:
            handle = await self._open(remote_path, flags, attrs)
        except StatusError as exc:
            self.out.error(f'dest open "{remote_path}": {exc.text}')
            return None
        return _RemoteFile(handle, remote_path)

    async def _remote_temp(self, remote_path: str, attrs: Attrs
                           ) -> _RemoteFile | None:
        """Create a temporary beside *remote_path*, or None for in place.

        Needs posix-rename; an existing regular file lends its mode (sftp
        keeps it unless -p); links and special files are written in place.
        """
        client = self.client
        head, sep, name = remote_path.rpartition("/")
        if not name or not client.has_extension("posix-rename@openssh.com"):
            return None
        try:
            old: Attrs | None = await client.lstat(remote_path)
        except StatusError as exc:
            if exc.code != FX_NO_SUCH_FILE:
                return None
            old = None
        create = Attrs(permissions=attrs.permissions)
        if old is not None:
            if not old.is_reg():
                return None
            if old.permissions is not None:
                create.permissions = old.permissions & 0o1777
        temp = head + sep + _temp_name(name)
        try:
            handle = await self._open(
                temp, OPEN_WRITE | OPEN_CREAT | OPEN_EXCL, create,
                temporary=True)
        except StatusError:
            return None
        dest = _RemoteFile(handle, remote_path, temp)
        if old is not None and create.permissions is not None:
            with contextlib.suppress(StatusError):
                await client.fsetstat(handle, create)
        return dest

    async def _send(self, fd: int, dest: _RemoteFile, job: TransferJob,
                    attrs: Attrs, *, preserve: bool, resume: bool,
                    fsync: bool) -> bool:
        """Move the data of an opened upload and finish it."""
        pushed = await self._push(self.client, dest.handle, fd, job.offset,
                                  job)
        interrupted = self.is_interrupted()
        if pushed.write_error is not None:
            self.out.error(f'write remote "{dest.final}": '
                           f"{pushed.write_error.text}")
        failed = pushed.write_error is not None or interrupted
        if failed and dest.temp is not None:
            return False        # the finally of upload() cleans up
        if failed and resume:
            await self._fsetstat(dest.handle, Attrs(size=pushed.highwater))
        if preserve:
            await self._fsetstat(dest.handle, attrs)
        if fsync:
            await self._fsync(dest.handle)
        dest.open = False
        ok = await self._close(dest.handle) and not failed
        if ok and dest.temp is not None:
            try:
                await self.client.posix_rename(dest.temp, dest.final)
            except StatusError as exc:
                self.out.error(f'remote rename "{dest.temp}" to '
                               f'"{dest.final}": {exc.text}')
                return False
            dest.temp = None
        return ok

    async def _push(self, client: SFTPClient, handle: bytes, fd: int,
                    offset: int, job: TransferJob) -> _Pushed:
        """Send *fd* from *offset* to its EOF, sftp's upload loop.

        The first WRITE waits for its ACK; then up to ``max_requests``
        are in flight.  A failed ACK stops reading; the rest drain.
        """
        result = _Pushed(offset)
        queue: deque[tuple[asyncio.Future[None], int, int]] = deque()
        first = True
        try:
            while True:
                data = b""
                if not self.is_interrupted() and result.write_error is None:
                    data = self._read_local(fd, offset, job.source)
                if data:
                    queue.append((client.write_nowait(handle, offset, data),
                                  offset, len(data)))
                    offset += len(data)
                    await client.drain()
                elif not queue:
                    break
                if first or not data or len(queue) > self.max_requests:
                    first = False
                    await self._ack(queue.popleft(), result, job)
        finally:
            for fut, _, _ in queue:
                fut.cancel()
        return result

    def _read_local(self, fd: int, offset: int, path: str) -> bytes:
        try:
            return os.pread(fd, self.write_size, offset)
        except OSError as exc:
            raise FatalError(
                f'read local "{path}": {exc.strerror}') from None

    async def _ack(self, request: tuple[asyncio.Future[None], int, int],
                   result: _Pushed, job: TransferJob) -> None:
        fut, start, length = request
        try:
            await fut
        except StatusError as exc:
            result.write_error = result.write_error or exc
        else:
            if start <= result.highwater:
                result.highwater = max(result.highwater, start + length)
        job.transferred += length
        self.observer.advanced(job, length)

    async def upload_dir(self, local_path: str, remote_path: str, *,
                         preserve: bool, resume: bool, fsync: bool) -> bool:
        """Copy a local tree (sftp's ``upload_dir``).

        Prints ``Entering <dir>`` for every directory, even when quiet;
        entries go in readdir order; links and special files are skipped.
        """
        canon = await self._realpath(remote_path)
        if canon is None:
            self.out.error(f'upload "{remote_path}": path '
                           "canonicalization failed")
            return False
        return await self._upload_tree(local_path, canon, 0,
                                       (preserve, resume, fsync))

    async def _upload_tree(self, src: str, dst: str, depth: int,
                           flags: tuple[bool, bool, bool]) -> bool:
        if depth >= MAX_DIR_DEPTH:
            self.out.error(
                f"Maximum directory depth exceeded: {depth} levels")
            return False
        try:
            st = os.stat(self._local(src))
        except OSError as exc:
            self.out.error(f'stat local "{src}": {exc.strerror}')
            return False
        if not stat_mod.S_ISDIR(st.st_mode):
            self.out.error(f'"{src}" is not a directory')
            return False
        self.out.line(f"Entering {src}")
        attrs = Attrs(permissions=stat_mod.S_IMODE(st.st_mode) & 0o1777)
        if flags[0]:
            attrs.atime, attrs.mtime = int(st.st_atime), int(st.st_mtime)
        if not await self._remote_mkdir(dst, attrs):
            return False
        try:
            names = os.listdir(self._local(src))
        except OSError as exc:
            self.out.error(f'local opendir "{src}": {exc.strerror}')
            return False
        ok = await self._upload_entries(src, dst, depth, names, flags)
        try:
            await self.client.setstat(dst, attrs)
        except StatusError as exc:
            self.out.error(f'remote setstat "{dst}": {exc.text}')
        return ok

    async def _remote_mkdir(self, dst: str, attrs: Attrs) -> bool:
        """MKDIR writable by us; an existing directory is fine."""
        assert attrs.permissions is not None
        try:
            await self.client.mkdir(dst, Attrs(
                permissions=attrs.permissions | _USER_WX,
                atime=attrs.atime, mtime=attrs.mtime))
            return True
        except StatusError:
            pass
        try:
            there = await self.client.stat(dst)
        except StatusError as exc:
            self.out.error(f"stat remote: {exc.text}")
            return False
        if not there.is_dir():
            self.out.error(f'"{dst}" exists but is not a directory')
            return False
        return True

    async def _upload_entries(self, src: str, dst: str, depth: int,
                              names: list[str],
                              flags: tuple[bool, bool, bool]) -> bool:
        preserve, resume, fsync = flags
        ok = True
        for name in names:
            if self.is_interrupted():
                break
            new_src, new_dst = path_append(src, name), path_append(dst, name)
            try:
                mode = os.lstat(self._local(new_src)).st_mode
            except OSError as exc:
                self.out.logit(f'local lstat "{name}": {exc.strerror}')
                ok = False
                continue
            if stat_mod.S_ISDIR(mode):
                if not await self._upload_tree(new_src, new_dst, depth + 1,
                                               flags):
                    ok = False
            elif stat_mod.S_ISREG(mode):
                if not await self.upload(new_src, new_dst,
                                         preserve=preserve, resume=resume,
                                         fsync=fsync):
                    self.out.error(f'upload "{new_src}" to "{new_dst}" '
                                   "failed")
                    ok = False
            else:
                self.out.logit(f"{name}: not a regular file")
        return ok
