"""A server that states a file's size short of the data it serves.

sftp reads a download to the end of file, whatever size the server
stated, and copies every byte.  psftp-shell's chunked copy plans its
chunks from the stated size and follows the last one to the end of
file; an FSTAT that still states the short size must not cut the copy
back to it (as it rightly does for a source that really shrank, which
a READ at the stated size tells apart: it meets the end of file).
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

SIZE = 12 << 20         # chunked at -n 4 (4 MiB and up is shared)


def _short(attrs: asyncssh.SFTPAttrs) -> asyncssh.SFTPAttrs:
    if attrs.size is not None and attrs.size > 1 << 20:
        attrs.size -= attrs.size // 4
    return attrs


class Understating(asyncssh.SFTPServer):
    """States three quarters of the size of every file over 1 MiB."""

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return _short(asyncssh.SFTPAttrs.from_local(
            os.stat(self.map_path(path))))

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return _short(asyncssh.SFTPAttrs.from_local(
            os.lstat(self.map_path(path))))

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert hasattr(file_obj, "fileno")
        return _short(asyncssh.SFTPAttrs.from_local(
            os.fstat(file_obj.fileno())))


@pytest.fixture
async def understating(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=Understating)
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_download_ends_at_the_end_of_file_not_the_stated_size(
        understating: AsyncSSHServer, tmp_path: Path, sftp_bin: str,
        client: str) -> None:
    data = os.urandom(SIZE)
    (understating.root / "big").write_bytes(data)
    argv = [sftp_bin] if client == "sftp" else [
        sys.executable, "-m", "psftp_shell", "-n", client]
    work = tmp_path / "work"
    work.mkdir()
    result = await run_async(
        [*argv, "-F", str(understating.ssh_config), "-b", "-", HOST_ALIAS],
        stdin=b"get big\nget big again\n", cwd=work)
    assert (result.status, result.stderr) == (0, b"")
    assert (work / "big").read_bytes() == data
    assert (work / "again").read_bytes() == data
    assert sorted(p.name for p in work.iterdir()) == ["again", "big"]
