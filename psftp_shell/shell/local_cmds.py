"""Handlers of the local-side commands: lcd, lls, lmkdir, lpwd, lumask,
progress, ``!`` and quit.

The local working directory is ``Shell.local_cwd``; nothing here calls
:func:`os.chdir`.  Shell commands run with that directory as their cwd.
Once ``lcd`` or ``lpwd`` has looked at it, the directory is also held
open (``Shell.local_fd``), so that these commands behave as sftp's do
with a real working directory that is later removed or renamed:
``lpwd`` fails (or shows the new name), ``lcd ..`` still works, and
``!``/``lls`` still start in it.
"""

from __future__ import annotations

import asyncio
import os
import pwd

from psftp_shell.core.errors import CommandError, FatalError
from psftp_shell.shell.context import Invocation, Shell

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY
_PROC_FD = "/proc/self/fd"


def local_path(sh: Shell, path: str) -> str:
    """Resolve a local path as typed against the shell's local cwd."""
    return os.path.join(sh.local_cwd, path)


def cwd_fd(sh: Shell) -> int:
    """The local cwd held open (opened now if it was not yet)."""
    if sh.local_fd is None:
        sh.local_fd = os.open(sh.local_cwd, _DIR_FLAGS)
    return sh.local_fd


def fd_path(fd: int) -> str | None:
    """Where the directory *fd* is now, as ``getcwd`` would say."""
    try:
        return os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:
        return None


def follow_cwd(sh: Shell) -> None:
    """Update ``local_cwd`` if the held directory was renamed.

    sftp's relative local paths follow its real working directory
    wherever it moves; a removed directory keeps its old name (and
    everything under it fails, as it does for sftp).
    """
    if sh.local_fd is None:
        return
    try:
        if os.fstat(sh.local_fd).st_nlink == 0:
            return
    except OSError:
        return
    path = fd_path(sh.local_fd)
    if path is not None and path.startswith("/"):
        sh.local_cwd = path


def shell_cwd(sh: Shell) -> str:
    """A cwd for child processes that reaches the local cwd itself."""
    try:
        fd = cwd_fd(sh)
    except OSError:
        return sh.local_cwd
    if os.path.isdir(_PROC_FD):
        return f"{_PROC_FD}/{fd}"   # chdir follows it even if removed
    return sh.local_cwd


async def quit(sh: Shell, inv: Invocation) -> None:
    """``bye``/``exit``/``quit``: the command loop ends after this."""


async def progress(sh: Shell, inv: Invocation) -> None:
    """``progress``: toggle the progress display."""
    sh.settings.progress = not sh.settings.progress
    state = "enabled" if sh.settings.progress else "disabled"
    sh.out.write(f"Progress meter {state}\n")


async def lpwd(sh: Shell, inv: Invocation) -> None:
    """``lpwd``: print the local working directory (``getcwd``)."""
    try:
        fd = cwd_fd(sh)
        if os.fstat(fd).st_nlink == 0:      # removed: getcwd fails
            raise FileNotFoundError(2, os.strerror(2))
    except OSError as exc:
        raise CommandError(
            f"Couldn't get local cwd: {exc.strerror}") from None
    sh.out.line(f"Local working directory: {fd_path(fd) or sh.local_cwd}")


def tilde_expand(path: str) -> str:
    """Expand a leading ``~`` or ``~user`` from the password database.

    As OpenSSH's ``tilde_expand_filename``: ``$HOME`` plays no part, and
    an unknown user is fatal (``tilde_expand: No such user x``).
    """
    if not path.startswith("~"):
        return path
    user, _, rest = path[1:].partition("/")
    rest = rest.lstrip("/")
    try:
        if user:
            home = pwd.getpwnam(user).pw_dir
        else:
            home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        if user:
            raise FatalError(f"tilde_expand: No such user {user}") from None
        raise FatalError(
            f"tilde_expand: No such uid {os.getuid()}") from None
    if not home.endswith("/"):
        home += "/"
    return home + rest


async def lcd(sh: Shell, inv: Invocation) -> None:
    """``lcd [path]``: tilde-expanded; no path means the home directory."""
    path = tilde_expand(inv.arg(0) or "~")
    try:
        # relative to the directory itself, as chdir() is, even if the
        # directory was removed or renamed since
        base = None if path.startswith("/") else cwd_fd(sh)
        fd = os.open(path, _DIR_FLAGS, dir_fd=base)
    except OSError as exc:
        raise CommandError(f'Couldn\'t change local directory to "{path}": '
                           f"{exc.strerror}") from None
    if not os.access(".", os.X_OK, dir_fd=fd):
        os.close(fd)
        raise CommandError(f'Couldn\'t change local directory to "{path}": '
                           f"{os.strerror(13)}")
    new = fd_path(fd) or os.path.realpath(local_path(sh, path))
    if sh.local_fd is not None:
        os.close(sh.local_fd)
    sh.local_fd, sh.local_cwd = fd, new


async def lmkdir(sh: Shell, inv: Invocation) -> None:
    """``lmkdir path``: mode 0777, the umask applies."""
    path = inv.args[0]
    try:
        base = None if path.startswith("/") else cwd_fd(sh)
        os.mkdir(path, 0o777, dir_fd=base)
    except OSError as exc:
        raise CommandError(f'Couldn\'t create local directory "{path}": '
                           f"{exc.strerror}") from None


async def lumask(sh: Shell, inv: Invocation) -> None:
    """``lumask umask``: set the local umask and print it."""
    assert inv.number is not None
    os.umask(inv.number & 0o7777)
    sh.out.write(f"Local umask: {inv.number:03o}\n")


async def run_shell(sh: Shell, command: str | None) -> None:
    """Run ``$SHELL -c command`` (or an interactive shell) and report."""
    shell = os.environ.get("SHELL") or "/bin/sh"
    argv = [shell, "-c", command] if command else [shell]
    sh.out.stdout.flush()
    try:
        proc = await asyncio.create_subprocess_exec(*argv,
                                                    cwd=shell_cwd(sh))
    except OSError as exc:
        sh.out.notice(f'Couldn\'t execute "{shell}": {exc.strerror}')
        sh.out.error("Shell exited with status 1")
        return
    status = await proc.wait()
    if status < 0:
        sh.out.error("Shell exited abnormally")
    elif status:
        sh.out.error(f"Shell exited with status {status}")


async def shell_escape(sh: Shell, inv: Invocation) -> None:
    """``!command`` runs a command; ``!`` alone an interactive shell."""
    await run_shell(sh, inv.rest or None)


async def lls(sh: Shell, inv: Invocation) -> None:
    """``lls [args]``: ``ls`` run by the shell with the raw arguments."""
    await run_shell(sh, "ls " + inv.rest if inv.rest else "ls")
