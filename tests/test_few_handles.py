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
from types import SimpleNamespace
from typing import Any

import asyncssh
import pytest

from psftp_shell.core.observer import TransferJob
from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer
from psftp_shell.engine.early_opens import EarlyOpens
from psftp_shell.engine.get_chunks import GetFile
from psftp_shell.engine.stream import Stream
from psftp_shell.filecopy import remotedest
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.ratelimit import RateLimiter
from psftp_shell.filecopy.remotedest import open_remote
from psftp_shell.sftp.client import (
    OPEN_READ,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.few_handles import open_with_room
from psftp_shell.sftp.handle_count import HandleCount
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport
from tests.test_verify import SIZE, Faults, faulty, make_rig
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


class BadRefused:
    """Refuses every OPEN of a file named ``bad`` with a plain failure,
    whatever else is open (a failure that is not a limit), and counts
    them."""

    attempts = 0

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if path.endswith(b"/bad"):
            BadRefused.attempts += 1
            raise asyncssh.SFTPFailure("Cannot open")
        return super().open(path, pflags, attrs)  # type: ignore[misc]


class RefusesBad(BadRefused, OneHandle):
    """A one-handle server that also refuses ``bad``."""


class ManyHandlesRefusesBad(BadRefused, asyncssh.SFTPServer):
    """A server without a handle limit that refuses ``bad`` (as OpenSSH's
    does a file it cannot open for a reason with no code of its own)."""


QUICK = 8.0
"""Seconds a test's whole run must take: less than the idle limit
(few_handles.IDLE_LIMIT), so an OPEN stuck until that bound fails it."""


def _tree(prefix: str) -> dict[str, bytes]:
    """Files of a small tree: a dozen small ones in two levels, and
    three big enough to go in chunks at ``-n 4``."""
    files = {f"{prefix}/f{i:02d}": os.urandom(1000 + 700 * i)
             for i in range(8)}
    files.update({f"{prefix}/sub/g{i}": os.urandom(2000 + i)
                  for i in range(5)})
    files.update({f"{prefix}/sub/big{i}": os.urandom((5 << 20) + i)
                  for i in range(3)})
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_tree_downloads_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    files = _tree("t")
    OneHandle.refused = 0
    started = time.monotonic()
    result, work, _ = await run_served(
        tmp_path, OneHandle, client, sftp_bin, b"get -r t down\n",
        served=files)
    assert (result.status, result.stderr) == (0, b"")
    assert _read_tree(work / "down") == _read_tree_of(files, "t")
    assert time.monotonic() - started < QUICK
    if client != "sftp":
        assert OneHandle.refused >= 1    # the server's limit was met


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_tree_uploads_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    files = _tree("t")
    old = {f"up/t/f{i:02d}": b"old" for i in range(0, 8, 2)}
    OneHandle.refused = 0
    started = time.monotonic()
    result, _, root = await run_served(
        tmp_path, OneHandle, client, sftp_bin, b"put -r t up\n",
        served=old, local=files)
    assert (result.status, result.stderr) == (0, b"")
    assert _read_tree(root / "up" / "t") == _read_tree_of(files, "t")
    assert time.monotonic() - started < QUICK
    if client != "sftp":
        assert OneHandle.refused >= 1


@pytest.mark.parametrize("client", ["2", "4"])
@pytest.mark.parametrize("way", ["get", "put"])
async def test_big_files_in_chunks_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str, way: str) -> None:
    """Several files in chunks at once: a stream that comes to help
    with one while its handle is taken leaves that file to the others
    (once, such helpers waited for a handle their own lead held, and the
    copies stalled until the idle limit, some failing)."""
    files = {f"t/big{i}": os.urandom((6 << 20) + i) for i in range(6)}
    files.update({f"t/s{i}": os.urandom(3000) for i in range(10)})
    started = time.monotonic()
    if way == "get":
        result, work, _ = await run_served(
            tmp_path, OneHandle, client, sftp_bin, b"get -r t down\n",
            served=files)
        landed = work / "down"
    else:
        old = {f"up/t/big{i}": b"old" for i in range(3)}
        result, _, root = await run_served(
            tmp_path, OneHandle, client, sftp_bin, b"put -r t up\n",
            served=old, local=files)
        landed = root / "up" / "t"
    assert (result.status, result.stderr) == (0, b"")
    assert _read_tree(landed) == _read_tree_of(files, "t")
    assert time.monotonic() - started < QUICK


class CountsReads(OneHandle):
    """A one-handle server that counts the READs (an upload's check of
    its temporary reads it back) and its refusals of an OPEN of a
    temporary for reading alone (the check's second handle)."""

    reads = 0
    read_refused = 0

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if self.open_files and b".psftp-" in path \
                and pflags == asyncssh.FXF_READ:
            CountsReads.read_refused += 1
        return super().open(path, pflags, attrs)

    def read(self, file_obj: object, offset: int, size: int) -> object:
        CountsReads.reads += 1
        return super().read(file_obj, offset, size)


@pytest.mark.parametrize("client", ["1", "4"])
@pytest.mark.parametrize("what", ["file", "big file", "tree"])
async def test_verified_uploads_pass_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str, what: str) -> None:
    """``-X verify=hash`` reads an upload's temporary back before its
    rename; with the temporary's own handle open that needs a second
    one.  The server refuses it, so the temporary is closed and opened
    again for both (until 2026-12-08 every such upload failed with
    ``remote open ".x.psftp-...": Failure``)."""
    CountsReads.reads = CountsReads.read_refused = 0
    if what == "tree":
        files, script = _tree("t"), b"put -r t up\n"
    else:
        size = 3000 if what == "file" else (12 << 20) + 5
        files, script = {"t": os.urandom(size)}, b"put t up\n"
    result, _, root = await run_served(
        tmp_path, CountsReads, client, sftp_bin, script,
        served={"up/t/f00": b"old"} if what == "tree" else {"up": b"old"},
        local=files, args=("-X", "verify=hash"))
    assert (result.status, result.stderr) == (0, b"")
    if what == "tree":
        assert _read_tree(root / "up" / "t") == _read_tree_of(files, "t")
    else:
        assert (root / "up").read_bytes() == files["t"]
    assert sorted(p.name for p in root.iterdir()) == ["up"]
    assert CountsReads.read_refused >= 1    # the check met the limit
    assert CountsReads.reads >= 1           # and read the copies back


@pytest.mark.parametrize("streams", [1, 4])
@pytest.mark.parametrize("spoilt", [1, -1])
async def test_a_verified_upload_mends_through_its_reopened_handle(
        tmp_path: Path, clean_ssh_env: None, streams: int, spoilt: int
        ) -> None:
    """A byte spoilt on the way in is found by the check and written
    again through the temporary's new handle, open for both (at 4
    streams, the lead's of a file in chunks).  Spoilt at every WRITE,
    the upload fails after its repairs with nothing left behind: no
    temporary, and no handle open on any session."""
    faults = Faults(writes=spoilt)
    sessions: list[OneHandle] = []

    class Spoils(OneHandle, faulty(faults)):  # type: ignore[misc]
        """A one-handle server that spoils the byte at SPOT of WRITEs."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            sessions.append(self)

    server = AsyncSSHServer(tmp_path / "server", sftp_factory=Spoils)
    await server.start()
    try:
        rig = await make_rig(server.ssh_config, tmp_path, server.root, "",
                             streams)
        try:
            data = os.urandom(SIZE)     # past the spot spoilt
            (rig.local / "src").write_bytes(data)
            (server.root / "up").write_bytes(b"the old copy")
            ok = await rig.put("src", "up")
            assert rig.leftovers() == []
            for _ in range(20):         # the last CLOSEs' answers
                if not any(s.open_files for s in sessions):
                    break
                await asyncio.sleep(0.1)
            assert [s.open_files for s in sessions] == [0] * len(sessions)
            if spoilt == 1:
                assert ok and faults.hits == 1
                assert (server.root / "up").read_bytes() == data
                assert rig.seen.verified == ["sha256 (read-back)"]
                assert rig.messages() == ""
            else:
                assert not ok and faults.hits == 3  # and two repairs
                assert (server.root / "up").read_bytes() == \
                    b"the old copy"
                assert "differs in bytes" in rig.messages()
        finally:
            await rig.transport.close()
    finally:
        await server.stop()


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_real_failure_among_waiting_opens_is_reported(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    """A file the server always refuses with a plain failure fails as in
    sftp (after the others have closed), and the command ends."""
    files = {f"t/f{i}": os.urandom(3000) for i in range(6)}
    files["t/bad"] = b"unreadable"
    started = time.monotonic()
    result, work, _ = await run_served(
        tmp_path, RefusesBad, client, sftp_bin, b"get -r t down\n",
        served=files)
    assert result.status == 1
    assert b'remote open "/t/bad": Failure' in result.stderr
    assert time.monotonic() - started < QUICK
    del files["t/bad"]
    assert _read_tree(work / "down") == _read_tree_of(files, "t")


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_real_failure_on_a_busy_server_is_final_at_once(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    """On a server that took several handles at once, a plain failure
    with fewer open is no limit: OPENed once or twice, as by sftp, not
    again at every close of the command's other files."""
    files = {f"t/f{i:03d}": os.urandom(2000) for i in range(120)}
    files["t/bad"] = b"unreadable"
    BadRefused.attempts = 0
    result, work, _ = await run_served(
        tmp_path, ManyHandlesRefusesBad, client, sftp_bin,
        b"get -r t down\n", served=files)
    assert result.status == 1
    assert b'remote open "/t/bad": Failure' in result.stderr
    assert BadRefused.attempts <= 3
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
    count = client.handles
    handle = await client.open("/a", OPEN_READ)
    assert (count.open, count.files, count.closed) == (1, 1, 0)
    with pytest.raises(StatusError):          # the server's limit
        await client.open("/b", OPEN_READ)
    assert (count.open, count.most, count.most_files) == (1, 1, 1)
    directory = await client.opendir("/")     # it counts files alone
    assert (count.open, count.files, count.most) == (2, 1, 2)
    await client.close_handle(handle)
    assert (count.open, count.files, count.closed) == (1, 0, 1)
    await client.close_handle(directory)
    assert (count.open, count.most_files, count.closed) == (0, 1, 2)


async def _opens_once_closed(client: SFTPClient, handle: bytes,
                             waiting: asyncio.Future[bytes]) -> None:
    """*waiting*, an OPEN of ``/b``, still waits; once *handle* is
    closed, it gets ``/b``."""
    assert not waiting.done()
    await client.close_handle(handle)
    second = await asyncio.wait_for(waiting, 5)
    assert await client.read(second, 0, 10) == b"b"


async def test_a_refused_open_waits_for_a_close(
        one_handle: tuple[SFTPClient, Path]) -> None:
    client, _ = one_handle
    handle = await client.open("/a", OPEN_READ)
    waiting = asyncio.ensure_future(open_with_room(
        client, lambda: client.open("/b", OPEN_READ)))
    await asyncio.sleep(0.3)
    await _opens_once_closed(client, handle, waiting)


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


async def test_requests_sent_keep_the_wait_going(
        one_handle: tuple[SFTPClient, Path]) -> None:
    """A session that sends now and then (paced, as under ``-l``) is at
    work even with nothing outstanding when looked at: no idle bound."""
    client, _ = one_handle
    handle = await client.open("/a", OPEN_READ)
    waiting = asyncio.ensure_future(open_with_room(
        client, lambda: client.open("/b", OPEN_READ), idle_limit=1.0))
    for _ in range(8):                  # 2.4 s, past the idle limit
        await client.stat("/a")
        await asyncio.sleep(0.3)
    await _opens_once_closed(client, handle, waiting)


@pytest.mark.parametrize("limited", [False, True])
async def test_no_idle_bound_under_a_rate_limit(
        one_handle: tuple[SFTPClient, Path], monkeypatch: pytest.MonkeyPatch,
        limited: bool) -> None:
    """A copy's own OPEN under ``-l`` waits past the idle limit (the
    limiter's pauses look idle); without ``-l`` the bound holds."""
    client, _ = one_handle
    monkeypatch.setattr(remotedest, "IDLE_LIMIT", 0.5)
    ctx = CopyContext(limiter=RateLimiter(1e6) if limited else None)
    handle = await client.open("/a", OPEN_READ)
    opening = asyncio.ensure_future(open_remote(
        ctx, client, "/b", OPEN_READ, wait=True))
    await asyncio.sleep(1.5)
    if not limited:
        with pytest.raises(StatusError):
            opening.result()
        return
    await _opens_once_closed(client, handle, opening)


@pytest.mark.parametrize("held", [True, False])
async def test_a_helper_refused_by_the_limit_may_help_after_a_close(
        one_handle: tuple[SFTPClient, Path], tmp_path: Path,
        held: bool) -> None:
    """A stream refused as a handle limit would is kept off the file only
    until its session closes a handle (kept off for good, a lost lead
    left its chunks to nobody and the command waited for ever); one
    refused for the file itself stays off."""
    client, root = one_handle
    size = 1 << 20
    (root / "big").write_bytes(os.urandom(size))
    ctx = CopyContext()
    with open(tmp_path / "down", "wb") as dest:
        file = GetFile(ctx, TransferJob(False, "/big", "down", size),
                       dest.fileno(), [(0, size)], size, RangeSet(), 2)
        file.source = "/big" if held else "/missing"
        stream = Stream.make(1, client, 4)
        if held:                            # the server's one handle
            handle = await client.open("/a", OPEN_READ)
        await file.help(stream)             # refused: nothing copied
        assert client.handles.limited is held
        assert not file.wants(stream)
        if not held:
            handle = await client.open("/a", OPEN_READ)
        await client.close_handle(handle)
        assert file.wants(stream) is held


def test_no_early_open_where_the_server_refused_as_a_limit() -> None:
    """An OPEN sent ahead of a helper on such a session could take its
    one handle while that session's own files wait for it."""
    clients = [SimpleNamespace(closed=False, handles=HandleCount())
               for _ in range(3)]
    streams = [Stream.make(i, c, 4)  # type: ignore[arg-type]
               for i, c in enumerate(clients)]
    clients[2].handles.limited = True
    assert EarlyOpens.idle(streams, streams[0]) == [streams[1]]
