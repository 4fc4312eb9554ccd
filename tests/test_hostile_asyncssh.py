"""Hostile names from asyncssh's SFTP server, over real SSH.

A server whose directory listings add names no real directory can hold
(``../escape``, ``sub/x``, ``/abs``) next to real files whose names carry
terminal escapes, rich markup and tabs.  The real sftp and psftp-shell
(at -n 1 and -n 3) run the same script against it: status, stdout and
stderr must be identical, the suspect names refused with sftp's message,
and nothing may appear outside the destination.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from tests.twins import run_async

FAKE = (b"../escape", b"sub/x", b"/abs")
REAL = (b"\x1b[31mred", b"[bold]b[red]", b"tab\tname", b"plain")


class HostileServer(asyncssh.SFTPServer):
    """Lists the suspect names in every directory called ``d``."""

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for name in super().scandir(path):
            yield name
        if os.path.basename(path.rstrip(b"/")) == b"d":
            attrs = asyncssh.SFTPAttrs(
                type=asyncssh.FILEXFER_TYPE_REGULAR,
                permissions=0o100644, size=5, uid=0, gid=0,
                atime=0, mtime=0, nlink=1)
            for fake in FAKE:
                yield asyncssh.SFTPName(fake, fake, attrs)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    server = AsyncSSHServer(tmp_path / "server",
                            sftp_factory=HostileServer)
    await server.start()
    (server.root / "d").mkdir()
    for name in REAL:
        (server.root / "d" / os.fsdecode(name)).write_bytes(b"data\n")
    yield server
    await server.stop()


def _outside(base: Path, inside: Path) -> list[str]:
    """Everything under *base* that is not under *inside*."""
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")
                  if inside not in p.parents and p != inside)


@pytest.mark.parametrize("streams", ["1", "3"])
async def test_suspect_names_over_ssh_are_refused_as_sftp_refuses_them(
        hostile: AsyncSSHServer, tmp_path: Path, sftp_bin: str,
        streams: str) -> None:
    script = b"-ls -1 d\n-get -r d got\n"
    results = []
    for who, argv in (("sftp", [sftp_bin]),
                      ("ours", [sys.executable, "-m", "psftp_shell",
                                "-n", streams])):
        work = tmp_path / who
        (work / "jail").mkdir(parents=True)
        result = await run_async(
            [*argv, "-F", str(hostile.ssh_config), "-b", "-", HOST_ALIAS],
            stdin=script, cwd=work / "jail")
        results.append(result)
        assert _outside(work, work / "jail") == []
        got = work / "jail" / "got"
        assert sorted(os.fsencode(p.name) for p in got.iterdir()) == \
            sorted(REAL)
        assert not (work / "jail" / "escape").exists()
        assert not (work / "jail" / "sub").exists()
    theirs, ours = results
    assert ours == theirs
    assert ours.status == 0
    assert b'Server sent suspect path "../escape"' in ours.stderr
    assert b"\x1b" not in ours.stdout + ours.stderr   # escapes are escaped
