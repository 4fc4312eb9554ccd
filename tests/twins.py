"""Run OpenSSH's sftp and psftp-shell side by side on the same input.

The differential tests build on this: the same command line and the same
stdin go to both programs, and their exit status, stdout and stderr are
compared after the few differences psftp-shell documents (its name, the
``[-n connections]`` group of the usage text) are made equal.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PSFTP = [sys.executable, "-m", "psftp_shell"]


@dataclass(frozen=True)
class Run:
    """What one program did."""

    status: int
    stdout: bytes
    stderr: bytes


def run(argv: list[str], *, stdin: bytes = b"", cwd: Path | None = None,
        env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """Run *argv* to completion with *stdin* and no terminal."""
    environ = dict(os.environ)
    environ.update(env or {})
    result = subprocess.run(argv, input=stdin, capture_output=True,
                            cwd=cwd, env=environ, timeout=timeout)
    return Run(result.returncode, result.stdout, result.stderr)


async def run_async(argv: list[str], *, stdin: bytes = b"",
                    cwd: Path | None = None, timeout: float = 60) -> Run:
    """:func:`run` for a test whose server shares its event loop."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    assert proc.returncode is not None
    return Run(proc.returncode, out, err)


def client_argv(client: str, sftp_bin: str) -> list[str]:
    """OpenSSH's sftp for *client* ``"sftp"``, else psftp-shell at ``-n``
    *client*."""
    return [sftp_bin] if client == "sftp" else [*PSFTP, "-n", client]


async def run_served(tmp_path: Path, factory: type[Any], client: str,
                     sftp_bin: str, script: bytes, *,
                     served: dict[str, bytes] | None = None,
                     local: dict[str, bytes] | None = None,
                     args: tuple[str, ...] = ()
                     ) -> tuple[Run, Path, Path]:
    """Serve *served* files with asyncssh's server and the SFTP server
    class *factory*, put *local* files in a fresh working directory, and
    run the batch *script* there with :func:`client_argv`'s program (and
    *args*); what it did, the working directory and the server's
    root."""
    from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=factory)
    await server.start()
    work = tmp_path / "work"
    work.mkdir()
    try:
        for where, files in ((server.root, served), (work, local)):
            for name, data in (files or {}).items():
                (where / name).parent.mkdir(parents=True, exist_ok=True)
                (where / name).write_bytes(data)
        result = await run_async(
            [*client_argv(client, sftp_bin), *args, "-F",
             str(server.ssh_config), "-b", "-", HOST_ALIAS],
            stdin=script, cwd=work)
        return result, work, server.root
    finally:
        await server.stop()


def psftp(args: list[str], **kwargs: object) -> Run:
    """Run psftp-shell (as ``python -m psftp_shell``)."""
    return run(PSFTP + args, **kwargs)  # type: ignore[arg-type]


def sftp(sftp_bin: str, args: list[str], **kwargs: object) -> Run:
    """Run OpenSSH's sftp."""
    return run([sftp_bin] + args, **kwargs)  # type: ignore[arg-type]


def same_usage(text: bytes) -> bytes:
    """Make psftp-shell's usage text comparable with sftp's.

    The only differences allowed: the program name, and the
    ``[-n connections]`` group with the line wrapping it causes.
    """
    text = text.replace(b"psftp-shell", b"sftp").replace(
        b"__main__.py", b"sftp")
    start = text.find(b"usage: sftp")
    if start < 0:
        return text
    head, usage = text[:start], text[start:]
    words = usage.replace(b"[-n connections]", b"").split()
    return head + b" ".join(words) + b"\n"


_PROXY_EOF = (b"kex_exchange_identification: Connection closed by remote "
              b"host\r\n")
_PROXY_EOF_INFO = b"Connection closed by UNKNOWN port 65535\r\n"
_PROXY_EPIPE = (b"banner exchange: Connection to UNKNOWN port 65535: "
                b"Broken pipe\r\n")


def proxy_race_settled(theirs: bytes, ours: bytes) -> bytes:
    """sftp's stderr *theirs* as it reads when its ssh wins a race.

    When a ProxyCommand or jump host's ``ssh -W`` exits at once, ssh
    either reads its end first (``kex_exchange_identification:
    Connection closed by remote host``, then at INFO ``Connection closed
    by UNKNOWN port 65535``), which psftp-shell reports, or writes its
    version line into the closed pipe first (``banner exchange: ...:
    Broken pipe``, only at INFO).  The second way is rewritten into the
    first; at LogLevel ERROR it printed nothing, so *ours* is taken when
    it differs only by the first way's line.
    """
    if _PROXY_EPIPE in theirs:
        return theirs.replace(_PROXY_EPIPE, _PROXY_EOF + _PROXY_EOF_INFO, 1)
    if _PROXY_EOF not in theirs and _PROXY_EOF_INFO not in ours and \
            ours.replace(_PROXY_EOF, b"", 1) == theirs:
        return ours
    return theirs


# ------------------------------------------------------------------------
# Twin trees: both programs run on identical fixture trees at the same
# paths, and what they leave behind is compared as well as what they
# print.  Everything below only adds to the helpers above.

FIXED_TIME = 1_000_000_000
"""Every fixture entry gets this mtime unless its builder chose one."""
FRESH_WINDOW = 3600
"""An mtime this close to the snapshot was set by the run ("fresh")."""
HASHED = 16 << 20
"""Files larger than this (sparse fixtures) are hashed at both ends."""

Tree = dict[str, tuple[object, ...]]
Builder = Callable[[Path], None]


def _digest(path: Path, size: int) -> str:
    """A content hash; only the first and last MiB of a huge file."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= HASHED:
            sha.update(handle.read())
        else:
            sha.update(handle.read(1 << 20))
            handle.seek(size - (1 << 20))
            sha.update(handle.read())
    return sha.hexdigest()[:16]


def snapshot_tree(root: Path) -> Tree:
    """Describe every entry under *root*: type, mode, owner, content, mtime.

    Fixed mtimes (set by a builder or preserved with ``-p``) are kept;
    those of the last hour were set by the run and read ``"fresh"``.
    """
    tree: Tree = {}
    now = time.time()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = os.fsencode(path.relative_to(root)).decode("latin-1")
        when: object = int(st.st_mtime)
        if abs(st.st_mtime - now) < FRESH_WINDOW:
            when = "fresh"
        owner = (st.st_uid, st.st_gid)
        if stat.S_ISLNK(st.st_mode):
            tree[rel] = ("link", os.readlink(path), owner)
        elif stat.S_ISREG(st.st_mode):
            tree[rel] = ("file", oct(st.st_mode), owner, st.st_size,
                         _digest(path, st.st_size), when)
        else:
            tree[rel] = ("other", oct(st.st_mode), owner, when)
    return tree


def stamp_tree(root: Path, since: float) -> None:
    """Give :data:`FIXED_TIME` to what was made or changed after *since*.

    Builders may set mtimes of their own (past or future); those are
    left alone.  Symbolic links get it too (their own times, not their
    targets'): made a second apart on a busy machine, twin trees would
    otherwise order ``ls -t`` differently.
    """
    now = time.time() + 2
    for path in sorted(root.rglob("*"), reverse=True) + [root]:
        if since - 2 <= path.lstat().st_mtime <= now:
            os.utime(path, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)


def clean_environ(scratch: Path) -> dict[str, str]:
    """An environment both programs see alike.

    ``SHELL`` is ``/bin/sh`` (``!`` and ``lls``); psftp-shell's settings
    (config file and ``PSFTP_SHELL_CONNECTIONS``) are neutralised so only
    the command line decides the number of connections.
    """
    config = scratch / "xdg-config"
    config.mkdir(parents=True, exist_ok=True)
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("PSFTP_SHELL", "LC_", "SSH_"))}
    environ.update(SHELL="/bin/sh", XDG_CONFIG_HOME=str(config),
                   LANG="C.UTF-8", TZ="UTC", COLUMNS="80")
    return environ


def run_env(argv: list[str], *, stdin: bytes, cwd: Path,
            environ: dict[str, str], timeout: float = 60) -> Run:
    """Run *argv* with exactly *environ* (nothing inherited)."""
    result = subprocess.run(argv, input=stdin, capture_output=True,
                            cwd=cwd, env=environ, timeout=timeout)
    return Run(result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class Outcome:
    """What one program printed, returned and left in the trees."""

    status: int
    stdout: bytes
    stderr: bytes
    trees: tuple[Tree, ...]


@dataclass(frozen=True)
class Arena:
    """Where twin runs happen: the trees, the cwd and how to connect.

    :param local: the local tree, which is also the process's cwd
    :param remote: the remote tree (the same directory with ``-D``)
    :param connect: the arguments that reach the server (``-D cmd`` or
        ``-F config``)
    :param host: the destination for an SSH server, None for ``-D``
    :param prelude: script lines that go first (``@cd`` to the tree)
    :param environ: the environment of both programs
    :param view: the remote tree's path as the client sees it, when the
        server is chrooted (default: *remote* itself)
    """

    local: Path
    remote: Path
    connect: tuple[str, ...]
    host: str | None
    prelude: bytes
    environ: dict[str, str]
    view: str = ""

    @property
    def remote_view(self) -> str:
        """The remote tree's path in the client's messages."""
        return self.view or str(self.remote)

    @property
    def script_path(self) -> Path:
        """Where a ``-b`` file is written: outside both trees."""
        return self.local.parent / (self.local.name + ".script")

    def roots(self) -> list[Path]:
        """The distinct tree roots, local first."""
        return [self.local] if self.local == self.remote \
            else [self.local, self.remote]

    def reset(self, build: Builder) -> None:
        """Make every tree afresh with *build*, stamped."""
        for root in self.roots():
            shutil.rmtree(root, ignore_errors=True)
            since = time.time()
            root.mkdir(parents=True)
            build(root)
            stamp_tree(root, since)

    def snapshot(self) -> tuple[Tree, ...]:
        """Snapshot every tree, local first."""
        return tuple(snapshot_tree(root) for root in self.roots())

    def substitute(self, word: str) -> str:
        """Expand ``{host}``, ``{remote}`` and ``{local}`` in *word*."""
        return word.format(host=self.host or "", remote=self.remote_view,
                           local=self.local)


def run_in_arena(program: list[str], arena: Arena, build: Builder,
                 args: list[str], stdin: bytes) -> Outcome:
    """Rebuild the trees, run *program* with *args*, snapshot the trees."""
    arena.reset(build)
    try:
        done = run_env(program + args, stdin=stdin, cwd=arena.local,
                       environ=arena.environ, timeout=30)
        return Outcome(done.status, done.stdout, done.stderr,
                       arena.snapshot())
    finally:
        for root in arena.roots():
            for path in [root, *root.rglob("*")]:
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o755)   # rmtree needs to get in


HELP_HEAD = b"Available commands:\n"


def drop_help_n_lines(stdout: bytes) -> bytes:
    """Remove psftp-shell's ``-n`` lines from every ``help`` block.

    An allowed difference: psftp-shell may document ``-n`` in ``help``.
    A help block runs from ``Available commands:`` to the next echo.
    """
    out: list[bytes] = []
    in_help = False
    for line in stdout.splitlines(keepends=True):
        if line == HELP_HEAD:
            in_help = True
        elif line.startswith(b"sftp> "):
            in_help = False
        elif in_help and (b"-n" in line or b"connections" in line):
            continue
        out.append(line)
    return b"".join(out)


def allowed(stream: bytes) -> bytes:
    """Apply the documented differences: program name and usage text."""
    return same_usage(stream)
