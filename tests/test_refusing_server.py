"""A server that refuses what sftp reports in a way of its own.

asyncssh's SFTP server, made to refuse OPENDIR of the directories whose
name starts with ``refused``: sftp formats ``remote readdir("path")``
into ``get_handle``'s 256-byte buffer, so a long path loses its tail,
closing quote and all, whether the directory is listed, globbed or
copied.  Made to refuse ``REALPATH "."`` at the start, sftp prints
``realpath .:`` and the server's message (its own text for the status
when the server sent none) before ``Need cwd``.  The real sftp and
psftp-shell run the same script against it: status, stdout and stderr
must be identical.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from tests.twins import Run, run_async

LONG = "refused" + "R" * 243        # a 250-byte name: the path passes 255


class Refusing(asyncssh.SFTPServer):
    """Refuses OPENDIR of ``refused*`` with a long message of its own."""

    def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        if path.rstrip(b"/").rpartition(b"/")[2].startswith(b"refused"):
            raise asyncssh.SFTPPermissionDenied("not today " * 40)
        return super().scandir(path)


class NoStart(asyncssh.SFTPServer):
    """Refuses ``REALPATH "."`` with the class's message."""

    message = ""

    def realpath(self, path: bytes) -> bytes:
        if path == b".":
            raise asyncssh.SFTPPermissionDenied(self.message)
        return super().realpath(path)


@pytest.fixture
async def refusing(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=Refusing)
    await server.start()
    (server.root / LONG).mkdir()
    (server.root / "refused").mkdir()
    yield server
    await server.stop()


async def _both(server: AsyncSSHServer, tmp_path: Path, sftp_bin: str,
                script: bytes) -> tuple[Run, Run]:
    """Run *script* with sftp, then psftp-shell; return both runs."""
    results = []
    for who, argv in (("sftp", [sftp_bin]),
                      ("ours", [sys.executable, "-m", "psftp_shell"])):
        work = tmp_path / who
        work.mkdir()
        results.append(await run_async(
            [*argv, "-F", str(server.ssh_config), "-b", "-", HOST_ALIAS],
            stdin=script, cwd=work))
    return results[0], results[1]


async def test_a_refused_opendir_is_reported_in_sftps_buffer(
        refusing: AsyncSSHServer, tmp_path: Path, sftp_bin: str) -> None:
    script = (f"-ls {LONG}/*\n-get refusedR*/*\n-ls {LONG}\n"
              f"-get -r {LONG}\n-ls refused/*\n").encode()
    theirs, ours = await _both(refusing, tmp_path, sftp_bin, script)
    assert ours == theirs
    cut = f'remote readdir("/{LONG}'.encode()[:255]
    assert cut + b": Permission denied\r\n" in ours.stderr
    assert b'remote readdir("/refused/"): Permission denied\r\n' in \
        ours.stderr


@pytest.mark.parametrize("message", ["", "no start for you"])
async def test_a_refused_start_directory_is_reported_before_need_cwd(
        tmp_path: Path, sftp_bin: str, message: str) -> None:
    factory = type("Refused", (NoStart,), {"message": message})
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=factory)
    await server.start()
    try:
        theirs, ours = await _both(server, tmp_path, sftp_bin, b"ls\n")
    finally:
        await server.stop()
    assert ours == theirs
    assert ours.status == 255
    said = message or "Permission denied"
    assert ours.stderr == f"realpath .: {said}\r\nNeed cwd\r\n".encode()
