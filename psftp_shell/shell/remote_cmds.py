"""Handlers of the commands that act on the server (all but transfers).

Each follows the matching case of sftp.c's ``parse_dispatch_command`` and
the ``do_*`` function of sftp-client.c it calls, message for message.
"""

from __future__ import annotations

import contextlib

from psftp_shell.core.errors import CommandError
from psftp_shell.core.escape import handle_error
from psftp_shell.core.paths import make_absolute, make_absolute_glob
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_CREAT,
    OPEN_READ,
    OPEN_TRUNC,
    OPEN_WRITE,
    StatusError,
)
from psftp_shell.shell.context import Invocation, Shell
from psftp_shell.shell.listing import df_lines
from psftp_shell.shell.ls_cmd import ls

__all__ = ["cd", "chmod", "chown", "copy", "df", "link",
           "ls", "mkdir", "pwd", "rename", "rm", "rmdir", "symlink",
           "version"]

async def pwd(sh: Shell, inv: Invocation) -> None:
    """``pwd``: print the remote working directory."""
    sh.out.line(f"Remote working directory: {sh.remote.cwd}")


async def version(sh: Shell, inv: Invocation) -> None:
    """``version``: print the negotiated protocol version."""
    sh.out.write(f"SFTP protocol version {sh.remote.client.version}\n")


async def cd(sh: Shell, inv: Invocation) -> None:
    """``cd [path]``: REALPATH then STAT; no path means the start dir."""
    remote = sh.remote
    path = inv.arg(0) or remote.startdir
    target = await remote.realpath(remote.absolute(path))
    attrs = await remote.stat(target)
    if attrs.permissions is None:
        raise CommandError("Can't change directory: Can't check target")
    if not attrs.is_dir():
        raise CommandError(
            f'Can\'t change directory: "{target}" is not a directory')
    remote.cwd = target


async def mkdir(sh: Shell, inv: Invocation) -> None:
    """``mkdir path``: MKDIR with mode 0777 (the server's umask applies)."""
    path = sh.remote.absolute(inv.args[0])
    try:
        await sh.remote.client.mkdir(path, Attrs(permissions=0o777))
    except StatusError as exc:
        raise CommandError(f'remote mkdir "{path}": {exc.text}') from None


async def rmdir(sh: Shell, inv: Invocation) -> None:
    """``rmdir path``."""
    path = sh.remote.absolute(inv.args[0])
    try:
        await sh.remote.client.rmdir(path)
    except StatusError as exc:
        raise CommandError(f'remote rmdir "{path}": {exc.text}') from None


async def _glob_nocheck(sh: Shell, pattern: str) -> list[str]:
    absolute = make_absolute_glob(pattern, sh.remote.cwd)
    return [path for path, _ in await sh.remote.glob(absolute,
                                                     nocheck=True)]


async def rm(sh: Shell, inv: Invocation) -> None:
    """``rm path``: remove every match of a (NOCHECK) glob."""
    failed = False
    for path in await _glob_nocheck(sh, inv.args[0]):
        if sh.interrupted:
            break
        sh.out.info(f"Removing {path}")
        try:
            await sh.remote.client.remove(path)
            failed = False
        except StatusError as exc:
            sh.out.error(f"remote delete {path}: {exc.text}")
            failed = True
            if inv.err_abort:
                break
    if failed:
        raise CommandError("")


async def chmod(sh: Shell, inv: Invocation) -> None:
    """``chmod [-h] mode path``: SETSTAT (or lsetstat) on every match."""
    assert inv.number is not None
    attrs = Attrs(permissions=inv.number)
    failed = False
    for path in await _glob_nocheck(sh, inv.args[0]):
        if sh.interrupted:
            break
        sh.out.info(f"Changing mode on {path}")
        failed = not await _setstat(sh, path, attrs, "h" in inv.flags)
        if failed and inv.err_abort:
            break
    if failed:
        raise CommandError("")


async def chown(sh: Shell, inv: Invocation) -> None:
    """``chown``/``chgrp [-h] id path``: change one id, keep the other."""
    assert inv.number is not None
    nofollow = "h" in inv.flags
    failed = False
    for path in await _glob_nocheck(sh, inv.args[0]):
        if sh.interrupted:
            break
        try:
            attrs = await sh.remote.stat(path, follow=not nofollow)
        except CommandError:
            if inv.err_abort:
                raise
            continue
        if attrs.uid is None or attrs.gid is None:
            sh.out.error("Can't get current ownership of remote file "
                         f'"{path}"')
            if inv.err_abort:
                raise CommandError("")
            continue
        new = Attrs(uid=attrs.uid, gid=attrs.gid)
        if inv.name == "chown":
            sh.out.info(f"Changing owner on {path}")
            new.uid = inv.number
        else:
            sh.out.info(f"Changing group on {path}")
            new.gid = inv.number
        failed = not await _setstat(sh, path, new, nofollow)
        if failed and inv.err_abort:
            break
    if failed:
        raise CommandError("")


async def _setstat(sh: Shell, path: str, attrs: Attrs, nofollow: bool
                   ) -> bool:
    """SETSTAT or lsetstat@openssh.com; print sftp's error; True if ok."""
    client = sh.remote.client
    if nofollow and not client.has_extension("lsetstat@openssh.com"):
        sh.out.error("Server does not support lsetstat@openssh.com "
                     "extension")
        return False
    try:
        if nofollow:
            await client.lsetstat(path, attrs)
        else:
            await client.setstat(path, attrs)
    except StatusError as exc:
        kind = "lsetstat" if nofollow else "setstat"
        sh.out.error(f'remote {kind} "{path}": {exc.text}')
        return False
    return True


async def rename(sh: Shell, inv: Invocation) -> None:
    """``rename [-l] old new``: posix-rename when offered, unless -l."""
    old, new = (sh.remote.absolute(p) for p in inv.args)
    client = sh.remote.client
    try:
        if client.has_extension("posix-rename@openssh.com") \
                and "l" not in inv.flags:
            await client.posix_rename(old, new)
        else:
            await client.rename(old, new)
    except StatusError as exc:
        raise CommandError(
            f'remote rename "{old}" to "{new}": {exc.text}') from None


async def link(sh: Shell, inv: Invocation) -> None:
    """``ln [-s] old new``: a hard link, or a symlink with -s."""
    if "s" in inv.flags:
        await symlink(sh, inv)
        return
    old, new = (sh.remote.absolute(p) for p in inv.args)
    client = sh.remote.client
    if not client.has_extension("hardlink@openssh.com"):
        raise CommandError(
            "Server does not support hardlink@openssh.com extension")
    try:
        await client.hardlink(old, new)
    except StatusError as exc:
        raise CommandError(
            f'remote link "{old}" to "{new}": {exc.text}') from None


async def symlink(sh: Shell, inv: Invocation) -> None:
    """``symlink target link``: the target is sent as typed."""
    target = inv.args[0]
    new = sh.remote.absolute(inv.args[1])
    client = sh.remote.client
    if client.version < 3:
        raise CommandError(
            "This server does not support the symlink operation")
    try:
        await client.symlink(target, new)
    except StatusError as exc:
        raise CommandError(
            f'remote symlink file "{target}" to "{new}": {exc.text}'
        ) from None


async def copy(sh: Shell, inv: Invocation) -> None:
    """``copy old new``: a server-side copy with copy-data.

    The target is opened without truncation and cut to the source's
    size after the copy: sftp truncates it first, so ``cp f f``, or a
    target that is a link to the source, left an empty file (the server
    refuses, or copies the file onto itself, only afterwards; OpenSSH
    10.4's server refuses one inode).  Copied onto itself, the file
    keeps its bytes.
    """
    old, new = (sh.remote.absolute(p) for p in inv.args)
    client = sh.remote.client
    if not client.has_extension("copy-data"):
        raise CommandError("Server does not support copy-data extension")
    attrs = await sh.remote.stat(old)
    mode = 0o666
    if attrs.permissions is not None:
        mode = attrs.permissions & 0o777
        if not attrs.is_reg():
            raise CommandError(f"Cannot copy non-regular file: {old}")
    try:
        src = await client.open(old, OPEN_READ)
    except StatusError as exc:
        raise CommandError(
            handle_error(f'remote open("{old}")', exc.text)) from None
    try:
        try:
            dst = await client.open(new, OPEN_WRITE | OPEN_CREAT,
                                    Attrs(permissions=mode))
        except StatusError as exc:
            raise CommandError(
                handle_error(f'remote open("{new}")', exc.text)) from None
        try:
            await client.copy_data(src, 0, 0, dst, 0)
            await _fit(sh, (src, dst), new, attrs.size)
        except StatusError as exc:
            raise CommandError(f'Couldn\'t copy file "{old}" to "{new}": '
                               f"{exc.text}") from None
        finally:
            await _close_quietly(sh, dst)
    finally:
        await _close_quietly(sh, src)


async def _fit(sh: Shell, handles: tuple[bytes, bytes], new: str,
               size: int | None) -> None:
    """Cut the copy at *new* to its source's size: the FSTAT's, else
    the STAT's *size*; by FSETSTAT, else SETSTAT.  A server that allows
    neither gets sftp's own way, a truncating OPEN and a second copy,
    unless the target has that size already (it is then no longer than
    the source, so cannot be the source cut short)."""
    client = sh.remote.client
    src, dst = handles
    with contextlib.suppress(StatusError):
        size = (await client.fstat(src)).size
    if size is not None:
        if await client.set_either(dst, new, Attrs(size=size)):
            return
        with contextlib.suppress(StatusError):
            if (await client.stat(new)).size == size:
                return
    again = await client.open(new, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC)
    try:
        await client.copy_data(src, 0, 0, again, 0)
    finally:
        await _close_quietly(sh, again)


async def _close_quietly(sh: Shell, handle: bytes) -> None:
    try:
        await sh.remote.client.close_handle(handle)
    except StatusError as exc:
        sh.out.error(f"close remote: {exc.text}")


async def df(sh: Shell, inv: Invocation) -> None:
    """``df [-hi] [path]``: statvfs@openssh.com; server errors are silent."""
    path = make_absolute(inv.arg(0) or sh.remote.cwd, sh.remote.cwd)
    client = sh.remote.client
    if not client.has_extension("statvfs@openssh.com"):
        raise CommandError(
            "Server does not support statvfs@openssh.com extension")
    try:
        st = await client.statvfs(path)
    except StatusError:
        sh.out.debug(f"remote statvfs failed for {path}")
        raise CommandError("") from None
    for text in df_lines(st, human="h" in inv.flags,
                         inodes="i" in inv.flags):
        sh.out.write(text + "\n")
