"""A server that answers with crafted paths must not choose local writes.

asyncssh's SFTP server, changed so that REALPATH of ``.`` (the start
directory), READLINK and directory listings answer with paths made to
break a client that pastes them into a command line: spaces, quotes,
newlines, control characters, ``..``, absolute local paths and very
long names.  OpenSSH 9.2's sftp pasted the start directory into a
``get`` line for ``sftp host:file`` and parsed it again, so a start
directory ``/x <local dir>`` made it download ``/x`` into that local
directory (fixed in OpenSSH 10.4).  Whatever the server answers,
psftp-shell writes only where the user's own words put it: here the
jail directory the client runs in, at ``-n 1`` and ``-n 4``, through the
command line (with and without ``-a`` and a local target) and through
``get``, ``get -r``, ``reget`` and ``ls``/``cd`` around them.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer

GOOD = b"good data\n" * 300
EVIL = b"from the server's chosen path\n"


def crafted(steer: Path) -> dict[str, bytes]:
    """Start directories that would steer a re-parsed ``get`` to *steer*."""
    local = os.fsencode(steer)
    return {
        "space-absolute": b"/x " + local,
        "quoted": b'/x "' + local + b'"',
        "newline": b"/x\n" + local,
        "tab-escape": b"/x\t\x1b[2J" + local,
        "dotdot": b"/x ../steer",
        "dash-flag": b"/x -a ../steer",
        "long": b"/" + b"/".join([b"a" * 200] * 12) + b" " + local,
    }


class CraftedServer(asyncssh.SFTPServer):
    """Answers REALPATH ``.`` with :attr:`start`; links read as it too."""

    start = b"/"

    def realpath(self, path: bytes) -> bytes:
        if path in (b"", b"."):
            return self.start
        result = super().realpath(path)
        assert isinstance(result, bytes)
        return result

    def readlink(self, path: bytes) -> bytes:
        return self.start + b"/file"

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for name in super().scandir(path):
            yield name
        attrs = asyncssh.SFTPAttrs(
            type=asyncssh.FILEXFER_TYPE_REGULAR, permissions=0o100644,
            size=5, uid=0, gid=0, atime=0, mtime=0, nlink=1)
        for fake in (b"x ../steer", b"..", b"a\nb", self.start):
            yield asyncssh.SFTPName(fake, fake, attrs)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    srv = AsyncSSHServer(tmp_path / "server", sftp_factory=CraftedServer)
    await srv.start()
    (srv.root / "x").write_bytes(EVIL)       # what a re-parse fetches
    yield srv
    await srv.stop()


def _serve(server: AsyncSSHServer, start: bytes) -> None:
    """Make REALPATH answer *start*, and hold the right files there."""
    CraftedServer.start = start
    home = Path(os.fsdecode(os.fsencode(server.root) + start))
    (home / "d").mkdir(parents=True, exist_ok=True)
    (home / "file").write_bytes(GOOD)
    (home / "d" / "inner").write_bytes(GOOD)
    link = home / "link"
    if not link.is_symlink():
        link.symlink_to("file")


async def _run(argv: list[str], cwd: Path, stdin: bytes
               ) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "psftp_shell", *argv, cwd=cwd,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out, err


def _outside(work: Path, jail: Path) -> list[str]:
    """What exists under *work* but outside *jail* (steer must stay empty)."""
    return sorted(str(p.relative_to(work)) for p in work.rglob("*")
                  if jail not in p.parents and p != jail
                  and p != work / "steer")


def _arena(tmp_path: Path, tag: str) -> tuple[Path, Path]:
    work = tmp_path / tag
    jail = work / "jail"
    jail.mkdir(parents=True)
    (work / "steer").mkdir()
    return work, jail


CASES = ["space-absolute", "quoted", "newline", "tab-escape", "dotdot",
         "dash-flag", "long"]
"""Every case at -n 1; the first two also at -n 4 and with a local
target and -a (a process is 1 s)."""


@pytest.mark.parametrize(("case", "streams"), [
    *((case, "1") for case in CASES), *((case, "4") for case in CASES[:2])])
async def test_command_line_fetch_lands_where_the_user_said(
        server: AsyncSSHServer, tmp_path: Path, case: str,
        streams: str) -> None:
    work, jail = _arena(tmp_path, "w")
    start = crafted(work / "steer")[case]
    _serve(server, start)
    base = ["-n", streams, "-F", str(server.ssh_config)]
    (jail / "l").mkdir()
    runs = [
        ([f"{HOST_ALIAS}:file"], jail / "file"),
        ([f"{HOST_ALIAS}:file", "l"], jail / "l" / "file"),
        (["-a", f"{HOST_ALIAS}:link", "resumed"], jail / "resumed"),
    ]
    (jail / "resumed").write_bytes(GOOD[:100])
    if case not in CASES[:2]:       # the plain fetch suffices (1 s each)
        (jail / "l" / "file").write_bytes(GOOD)
        (jail / "resumed").write_bytes(GOOD)
        runs = runs[:1]
    for args, landed in runs:
        status, out, err = await _run(base + args, jail, b"")
        assert status == 0, (args, out, err)
        assert err == b"Connected to %s.\n" % HOST_ALIAS.encode(), err
        assert landed.read_bytes() == GOOD, args
        assert b"\x1b" not in out + err
    assert list((work / "steer").iterdir()) == []
    assert _outside(work, jail) == []
    assert sorted(p.name for p in jail.iterdir()) == \
        ["file", "l", "resumed"]


@pytest.mark.parametrize(("case", "streams"), [
    ("space-absolute", "1"), ("space-absolute", "4"), ("dotdot", "4"),
    ("newline", "1")])
async def test_commands_after_a_crafted_start_stay_in_place(
        server: AsyncSSHServer, tmp_path: Path, case: str,
        streams: str) -> None:
    work, jail = _arena(tmp_path, "w")
    _serve(server, crafted(work / "steer")[case])
    (jail / "part").write_bytes(GOOD[:10])
    script = (b"-get file\n-get -r d\n-reget file part\n-get link\n"
              b"-ls -l\n-get *\n-reget -r d\n-get -a link\n")
    status, out, err = await _run(
        ["-n", streams, "-F", str(server.ssh_config), "-b", "-",
         HOST_ALIAS], jail, script)
    assert status == 0, err
    assert list((work / "steer").iterdir()) == []
    assert _outside(work, jail) == []
    assert (jail / "file").read_bytes() == GOOD
    assert (jail / "part").read_bytes() == GOOD
    assert (jail / "link").read_bytes() == GOOD
    assert (jail / "d" / "inner").read_bytes() == GOOD
    assert b"\x1b" not in out + err
    assert b"suspect path" in err       # the made-up listing entries
