"""Servers whose sizes and ends of file disagree with their data.

A server that states a file's size short of the data it serves: sftp
reads a download to the end of file, whatever size the server stated,
and copies every byte.  psftp-shell's chunked copy plans its
chunks from the stated size and follows the last one to the end of
file; an FSTAT that still states the short size must not cut the copy
back to it (as it rightly does for a source that really shrank, which
a READ at the stated size tells apart: it meets the end of file).

A server whose connections see different files (a lagging replica
behind a load balancer): the copy fails rather than end where one
connection met an end of file the others read past.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from tests.twins import Run, run_async

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


async def _serve(tmp_path: Path, factory: type[asyncssh.SFTPServer]
                 ) -> AsyncIterator[AsyncSSHServer]:
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=factory)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def understating(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    async for server in _serve(tmp_path, Understating):
        yield server


async def _get(server: AsyncSSHServer, client: str, sftp_bin: str,
               work: Path, script: bytes) -> Run:
    """Run *script* with sftp or psftp-shell at -n *client* in *work*."""
    argv = [sftp_bin] if client == "sftp" else [
        sys.executable, "-m", "psftp_shell", "-n", client]
    work.mkdir()
    return await run_async(
        [*argv, "-F", str(server.ssh_config), "-b", "-", HOST_ALIAS],
        stdin=script, cwd=work)


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_download_ends_at_the_end_of_file_not_the_stated_size(
        understating: AsyncSSHServer, tmp_path: Path, sftp_bin: str,
        client: str) -> None:
    data = os.urandom(SIZE)
    (understating.root / "big").write_bytes(data)
    work = tmp_path / "work"
    result = await _get(understating, client, sftp_bin, work,
                        b"get big\nget big again\n")
    assert (result.status, result.stderr) == (0, b"")
    assert (work / "big").read_bytes() == data
    assert (work / "again").read_bytes() == data
    assert sorted(p.name for p in work.iterdir()) == ["again", "big"]


class Lagging(asyncssh.SFTPServer):
    """Its second to fourth sessions see every file end at 5 MiB (STAT
    and FSTAT state the whole size on every session)."""

    sessions = itertools.count(1)

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes],
                 chroot: bytes | None = None) -> None:
        super().__init__(chan, chroot=chroot)
        self.session = next(Lagging.sessions)

    async def read(self, file_obj: object, offset: int, size: int
                   ) -> bytes:
        if 2 <= self.session <= 4 and offset >= 5 << 20:
            return b""
        assert hasattr(file_obj, "seek") and hasattr(file_obj, "read")
        file_obj.seek(offset)
        return bytes(file_obj.read(size))


@pytest.fixture
async def lagging(tmp_path: Path) -> AsyncIterator[AsyncSSHServer]:
    Lagging.sessions = itertools.count(1)
    async for server in _serve(tmp_path, Lagging):
        yield server


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_connections_that_disagree_on_the_end_fail_the_copy(
        lagging: AsyncSSHServer, tmp_path: Path, sftp_bin: str,
        client: str) -> None:
    data = os.urandom(10 << 20)
    (lagging.root / "big").write_bytes(data)
    work = tmp_path / "work"
    result = await _get(lagging, client, sftp_bin, work, b"get big\n")
    if client != "4" or result.status == 0:
        # one connection reads the whole file; at -n 4 (the control and
        # streams 2 to 5), only if no stream read past 5 MiB
        assert (result.status, result.stderr) == (0, b"")
        assert (work / "big").read_bytes() == data
        return
    assert result.status == 1
    assert re.fullmatch(
        rb'download "/big": the server ended the file at \d+ bytes on '
        rb"one connection and has data past that on another\r\n",
        result.stderr), result.stderr
    assert list(work.iterdir()) == []
