"""Handlers of the local-side commands: lcd, lls, lmkdir, lpwd, lumask,
progress, ``!`` and quit.

The local working directory is ``Shell.local_cwd``; nothing here calls
:func:`os.chdir`.  Shell commands run with that directory as their cwd.
"""

from __future__ import annotations

import asyncio
import os

from psftp_shell.context import Invocation, Shell
from psftp_shell.errors import CommandError


def local_path(sh: Shell, path: str) -> str:
    """Resolve a local path as typed against the shell's local cwd."""
    return os.path.join(sh.local_cwd, path)


async def quit(sh: Shell, inv: Invocation) -> None:
    """``bye``/``exit``/``quit``: the command loop ends after this."""


async def progress(sh: Shell, inv: Invocation) -> None:
    """``progress``: toggle the progress display."""
    sh.settings.progress = not sh.settings.progress
    state = "enabled" if sh.settings.progress else "disabled"
    sh.out.write(f"Progress meter {state}\n")


async def lpwd(sh: Shell, inv: Invocation) -> None:
    """``lpwd``: print the local working directory."""
    sh.out.line(f"Local working directory: {sh.local_cwd}")


async def lcd(sh: Shell, inv: Invocation) -> None:
    """``lcd [path]``: tilde-expanded; no path means the home directory."""
    path = os.path.expanduser(inv.arg(0) or "~")
    target = local_path(sh, path)
    try:
        if not os.path.isdir(target):
            os.stat(target)     # raises the error chdir would give
            raise NotADirectoryError(20, os.strerror(20))
        if not os.access(target, os.X_OK):
            raise PermissionError(13, os.strerror(13))
    except OSError as exc:
        raise CommandError(f'Couldn\'t change local directory to "{path}": '
                           f"{exc.strerror}") from None
    sh.local_cwd = os.path.realpath(target)


async def lmkdir(sh: Shell, inv: Invocation) -> None:
    """``lmkdir path``: mode 0777, the umask applies."""
    path = inv.args[0]
    try:
        os.mkdir(local_path(sh, path), 0o777)
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
        proc = await asyncio.create_subprocess_exec(*argv, cwd=sh.local_cwd)
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
