"""Recursive transfers: sftp's ``download_dir`` and ``upload_dir`` walks.

The walk runs on the control client, in sftp's order, printing
``Retrieving``/``Entering`` as it enters each directory and creating the
directories before their files are handed over.  Files go to a
:class:`Submitter`, which copies each at once (``-n 1``) or queues it
for the streams; what sftp does to a directory once its entries are done
(times, the mode it restores) is handed over too, to run once the
directory's files have arrived.
"""

from __future__ import annotations

import dataclasses
import os
import stat as stat_mod
from collections.abc import Awaitable, Callable
from typing import Protocol

from psftp_shell.core.errors import CommandError
from psftp_shell.core.ordered_output import Printer
from psftp_shell.core.paths import path_append
from psftp_shell.filecopy.copy_context import MAX_DIR_DEPTH, CopyContext, Flags
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import Name, SFTPClient, StatusError
from psftp_shell.sftp.directory import read_directory

_USER_WX = stat_mod.S_IWUSR | stat_mod.S_IXUSR

Finisher = Callable[[Printer], Awaitable[None]]


class Submitter(Protocol):
    """Where a walk sends its files and its directory epilogues."""

    ctx: CopyContext
    client: SFTPClient

    @property
    def out(self) -> Printer:
        """Where the walk prints, in sftp's order."""
        ...

    async def download(self, src: str, dst: str, attrs: Attrs | None,
                       flags: Flags, failure: str | None = None) -> None:
        """Copy one remote file (now, or queued)."""

    async def upload(self, src: str, dst: str, flags: Flags,
                     failure: str | None = None, *,
                     size: int | None = None) -> None:
        """Copy one local file (now, or queued); *size* as lstat saw it."""

    async def defer(self, finish: Finisher) -> None:
        """Run *finish* once the files handed over so far are done."""


async def realpath(sub: Submitter, path: str) -> str | None:
    """REALPATH, printing ``realpath %s: %s`` on failure."""
    try:
        return await sub.client.realpath(path)
    except StatusError as exc:
        sub.out.error(f"realpath {path}: {exc.said}")
        return None


async def readdir(sub: Submitter, path: str) -> list[Name] | None:
    """sftp's ``do_readdir``: all entries, or None after an error."""
    try:
        return await read_directory(sub.client, sub.out, path,
                                    interrupted=sub.ctx.is_interrupted)
    except CommandError:
        return None


# ---------------------------------------------------------------- get

async def download_dir(sub: Submitter, remote_path: str, local_path: str,
                       attrs: Attrs | None, flags: Flags) -> bool:
    """Copy a remote tree (sftp's ``download_dir``).

    Prints ``Retrieving <dir>`` for every directory, even when quiet;
    files go in server order; links and special files are skipped.
    """
    canon = await realpath(sub, remote_path)
    if canon is None:
        sub.out.error(f'download "{remote_path}": path canonicalization '
                      "failed")
        return False
    return await _download_tree(sub, canon, local_path, 0, attrs, flags)


async def _download_tree(sub: Submitter, src: str, dst: str, depth: int,
                         dirattrs: Attrs | None, flags: Flags) -> bool:
    if depth >= MAX_DIR_DEPTH:
        sub.out.error(f"Maximum directory depth exceeded: {depth} levels")
        return False
    if dirattrs is None:
        try:
            dirattrs = await sub.client.stat(src)
        except StatusError:
            sub.out.error(f'stat remote "{src}" directory failed')
            return False
    if not dirattrs.is_dir():
        sub.out.error(f'"{src}" is not a directory')
        return False
    sub.out.line(f"Retrieving {src}")
    mode = tmpmode = 0o777
    if dirattrs.permissions is not None:
        mode = dirattrs.permissions & 0o1777
        tmpmode = mode | _USER_WX
    local = sub.ctx.local(dst)
    created = True
    try:
        os.mkdir(local, tmpmode)
    except FileExistsError:
        created = False
    except OSError as exc:
        sub.out.error(f"mkdir {dst}: {exc.strerror}")
        return False
    entries = await readdir(sub, src)
    if entries is None:
        sub.out.error(f'remote readdir "{src}" failed')
        return False
    ok = await _download_entries(sub, src, dst, depth, entries,
                                 dataclasses.replace(flags, fresh=created))
    await sub.defer(_dir_epilogue(local, dst, dirattrs, mode, tmpmode,
                                  flags.preserve))
    return ok


def _dir_epilogue(local: str, dst: str, attrs: Attrs, mode: int,
                  tmpmode: int, preserve: bool) -> Finisher:
    """What sftp does to a downloaded directory after its entries."""
    async def finish(out: Printer) -> None:
        if preserve and attrs.mtime is not None \
                and attrs.atime is not None:
            try:
                os.utime(local, (attrs.atime, attrs.mtime))
            except OSError as exc:
                out.error(f'local set times on "{dst}": {exc.strerror}')
        if mode != tmpmode:
            try:
                os.chmod(local, mode)
            except OSError as exc:
                out.error(f'local chmod directory "{dst}": '
                          f"{exc.strerror}")
    return finish


async def _download_entries(sub: Submitter, src: str, dst: str, depth: int,
                            entries: list[Name], flags: Flags) -> bool:
    ok = True
    # what the walk made here: a file of the same name (a broken server's
    # listing, or one differing in case only on a file system that does
    # not tell case apart) meets it as sftp's open does, not at the rename
    made: set[str] = {".", ".."}
    for entry in entries:
        if sub.ctx.is_interrupted():
            break
        name, attrs = entry.filename, entry.attrs
        new_src, new_dst = path_append(src, name), path_append(dst, name)
        if attrs.is_dir():
            if name in (".", ".."):
                continue
            made.add(name.casefold())
            if not await _download_tree(sub, new_src, new_dst, depth + 1,
                                        attrs, flags):
                ok = False
        elif attrs.is_reg():
            await sub.download(new_src, new_dst, attrs,
                               flags if name.casefold() not in made else
                               dataclasses.replace(flags, fresh=False),
                               f"Download of file {new_src} to {new_dst} "
                               "failed")
        else:
            sub.out.logit(f'download "{new_src}": not a regular file')
    return ok


# ---------------------------------------------------------------- put

async def upload_dir(sub: Submitter, local_path: str, remote_path: str,
                     flags: Flags) -> bool:
    """Copy a local tree (sftp's ``upload_dir``).

    Prints ``Entering <dir>`` for every directory, even when quiet;
    entries go in readdir order; links and special files are skipped.
    """
    canon = await realpath(sub, remote_path)
    if canon is None:
        sub.out.error(f'upload "{remote_path}": path canonicalization '
                      "failed")
        return False
    return await _upload_tree(sub, local_path, canon, 0,
                              dataclasses.replace(flags, tree=True))


async def _upload_tree(sub: Submitter, src: str, dst: str, depth: int,
                       flags: Flags) -> bool:
    if depth >= MAX_DIR_DEPTH:
        sub.out.error(f"Maximum directory depth exceeded: {depth} levels")
        return False
    try:
        st = os.stat(sub.ctx.local(src))
    except OSError as exc:
        sub.out.error(f'stat local "{src}": {exc.strerror}')
        return False
    if not stat_mod.S_ISDIR(st.st_mode):
        sub.out.error(f'"{src}" is not a directory')
        return False
    sub.out.line(f"Entering {src}")
    attrs = Attrs(permissions=stat_mod.S_IMODE(st.st_mode) & 0o1777)
    if flags.preserve:
        attrs.atime, attrs.mtime = int(st.st_atime), int(st.st_mtime)
    created = await _remote_mkdir(sub, dst, attrs)
    if created is None:
        return False
    try:
        names = os.listdir(sub.ctx.local(src))
    except OSError as exc:
        sub.out.error(f'local opendir "{src}": {exc.strerror}')
        return False
    ok = await _upload_entries(sub, src, dst, depth, names,
                               dataclasses.replace(flags, fresh=created))
    if created or flags.preserve:   # OpenSSH 10.3: keep an existing mode
        await sub.defer(_setstat_epilogue(sub.client, dst, attrs))
    return ok


def _setstat_epilogue(client: SFTPClient, dst: str, attrs: Attrs
                      ) -> Finisher:
    """sftp's SETSTAT of an uploaded directory after its entries."""
    async def finish(out: Printer) -> None:
        try:
            await client.setstat(dst, attrs)
        except StatusError as exc:
            out.error(f'remote setstat "{dst}": {exc.text}')
    return finish


async def _remote_mkdir(sub: Submitter, dst: str, attrs: Attrs
                        ) -> bool | None:
    """MKDIR writable by us: True when made, False when it was already a
    directory, None (message printed) when neither."""
    assert attrs.permissions is not None
    try:
        await sub.client.mkdir(dst, Attrs(
            permissions=attrs.permissions | _USER_WX,
            atime=attrs.atime, mtime=attrs.mtime))
        return True
    except StatusError:
        pass
    try:
        there = await sub.client.stat(dst)
    except StatusError as exc:
        sub.out.error(f"stat remote: {exc.text}")
        return None
    if not there.is_dir():
        sub.out.error(f'"{dst}" exists but is not a directory')
        return None
    return False


async def _upload_entries(sub: Submitter, src: str, dst: str, depth: int,
                          names: list[str], flags: Flags) -> bool:
    ok = True
    for name in names:
        if sub.ctx.is_interrupted():
            break
        new_src, new_dst = path_append(src, name), path_append(dst, name)
        try:
            st = os.lstat(sub.ctx.local(new_src))
        except OSError as exc:
            sub.out.logit(f'local lstat "{name}": {exc.strerror}')
            ok = False
            continue
        mode = st.st_mode
        if stat_mod.S_ISDIR(mode):
            if not await _upload_tree(sub, new_src, new_dst, depth + 1,
                                      flags):
                ok = False
        elif stat_mod.S_ISREG(mode):
            await sub.upload(new_src, new_dst, flags,
                             f'upload "{new_src}" to "{new_dst}" failed',
                             size=st.st_size)
        else:
            sub.out.logit(f"{name}: not a regular file")
    return ok
