"""Where downloads land locally: a temporary beside the target.

A new copy is written to ``.<name>.psftp-<random>`` beside the target
and renamed over it only when every byte has arrived; an existing target
lends the temporary its mode (and owner, where allowed), so the result
looks as if sftp had written it in place.  Targets that are not regular
files (``/dev/null``, a FIFO) and names too long for a temporary are
written in place, as sftp does.  Free space and preallocation live here
too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import stat as stat_mod
from dataclasses import dataclass
from functools import cache

from psftp_shell.filecopy import journal
from psftp_shell.filecopy.copy_context import TEMP_MARK

_FALLOC_FL_KEEP_SIZE = 1


def temp_name(name: str) -> str:
    """A fresh temporary name for a file called *name* (64 random bits:
    nobody can guess it before it exists)."""
    return f".{name}{TEMP_MARK}{secrets.token_hex(8)}"


_TEMP = re.compile(r"\.(.+)" + re.escape(TEMP_MARK) + r"[0-9a-f]{16}")


def named_by_temp(temp: str) -> str | None:
    """The file a temporary path from :func:`temp_name` stands for, in
    the same directory; None if *temp* is not named like one."""
    head, sep, base = temp.rpartition("/")
    found = _TEMP.fullmatch(base)
    return head + sep + found.group(1) if found else None


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of *data* at *offset* (sftp's lseek + atomicio)."""
    done = os.pwrite(fd, data, offset)
    if done == len(data):
        return
    view = memoryview(data)[done:]
    offset += done
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


@dataclass(slots=True)
class LocalDest:
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

    def keep(self) -> None:
        """Leave the temporary in place when closed (for a journal)."""
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


def keep_local_temp(dest: LocalDest, jpath: str,
                    entry: journal.Journal) -> bool:
    """Sync the temporary, write *entry* to *jpath*, and keep the
    temporary when closed if the journal was saved (and drop the
    journals of downloads whose temporaries are gone)."""
    with contextlib.suppress(OSError):
        os.fdatasync(dest.fd)
    if journal.save(jpath, entry):
        dest.keep()
        journal.prune_downloads(jpath)
        return True
    return False


def _adopt(fd: int, old: os.stat_result) -> None:
    """Give a temporary the mode (and, if allowed, owner) of *old*."""
    os.fchmod(fd, stat_mod.S_IMODE(old.st_mode))
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):
            os.fchown(fd, old.st_uid, old.st_gid)


def final_path(path: str) -> str:
    """The file a download to *path* replaces (links are followed)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def local_temp(path: str, mode: int, fresh: bool = False
               ) -> LocalDest | None:
    """Open a temporary beside *path*'s target; None to write in place.

    *fresh*: *path* is in a directory this copy has just made, so there
    is nothing there to look at.  Raises OSError when sftp's own open of
    an existing file would fail.
    """
    final = path        # final_path(path), in one syscall if no link
    old: os.stat_result | None = None
    try:
        if not fresh:
            old = seen = os.lstat(path)
            if stat_mod.S_ISLNK(seen.st_mode):
                final = os.path.realpath(path)
                old = os.stat(final)
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
        temp = os.path.join(head, temp_name(name))
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL,
                         mode | stat_mod.S_IWUSR)
        except FileExistsError:
            continue
        except OSError:
            return None
        if old is not None:
            _adopt(fd, old)
        return LocalDest(fd, final, temp)
    return None


def reopen_temp(path: str, temp: str) -> LocalDest | None:
    """Open a journal's temporary again (no truncation); None if gone.
    (To read too where its mode allows: a copy made again compares.)"""
    for access in (os.O_RDWR, os.O_WRONLY):
        try:
            fd = os.open(temp, access | os.O_NOFOLLOW)
            break
        except PermissionError:
            continue
        except OSError:
            return None
    else:
        return None
    if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return LocalDest(fd, final_path(path), temp)


def open_local_dest(path: str, mode: int, resume: bool,
                    fresh: bool = False) -> LocalDest:
    """Open where a download goes (sftp's open, or a temporary); for
    *fresh* see :func:`local_temp`."""
    if not resume:
        dest = local_temp(path, mode, fresh)
        if dest is not None:
            return dest
    flags = os.O_WRONLY | os.O_CREAT | (0 if resume else os.O_TRUNC)
    return LocalDest(os.open(path, flags, mode | stat_mod.S_IWUSR), path)


def sync_dir(path: str) -> None:
    """fsync the directory holding *path* (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def free_space(path: str) -> int | None:
    """Bytes an unprivileged user may still write where *path* lives."""
    try:
        st = os.statvfs(os.path.dirname(path) or ".")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


@cache
def _fallocate() -> ctypes._CFuncPtr | None:    # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.fallocate64
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                     ctypes.c_int64]
    func.restype = ctypes.c_int
    return func


def preallocate(fd: int, offset: int, length: int) -> bool:
    """Reserve blocks for [offset, offset+length) without growing the file.

    Uses Linux ``fallocate(FALLOC_FL_KEEP_SIZE)``: nothing is written,
    and where the file system cannot do it nothing happens (unlike
    ``posix_fallocate``, which would write zeros).
    """
    func = _fallocate()
    if func is None or length <= 0:
        return False
    return bool(func(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0)
