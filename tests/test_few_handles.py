"""A server that holds few open handles per session.

sftp's upload holds one handle: its OPEN of the target.  psftp-shell's
holds two for a moment: its temporary's, and the OPEN of the target that
asks whether sftp's copy would have been allowed.  A server that allows
one handle at a time refuses the second with a plain failure; that is
not a refusal of sftp's OPEN, and the upload must go through as sftp's
does.  A real refusal (permission denied) still stops it.

Trees too: sftp copies one file at a time and reads a directory whole
before it copies what is in it, so ``get -r`` and ``put -r`` pass such a
server; psftp-shell keeps several files in flight on each session (and
at ``-n 1`` walks the tree on the session its copies use), and its
refused OPENs wait for a handle to close (until 2026-12-07 they failed
their files with ``remote open "...": Failure``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from psftp_shell.sftp.client import (
    OPEN_READ,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.few_handles import open_with_room
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport
from tests.twins import Run, run_served


class OneHandle(asyncssh.SFTPServer):
    """Refuses an OPEN with FX_FAILURE while a file of its session is
    open (a server with a handle limit of one)."""

    refused = 0

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes],
                 chroot: bytes | None = None) -> None:
        super().__init__(chan, chroot=chroot)
        self.open_files = 0

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if self.open_files:
            OneHandle.refused += 1
            raise asyncssh.SFTPFailure("Too many open handles")
        file_obj = super().open(path, pflags, attrs)
        self.open_files += 1
        return file_obj

    def close(self, file_obj: object) -> None:
        self.open_files -= 1
        super().close(file_obj)


class ReadOnlyTarget(OneHandle):
    """Also refuses to open ``target`` for writing (as for a read-only
    file, whoever runs the test)."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if path.endswith(b"/target") and pflags & asyncssh.FXF_WRITE:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return super().open(path, pflags, attrs)


async def _put(tmp_path: Path, client: str, sftp_bin: str, data: bytes,
               old: bytes, factory: type[OneHandle] = OneHandle
               ) -> tuple[Run, Path]:
    """Upload *data* over a target holding *old* with sftp or psftp-shell
    at ``-n`` *client*; what it did, and the server's directory."""
    OneHandle.refused = 0
    result, _, root = await run_served(
        tmp_path, factory, client, sftp_bin, b"put new target\n",
        served={"target": old}, local={"new": data})
    return result, root


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
@pytest.mark.parametrize("size", [3000, 12 << 20])
async def test_an_upload_over_a_file_passes_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str, size: int) -> None:
    data = os.urandom(size)
    result, root = await _put(tmp_path, client, sftp_bin, data, b"old")
    assert (result.status, result.stderr) == (0, b"")
    assert (root / "target").read_bytes() == data
    assert sorted(p.name for p in root.iterdir()) == ["target"]
    if client != "sftp":
        assert OneHandle.refused >= 1    # the server's limit was met


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_target_refused_for_writing_still_stops_the_upload(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    result, root = await _put(tmp_path, client, sftp_bin, b"new" * 1000,
                              b"old", ReadOnlyTarget)
    assert result.status == 1
    assert result.stderr == b'dest open "/target": Permission denied\r\n'
    assert OneHandle.refused == 0
    assert (root / "target").read_bytes() == b"old"
    assert sorted(p.name for p in root.iterdir()) == ["target"]


class RefusesBad(OneHandle):
    """Also refuses every OPEN of a file named ``bad`` with a plain
    failure, whatever else is open (a failure that is not the limit)."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if path.endswith(b"/bad"):
            raise asyncssh.SFTPFailure("Cannot open")
        return super().open(path, pflags, attrs)


def _tree(prefix: str) -> dict[str, bytes]:
    """Files of a small tree: a dozen small ones in two levels, and one
    big enough to go in chunks at ``-n 4``."""
    files = {f"{prefix}/f{i:02d}": os.urandom(1000 + 700 * i)
             for i in range(8)}
    files.update({f"{prefix}/sub/g{i}": os.urandom(2000 + i)
                  for i in range(5)})
    files[f"{prefix}/sub/big"] = os.urandom(5 << 20)
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_tree_downloads_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    files = _tree("t")
    OneHandle.refused = 0
    result, work, _ = await run_served(
        tmp_path, OneHandle, client, sftp_bin, b"get -r t down\n",
        served=files)
    assert (result.status, result.stderr) == (0, b"")
    assert _read_tree(work / "down") == _read_tree_of(files, "t")
    if client != "sftp":
        assert OneHandle.refused >= 1    # the server's limit was met


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_tree_uploads_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    files = _tree("t")
    old = {f"up/t/f{i:02d}": b"old" for i in range(0, 8, 2)}
    OneHandle.refused = 0
    result, _, root = await run_served(
        tmp_path, OneHandle, client, sftp_bin, b"put -r t up\n",
        served=old, local=files)
    assert (result.status, result.stderr) == (0, b"")
    assert _read_tree(root / "up" / "t") == _read_tree_of(files, "t")
    if client != "sftp":
        assert OneHandle.refused >= 1


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_real_failure_among_waiting_opens_is_reported(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    """A file the server always refuses with a plain failure fails as in
    sftp (after the others have closed), and the command ends."""
    files = {f"t/f{i}": os.urandom(3000) for i in range(6)}
    files["t/bad"] = b"unreadable"
    result, work, _ = await run_served(
        tmp_path, RefusesBad, client, sftp_bin, b"get -r t down\n",
        served=files)
    assert result.status == 1
    assert b'remote open "/t/bad": Failure' in result.stderr
    del files["t/bad"]
    assert _read_tree(work / "down") == _read_tree_of(files, "t")


def _read_tree_of(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    """*files* as :func:`_read_tree` reads them, from under *prefix*."""
    return {name.removeprefix(prefix + "/"): data
            for name, data in files.items()}


@pytest.fixture
async def one_handle(tmp_path: Path, clean_ssh_env: None
                     ) -> AsyncIterator[tuple[SFTPClient, Path]]:
    """A client of a one-handle server, and the server's root (files
    ``a`` and ``b`` in it)."""
    server = AsyncSSHServer(tmp_path / "server", sftp_factory=OneHandle)
    await server.start()
    for name in "ab":
        (server.root / name).write_bytes(name.encode())
    transport = SSHTransport(Connector(SSHTarget(
        host=HOST_ALIAS, config_file=str(server.ssh_config),
        batch_mode=True), BatchPrompter()))
    try:
        yield await transport.open_client(), server.root
    finally:
        await transport.close()
        await server.stop()


async def test_the_client_counts_its_open_handles(
        one_handle: tuple[SFTPClient, Path]) -> None:
    client, _ = one_handle
    handle = await client.open("/a", OPEN_READ)
    assert (client.handles_open, client.handles_closed) == (1, 0)
    with pytest.raises(StatusError):          # the server's limit
        await client.open("/b", OPEN_READ)
    assert client.handles_open == 1
    await client.close_handle(handle)
    assert (client.handles_open, client.handles_closed) == (0, 1)
    await client.close_handle(await client.opendir("/"))
    assert (client.handles_open, client.handles_closed) == (0, 2)


async def test_a_refused_open_waits_for_a_close(
        one_handle: tuple[SFTPClient, Path]) -> None:
    client, _ = one_handle
    handle = await client.open("/a", OPEN_READ)
    waiting = asyncio.ensure_future(open_with_room(
        client, lambda: client.open("/b", OPEN_READ)))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await client.close_handle(handle)
    second = await asyncio.wait_for(waiting, 5)
    assert await client.read(second, 0, 10) == b"b"


async def test_a_handle_nobody_closes_ends_the_wait(
        one_handle: tuple[SFTPClient, Path]) -> None:
    """A handle left open with nothing outstanding on its session (no
    work in progress that would close it): the refusal is final after
    the idle limit, not a wait for ever."""
    client, _ = one_handle
    await client.open("/a", OPEN_READ)
    started = time.monotonic()
    with pytest.raises(StatusError) as refused:
        await open_with_room(client, lambda: client.open("/b", OPEN_READ),
                             idle_limit=0.6)
    assert refused.value.text == "Failure"
    assert 0.5 <= time.monotonic() - started < 3


async def test_a_lost_session_ends_the_wait(
        one_handle: tuple[SFTPClient, Path]) -> None:
    client, _ = one_handle
    await client.open("/a", OPEN_READ)
    waiting = asyncio.ensure_future(open_with_room(
        client, lambda: client.open("/b", OPEN_READ)))
    await asyncio.sleep(0.2)
    client.give_up()
    with pytest.raises(SFTPError) as ended:
        await asyncio.wait_for(waiting, 2)
    assert not isinstance(ended.value, StatusError)     # a loss, not a file
