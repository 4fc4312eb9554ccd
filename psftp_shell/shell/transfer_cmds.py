"""Handlers of the transfer commands: get, mget, reget, put, mput, reput.

Each follows sftp.c's ``process_get``/``process_put``: the glob of the
source, the destination rules, the ``Fetching``/``Uploading`` lines,
then every match handed, in order, to one command of the session's
:class:`~psftp_shell.engine.transfer_engine.TransferEngine` (which may copy
several at once with ``-n``; the output keeps sftp's order).  Local paths are
printed as typed and resolved against ``Shell.local_cwd``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from psftp_shell.core.errors import CommandError
from psftp_shell.core.paths import (
    get_destination,
    is_marked_dir,
    local_against,
    make_absolute,
    make_absolute_glob,
    put_destination,
)
from psftp_shell.engine.putjob import MaybeDir
from psftp_shell.engine.transfer_batch import Batch
from psftp_shell.engine.transfer_engine import TransferEngine
from psftp_shell.filecopy.copy_context import Flags
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.request_core import retrieved
from psftp_shell.shell import globbing
from psftp_shell.shell.context import Invocation, Shell

__all__ = ["get", "put", "reget", "reput"]


@dataclass(frozen=True, slots=True)
class _Options:
    """The switches of one transfer: its flags or sftp's global ones."""

    preserve: bool
    recursive: bool
    resume: bool
    fsync: bool

    @property
    def flags(self) -> Flags:
        """The switches the engine needs."""
        return Flags(self.preserve, self.resume, self.fsync)


def _options(sh: Shell, inv: Invocation, resume: bool) -> _Options:
    flags, glob = inv.flags, sh.settings
    return _Options(
        preserve="p" in flags or "P" in flags or glob.preserve,
        recursive="r" in flags or "R" in flags or glob.recursive,
        resume=resume or "a" in flags or glob.resume,
        fsync="f" in flags or glob.fsync)


def _engine(sh: Shell) -> TransferEngine:
    """The session's engine, told the local cwd and the interrupt flag."""
    engine = sh.engine
    engine.local_cwd = sh.local_cwd
    engine.is_interrupted = lambda: sh.interrupted
    return engine


class LocalGlobFS(globbing.LocalGlobFS):
    """The local file system seen from the shell's local cwd.

    Relative paths are resolved against *cwd* but come back as typed.
    """

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd

    def _abs(self, path: str) -> str:
        return os.path.join(self.cwd, path)

    async def scandir(self, path: str) -> list[tuple[str, Any]]:
        """List *path* like readdir(3)."""
        return await super().scandir(self._abs(path))

    async def lstat(self, path: str) -> Any | None:
        """``os.lstat``, or None on failure."""
        return await super().lstat(self._abs(path))

    async def stat(self, path: str) -> Any | None:
        """``os.stat``, or None on failure."""
        return await super().stat(self._abs(path))


async def get(sh: Shell, inv: Invocation) -> None:
    """``get [-afpPrR] remote [local]`` (also ``mget``)."""
    await _get(sh, inv, resume=False)


async def reget(sh: Shell, inv: Invocation) -> None:
    """``reget``: ``get -a``."""
    await _get(sh, inv, resume=True)


async def put(sh: Shell, inv: Invocation) -> None:
    """``put [-afpPrR] local [remote]`` (also ``mput``)."""
    await _put(sh, inv, resume=False)


async def reput(sh: Shell, inv: Invocation) -> None:
    """``reput``: ``put -a``."""
    await _put(sh, inv, resume=True)


def _local_is_dir(sh: Shell, path: str) -> bool:
    """sftp's ``local_is_dir``: stat (following links) says directory."""
    return os.path.isdir(local_against(sh.local_cwd, path))


def _known_file(found: object, batch: Batch) -> Attrs | None:
    """The glob's attributes of a regular file, to spare the STAT a
    parallel copy would send again (one round trip per file); at -n 1
    sftp's own sequence is kept (it STATs what it fetches)."""
    if batch.board.parallel and isinstance(found, Attrs) and \
            found.is_reg() and found.size is not None:
        return found
    return None


async def _get(sh: Shell, inv: Invocation, *, resume: bool) -> None:
    """sftp's ``process_get``."""
    opts = _options(sh, inv, resume)
    engine = _engine(sh)
    dst = inv.arg(1)
    pattern = make_absolute_glob(inv.args[0], sh.remote.cwd)
    matches = await sh.remote.glob(pattern, mark=True)
    if not matches:
        raise CommandError(f'File "{pattern}" not found.')
    count = globbing.match_count(matches)
    dst_is_dir = dst is not None and _local_is_dir(sh, dst)
    if count > 1 and dst is not None and not dst_is_dir:
        raise CommandError("Multiple source paths, but destination "
                           f'"{dst}" is not a directory')
    verb = "Resuming" if opts.resume else "Fetching"
    async with engine.command() as batch:
        for path, found in matches:
            if sh.interrupted:
                break
            target = get_destination(path, dst, match_count=count,
                                     dst_is_dir=dst_is_dir)
            batch.out.info(f"{verb} {path} to {target}")
            if is_marked_dir(path) and opts.recursive:
                await batch.download_dir(path, target, None, opts.flags)
            else:
                await batch.download(path, target,
                                     _known_file(found, batch),
                                     opts.flags)
        ok = await batch.finish()
    if not ok:
        raise CommandError("")


async def _put(sh: Shell, inv: Invocation, *, resume: bool) -> None:
    """sftp's ``process_put``."""
    opts = _options(sh, inv, resume)
    engine = _engine(sh)
    src, dst = inv.args[0], inv.arg(1)
    matches = await globbing.glob(src, LocalGlobFS(sh.local_cwd), mark=True,
                                  nocheck=True, mark_nocheck=False)
    if not matches:
        raise CommandError(f'File "{src}" not found.')
    count = globbing.match_count(matches)
    dst_is_dir = True
    looking = None
    if dst is not None:
        remote_dst = make_absolute(dst, sh.remote.cwd)
        if count == 1 and not opts.resume and \
                not is_marked_dir(matches[0][0]):
            # one file: its copy need not wait for the answer (MaybeDir)
            looking = asyncio.ensure_future(sh.remote.is_dir(remote_dst))
            looking.add_done_callback(retrieved)
        else:
            dst_is_dir = await sh.remote.is_dir(remote_dst)
        if count > 1 and not dst_is_dir:
            raise CommandError("Multiple paths match, but destination "
                               f'"{remote_dst}" is not a directory')
    async with engine.command() as batch:
        if looking is not None and not batch.board.parallel:
            dst_is_dir, looking = await looking, None   # as sftp
        failed = False
        for path, _ in matches:
            if sh.interrupted:
                break
            try:
                os.stat(local_against(sh.local_cwd, path))
            except OSError as exc:
                batch.out.error(f"stat {path}: {exc.strerror}")
                failed = True
                continue
            if looking is not None:
                await batch.upload(path, remote_dst, opts.flags, maybe_dir=(
                    MaybeDir(looking, put_destination(
                        path, dst, sh.remote.cwd, match_count=count,
                        dst_is_dir=True))))
                continue
            target = put_destination(path, dst, sh.remote.cwd,
                                     match_count=count,
                                     dst_is_dir=dst_is_dir)
            if opts.resume:
                batch.out.info(f"Resuming upload of {path} to {target}")
            else:
                batch.out.info(f"Uploading {path} to {target}")
            if is_marked_dir(path) and opts.recursive:
                await batch.upload_dir(path, target, opts.flags)
            else:
                await batch.upload(path, target, opts.flags)
        ok = await batch.finish() and not failed
    if not ok:
        raise CommandError("")
