"""The transfer engine against OpenSSH's sftp-server over pipes.

Files cross in both directions and are compared byte for byte with the
originals; failures are provoked by killing the server, by rewriting its
replies on the way in (a read error, short reads), by interrupting and by
cancelling, and the tests check that nothing partial is left under the
final name.  One test runs over the real sshd.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import stat
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from psftp_shell.core.output import Output
from psftp_shell.devserver import PrivateSSHD
from psftp_shell.engine.transfer_engine import (
    MAX_BUFFER,
    TEMP_MARK,
    TransferEngine,
    TransferJob,
)
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.onto_itself import same_file
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    FX_NO_SUCH_FILE,
    ConnectionLost,
    SFTPClient,
    SFTPError,
    StatusError,
)

T = TypeVar("T")
TIMEOUT = 60.0
FXP_STATUS = 101
FXP_DATA = 103
MIB = 1 << 20


async def within(aw: Awaitable[T], timeout: float = TIMEOUT) -> T:
    """Await *aw*, failing the test instead of hanging."""
    return await asyncio.wait_for(aw, timeout)


class StdinWriter:
    """A subprocess's stdin (asyncio's stream) as the protocol's
    ByteWriter: the tests' rigs start their servers through asyncio."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


PipeWriter = StdinWriter
"""A subprocess's stdin as the protocol's ByteWriter."""


Mangle = Callable[[int, bytes], tuple[int, bytes]]


class ManglingReader:
    """Read whole packets from *stream*, passing each through *mangle*.

    *mangle* gets (type, body after the type byte) and returns a new
    pair; this is how a test makes the real server fail or read short.
    """

    def __init__(self, stream: asyncio.StreamReader, mangle: Mangle) -> None:
        self._stream = stream
        self._mangle = mangle
        self._buffer = bytearray()

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            head = await self._stream.readexactly(4)
            body = await self._stream.readexactly(
                struct.unpack(">I", head)[0])
            ptype, rest = self._mangle(body[0], body[1:])
            self._buffer += struct.pack(">IB", len(rest) + 1, ptype) + rest
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


def nth_data(index: int, change: Callable[[bytes, bytes], tuple[int, bytes]]
             ) -> Mangle:
    """A mangler that rewrites the *index*-th DATA reply with *change*.

    *change* gets (request id bytes, data) and returns (type, body).
    """
    seen = 0

    def mangle(ptype: int, body: bytes) -> tuple[int, bytes]:
        nonlocal seen
        if ptype != FXP_DATA:
            return ptype, body
        seen += 1
        if seen != index:
            return ptype, body
        return change(body[:4], body[8:])

    return mangle


def failure_status(rid: bytes, data: bytes) -> tuple[int, bytes]:
    """Turn a DATA reply into STATUS Failure."""
    return FXP_STATUS, rid + struct.pack(">III", 4, 0, 0)


def halve(rid: bytes, data: bytes) -> tuple[int, bytes]:
    """Return only the first half of a DATA reply's data."""
    half = data[:len(data) // 2]
    return FXP_DATA, rid + struct.pack(">I", len(half)) + half


@dataclass
class Recorder:
    """An observer that records what it is told and can act on it."""

    events: list[tuple[str, int]] = field(default_factory=list)
    on_advance: Callable[[TransferJob], None] | None = None
    errors: list[BaseException | None] = field(default_factory=list)

    streams: list[int] = field(default_factory=list)

    def command_started(self, *, streams: int) -> None:
        self.events.append(("command", streams))

    def command_finished(self) -> None:
        self.events.append(("done", 0))

    def file_started(self, job: TransferJob) -> None:
        self.events.append(("start", job.offset))

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        self.events.append(("advance", nbytes))
        self.streams.append(stream)
        if self.on_advance is not None:
            self.on_advance(job)

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        self.events.append(("finish", job.transferred))
        self.errors.append(error)

    @property
    def moved(self) -> int:
        return sum(n for kind, n in self.events if kind == "advance")


@dataclass
class Rig:
    """An engine on a real sftp-server; remote and local trees in tmp."""

    engine: TransferEngine
    client: SFTPClient
    proc: asyncio.subprocess.Process
    remote: Path
    local: Path
    stdout: io.BytesIO
    stderr: io.BytesIO

    def messages(self) -> str:
        return self.stderr.getvalue().decode()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


async def start_rig(tmp_path: Path, server: str,
                    mangle: Mangle | None = None,
                    writer: Callable[[asyncio.StreamWriter], PipeWriter]
                    = PipeWriter) -> Rig:
    """Start sftp-server in tmp_path/remote and an engine on it; the
    client writes through *writer* (made on the server's stdin)."""
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir(exist_ok=True)
    local.mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        server, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=remote)
    assert proc.stdin is not None and proc.stdout is not None
    reader = (ManglingReader(proc.stdout, mangle) if mangle
              else proc.stdout)
    client = SFTPClient(reader, writer(proc.stdin))
    await within(client.start())
    stdout, stderr = io.BytesIO(), io.BytesIO()
    out = Output(stdout, stderr, quiet=True)
    engine = await within(TransferEngine.create(client, out))
    engine.local_cwd = str(local)
    return Rig(engine, client, proc, remote, local, stdout, stderr)


async def stop_rig(rig: Rig) -> None:
    await rig.client.close()
    if rig.proc.returncode is None:
        try:
            await asyncio.wait_for(rig.proc.wait(), 5)
        except TimeoutError:
            rig.proc.kill()
            await rig.proc.wait()


@pytest.fixture
async def rig(tmp_path: Path, sftp_server_bin: str) -> AsyncIterator[Rig]:
    """An engine on OpenSSH's sftp-server, both sides under tmp_path."""
    made = await start_rig(tmp_path, sftp_server_bin)
    yield made
    await stop_rig(made)


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic bytes that differ at every block boundary."""
    block = bytes((i * 131 + seed) % 251 for i in range(65521))
    return (block * (size // len(block) + 1))[:size]


def leftovers(directory: Path) -> list[str]:
    """Names of temporaries the engine left in *directory*."""
    return [p.name for p in directory.iterdir() if TEMP_MARK in p.name]


async def get(rig: Rig, name: str, dest: str, **flags: bool) -> bool:
    opts = {"preserve": False, "resume": False, "fsync": False, **flags}
    return await within(rig.engine.download(
        str(rig.remote / name), dest, None, **opts))


async def put(rig: Rig, src: str, name: str, **flags: bool) -> bool:
    opts = {"preserve": False, "resume": False, "fsync": False, **flags}
    return await within(rig.engine.upload(
        src, str(rig.remote / name), **opts))


# ---------------------------------------------------------------- sizes

def test_block_size_follows_server_limits(rig: Rig) -> None:
    # OpenSSH's server allows 255 KiB reads; sftp caps at 256 KiB - 1024.
    assert rig.engine.read_size == MAX_BUFFER == 261120
    assert rig.engine.write_size == MAX_BUFFER
    assert rig.engine.max_requests == 64


SIZES = [0, 1, MAX_BUFFER - 1, MAX_BUFFER, MAX_BUFFER + 1,
         3 * MAX_BUFFER + 17, 20 * MIB]


@pytest.mark.parametrize("size", SIZES)
async def test_download_is_byte_identical(rig: Rig, size: int) -> None:
    data = payload(size)
    (rig.remote / "f").write_bytes(data)
    seen = Recorder()
    rig.engine.observer = seen
    assert await get(rig, "f", "copy")
    assert (rig.local / "copy").read_bytes() == data
    assert seen.moved == size
    assert seen.errors == [None]
    assert rig.messages() == ""
    assert leftovers(rig.local) == []


@pytest.mark.parametrize("size", SIZES)
async def test_upload_is_byte_identical(rig: Rig, size: int) -> None:
    data = payload(size, seed=7)
    (rig.local / "f").write_bytes(data)
    assert await put(rig, "f", "copy")
    assert (rig.remote / "copy").read_bytes() == data
    assert rig.messages() == ""
    assert leftovers(rig.remote) == []


async def test_small_blocks_and_few_requests(rig: Rig) -> None:
    rig.engine.read_size = rig.engine.write_size = 1000
    rig.engine.max_requests = 3
    data = payload(123_457)
    (rig.remote / "f").write_bytes(data)
    assert await get(rig, "f", "down")
    assert (rig.local / "down").read_bytes() == data
    assert await put(rig, "down", "up")
    assert (rig.remote / "up").read_bytes() == data


async def test_short_reads_are_requested_again(tmp_path: Path,
                                               sftp_server_bin: str) -> None:
    rig = await start_rig(tmp_path, sftp_server_bin, nth_data(2, halve))
    try:
        data = payload(5 * MAX_BUFFER + 3)
        (rig.remote / "f").write_bytes(data)
        assert await get(rig, "f", "copy")
        assert (rig.local / "copy").read_bytes() == data
        # sftp shrinks the block size for the rest of that file only
        assert rig.engine.read_size == MAX_BUFFER
    finally:
        await stop_rig(rig)


# ---------------------------------------------------------------- modes

async def test_new_download_gets_remote_mode_under_umask(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(b"x")
    (rig.remote / "f").chmod(0o4555)
    old = os.umask(0o027)
    try:
        assert await get(rig, "f", "copy")
    finally:
        os.umask(old)
    # (perm & 0777) | S_IWUSR, then the umask
    assert stat.S_IMODE((rig.local / "copy").stat().st_mode) == 0o750


async def test_existing_download_target_keeps_its_mode(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(b"new")
    (rig.remote / "f").chmod(0o600)
    (rig.local / "copy").write_bytes(b"old contents")
    (rig.local / "copy").chmod(0o664)
    assert await get(rig, "f", "copy")
    assert (rig.local / "copy").read_bytes() == b"new"
    assert stat.S_IMODE((rig.local / "copy").stat().st_mode) == 0o664


async def test_download_preserve_sets_mode_and_times(rig: Rig) -> None:
    src = rig.remote / "f"
    src.write_bytes(b"data")
    src.chmod(0o640)
    os.utime(src, (1_000_000_000, 1_100_000_000))
    (rig.local / "copy").write_bytes(b"old")
    (rig.local / "copy").chmod(0o777)
    assert await get(rig, "f", "copy", preserve=True)
    st = (rig.local / "copy").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_atime, st.st_mtime) == (1_000_000_000, 1_100_000_000)


async def test_upload_preserve_and_existing_mode(rig: Rig) -> None:
    src = rig.local / "f"
    src.write_bytes(b"data")
    src.chmod(0o604)
    os.utime(src, (1_000_000_000, 1_200_000_000))
    dst = rig.remote / "copy"
    dst.write_bytes(b"old")
    dst.chmod(0o660)
    assert await put(rig, "f", "copy")
    assert stat.S_IMODE(dst.stat().st_mode) == 0o660     # kept
    assert dst.read_bytes() == b"data"
    assert await put(rig, "f", "copy", preserve=True)
    st = dst.stat()
    assert stat.S_IMODE(st.st_mode) == 0o604
    assert st.st_mtime == 1_200_000_000
    assert leftovers(rig.remote) == []


async def test_download_writes_through_a_symlink(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(b"fresh")
    (rig.local / "target").write_bytes(b"stale")
    (rig.local / "link").symlink_to("target")
    assert await get(rig, "f", "link")
    assert (rig.local / "link").is_symlink()
    assert (rig.local / "target").read_bytes() == b"fresh"
    assert leftovers(rig.local) == []


async def test_download_to_dev_null_is_in_place(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(payload(70_000))
    assert await get(rig, "f", "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("verb", ["download", "upload"])
async def test_a_copy_onto_its_own_source_is_refused(rig: Rig,
                                                     verb: str) -> None:
    # Both sides share one file system here, as with sftp -D: sftp would
    # truncate the source.  The long name leaves no room for a
    # temporary: in place, the file is looked at before it is opened.
    for name in ("f", "n" * 250):
        data = payload(3 * MAX_BUFFER)
        path = rig.remote / name
        path.write_bytes(data)
        os.utime(path, (1_600_000_000, 1_600_000_000))
        if verb == "download":
            assert not await get(rig, name, str(path))
        else:
            assert not await put(rig, str(path), name)
        assert os.stat(path).st_atime == 1_600_000_000      # put back
        assert path.read_bytes() == data
        assert rig.messages().endswith(
            f'{verb} "{path}": "{path}" is the same file\r\n')
        assert leftovers(rig.remote) == []


async def test_the_same_file_check_touches_only_an_unchanged_file(
        tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    os.utime(path, (100, 200))
    st = os.stat(path)
    attrs = Attrs.from_stat(st)

    async def gone() -> Attrs:       # removed between LSTAT and STAT
        raise StatusError(FX_NO_SUCH_FILE)

    assert not await same_file(str(path), st, attrs, gone)
    assert (os.stat(path).st_atime, os.stat(path).st_mtime) == (100, 200)
    path.write_bytes(b"y" * 10)     # changed since *st*: left alone

    async def never() -> Attrs:
        raise AssertionError("not asked")

    assert not await same_file(str(path), st, attrs, never)
    assert os.stat(path).st_mtime != 200


async def test_a_copy_alike_in_size_mtime_and_mode_is_not_refused(
        rig: Rig) -> None:
    data = payload(70_000)
    (rig.remote / "f").write_bytes(data)
    twin = rig.local / "f"
    twin.write_bytes(data[::-1])
    st = os.stat(rig.remote / "f")
    os.utime(twin, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert await get(rig, "f", str(twin))
    assert twin.read_bytes() == data
    os.utime(twin, ns=(st.st_atime_ns, st.st_mtime_ns))
    twin.write_bytes(data[::-1])
    os.utime(twin, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert await put(rig, str(twin), "f")
    assert (rig.remote / "f").read_bytes() == data[::-1]
    assert rig.messages() == ""


# ---------------------------------------------------------------- failures

def get_journal(local: Path, final: str) -> Path:
    """Where the journal of a download to *final* in *local* is kept
    (the state directory of the tests' environment)."""
    return Path(journal.download_path(os.environ, str(local / final)))


def kept_for_reget(local: Path, final: str, data: bytes) -> None:
    """Only a temporary is left beside *final*, with its journal in the
    state directory, and the journal's ranges hold the source's bytes."""
    found = journal.load(str(get_journal(local, final)))
    assert found is not None
    assert leftovers(local) == [Path(found.temp).name]
    kept = Path(found.temp).read_bytes()
    assert found.done.total > 0
    for start, end in found.done:
        assert kept[start:end] == data[start:end]


async def test_server_death_leaves_destination_untouched(rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.remote / "big").write_bytes(data)
    (rig.local / "copy").write_bytes(b"precious")
    seen = Recorder(on_advance=lambda job: rig.kill())
    rig.engine.observer = seen
    with pytest.raises(SFTPError):
        await get(rig, "big", "copy")
    assert (rig.local / "copy").read_bytes() == b"precious"
    kept_for_reget(rig.local, "copy", data)
    assert isinstance(seen.errors[0], ConnectionLost)


async def test_server_death_leaves_no_new_file(rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.remote / "big").write_bytes(data)
    rig.engine.observer = Recorder(on_advance=lambda job: rig.kill())
    with pytest.raises(SFTPError):
        await get(rig, "big", "copy")
    assert not (rig.local / "copy").exists()
    kept_for_reget(rig.local, "copy", data)


async def test_read_error_mid_way(tmp_path: Path,
                                  sftp_server_bin: str) -> None:
    rig = await start_rig(tmp_path, sftp_server_bin,
                          nth_data(3, failure_status))
    try:
        data = payload(8 * MAX_BUFFER)
        (rig.remote / "big").write_bytes(data)
        (rig.local / "copy").write_bytes(b"precious")
        assert not await get(rig, "big", "copy")
        assert rig.messages() == (
            f'read remote "{rig.remote}/big" : Failure\r\n')
        assert (rig.local / "copy").read_bytes() == b"precious"
        kept_for_reget(rig.local, "copy", data)
    finally:
        await stop_rig(rig)


async def test_interrupt_stops_download_quietly(rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.remote / "big").write_bytes(data)
    flag = {"stop": False}
    rig.engine.is_interrupted = lambda: flag["stop"]
    seen = Recorder(on_advance=lambda job: flag.update(stop=True))
    rig.engine.observer = seen
    assert not await get(rig, "big", "copy")
    assert rig.messages() == ""
    assert not (rig.local / "copy").exists()
    assert 0 < seen.moved < 20 * MIB
    # the server still answers: the handle was closed, nothing is stuck
    assert (await within(rig.client.stat(str(rig.remote)))).is_dir()
    # the temporary stays with a journal: reget goes on from there
    assert len(leftovers(rig.local)) == 1
    assert get_journal(rig.local, "copy").is_file()
    rig.engine.is_interrupted = lambda: False
    rig.engine.observer = again = Recorder()
    assert await get(rig, "big", "copy", resume=True)
    assert (rig.local / "copy").read_bytes() == data
    assert again.moved == 20 * MIB - seen.moved
    assert leftovers(rig.local) == []


async def test_cancel_keeps_the_temporary_for_reget(rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.remote / "big").write_bytes(data)
    (rig.local / "copy").write_bytes(b"precious")
    started = asyncio.Event()
    rig.engine.observer = Recorder(on_advance=lambda job: started.set())
    task = asyncio.ensure_future(get(rig, "big", "copy"))
    await within(started.wait())
    assert leftovers(rig.local) != []       # the data goes to a temporary
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (rig.local / "copy").read_bytes() == b"precious"
    assert get_journal(rig.local, "copy").is_file()
    assert (await within(rig.client.stat(str(rig.remote)))).is_dir()
    rig.engine.observer = Recorder()
    assert await get(rig, "big", "copy", resume=True)
    assert (rig.local / "copy").read_bytes() == data
    assert leftovers(rig.local) == []


async def test_interrupted_upload_leaves_remote_untouched(rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.local / "big").write_bytes(data)
    (rig.remote / "copy").write_bytes(b"precious")
    flag = {"stop": False}
    rig.engine.is_interrupted = lambda: flag["stop"]
    rig.engine.observer = Recorder(
        on_advance=lambda job: flag.update(stop=True))
    assert not await put(rig, "big", "copy")
    assert (rig.remote / "copy").read_bytes() == b"precious"
    assert len(leftovers(rig.remote)) == 1  # the temporary, for reput
    assert rig.messages() == ""
    rig.engine.is_interrupted = lambda: False
    rig.engine.observer = Recorder()
    assert await put(rig, "big", "copy", resume=True)
    assert (rig.remote / "copy").read_bytes() == data
    assert leftovers(rig.remote) == []


async def test_upload_cancel_keeps_remote_temporary_for_reput(
        rig: Rig) -> None:
    data = payload(20 * MIB)
    (rig.local / "big").write_bytes(data)
    started = asyncio.Event()
    rig.engine.observer = Recorder(on_advance=lambda job: started.set())
    task = asyncio.ensure_future(put(rig, "big", "copy"))
    await within(started.wait())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (rig.remote / "copy").exists()
    rig.engine.observer = Recorder()
    assert await put(rig, "big", "copy", resume=True)
    assert (rig.remote / "copy").read_bytes() == data
    # whatever the cancelled copy left (a temporary and its journal, or
    # nothing if no byte was acknowledged) is gone once reput is done
    for _ in range(100):
        if not leftovers(rig.remote):
            break
        await asyncio.sleep(0.02)
    assert leftovers(rig.remote) == []


async def test_local_write_error_in_place(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(payload(10_000))
    assert not await get(rig, "f", "/dev/full")
    assert rig.messages() == (
        'local ftruncate "/dev/full": Invalid argument\r\n'
        'write local "/dev/full": No space left on device\r\n')


async def test_remote_write_error(rig: Rig) -> None:
    (rig.local / "f").write_bytes(payload(10_000))
    assert not await within(rig.engine.upload(
        "f", "/dev/full", preserve=False, resume=False, fsync=False))
    assert rig.messages() == 'write remote "/dev/full": Failure\r\n'


async def test_open_errors(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(b"x")
    (rig.local / "sub").mkdir()
    assert not await get(rig, "nope", "a")
    assert not await get(rig, "f", "missing/dir/a")
    assert not await get(rig, "f", "sub")
    assert not await within(rig.engine.upload(
        "nope", str(rig.remote / "x"), preserve=False, resume=False,
        fsync=False))
    assert not await within(rig.engine.upload(
        "sub", str(rig.remote / "x"), preserve=False, resume=False,
        fsync=False))
    (rig.local / "f").write_bytes(b"x")
    assert not await put(rig, "f", "no/such/dir")
    assert rig.messages().split("\r\n")[:-1] == [
        "stat remote: No such file or directory",
        'open local "missing/dir/a": No such file or directory',
        'open local "sub": Is a directory',
        'open local "nope": No such file or directory',
        'local "sub" is not a regular file',
        f'dest open "{rig.remote}/no/such/dir": No such file or directory',
    ]
    assert leftovers(rig.local) == [] and leftovers(rig.remote) == []


# ---------------------------------------------------------------- resume

async def test_resume_download_appends_the_rest(rig: Rig) -> None:
    data = payload(3 * MAX_BUFFER + 5)
    (rig.remote / "f").write_bytes(data)
    (rig.local / "part").write_bytes(data[:MAX_BUFFER + 99])
    seen = Recorder()
    rig.engine.observer = seen
    assert await get(rig, "f", "part", resume=True)
    assert (rig.local / "part").read_bytes() == data
    assert seen.events[:2] == [("command", 1), ("start", MAX_BUFFER + 99)]
    assert seen.moved == len(data) - MAX_BUFFER - 99


async def test_resume_download_messages(rig: Rig) -> None:
    (rig.remote / "f").write_bytes(b"12345")
    (rig.local / "same").write_bytes(b"12345")
    (rig.local / "longer").write_bytes(b"123456")
    assert await get(rig, "f", "same", resume=True)
    assert not await get(rig, "f", "longer", resume=True)
    assert await get(rig, "f", "absent", resume=True)
    assert (rig.local / "absent").read_bytes() == b"12345"
    assert (rig.local / "longer").read_bytes() == b"123456"
    assert rig.messages() == (
        'File "same" was not modified\r\n'
        'Unable to resume download of "longer": local file is larger '
        "than remote\r\n")


async def test_resume_upload(rig: Rig) -> None:
    data = payload(2 * MAX_BUFFER + 1)
    (rig.local / "f").write_bytes(data)
    (rig.remote / "part").write_bytes(data[:1000])
    (rig.remote / "same").write_bytes(data)
    assert await put(rig, "f", "part", resume=True)
    assert (rig.remote / "part").read_bytes() == data
    assert not await put(rig, "f", "same", resume=True)
    assert not await put(rig, "f", "absent", resume=True)
    assert not (rig.remote / "absent").exists()
    assert rig.messages() == (
        'resume "f": destination file same size or larger\r\n'
        "stat remote: No such file or directory\r\n")


# ---------------------------------------------------------------- trees

async def test_download_dir_skips_links_and_restores_modes(rig: Rig
                                                           ) -> None:
    tree = rig.remote / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "a" / "b" / "f").write_bytes(payload(300_000))
    (tree / "top").write_bytes(b"top")
    (tree / "link").symlink_to("top")
    (tree / "ro").mkdir()
    (tree / "ro" / "x").write_bytes(b"x")
    (tree / "ro").chmod(0o555)
    assert await within(rig.engine.download_dir(
        str(tree) + "/", "t", None, preserve=False, resume=False,
        fsync=False))
    got = rig.local / "t"
    assert (got / "a" / "b" / "f").read_bytes() == payload(300_000)
    assert (got / "empty").is_dir()
    assert not (got / "link").exists()
    assert stat.S_IMODE((got / "ro").stat().st_mode) == 0o555
    assert (got / "ro" / "x").read_bytes() == b"x"
    assert f'download "{tree}/link": not a regular file\r\n' \
        in rig.messages()
    assert f"Retrieving {tree}\n".encode() in rig.stdout.getvalue()


async def test_upload_dir_and_depth_limit(rig: Rig) -> None:
    deep = rig.local / "d"
    path = deep
    for _ in range(65):
        path = path / "x"
    path.mkdir(parents=True)
    assert not await within(rig.engine.upload_dir(
        "d", str(rig.remote / "d"), preserve=False, resume=False,
        fsync=False))
    assert rig.messages() == "Maximum directory depth exceeded: 64 levels\r\n"
    assert (rig.remote / "d" / ("x/" * 63).rstrip("/")).is_dir()
    assert not (rig.remote / "d" / ("x/" * 64).rstrip("/")).exists()


# ---------------------------------------------------------------- sshd

async def open_ssh_client(sshd: PrivateSSHD
                          ) -> tuple[asyncssh.SSHClientConnection,
                                     SFTPClient]:
    conn = await asyncssh.connect(
        "127.0.0.1", sshd.port, username=sshd.user,
        client_keys=[str(sshd.identity)], known_hosts=str(sshd.known_hosts),
        agent_path=None, config=[])
    writer, reader, _ = await conn.open_session(subsystem="sftp",
                                                encoding=None)
    client = SFTPClient(reader, writer)
    await client.start()
    return conn, client


@pytest.mark.sshd
async def test_round_trip_over_sshd(sshd: PrivateSSHD, remote_dir: Path,
                                    tmp_path: Path) -> None:
    conn, client = await within(open_ssh_client(sshd))
    try:
        out = Output(io.BytesIO(), io.BytesIO(), quiet=True)
        engine = await within(TransferEngine.create(client, out))
        engine.local_cwd = str(tmp_path)
        data = payload(5 * MIB + 3)
        (tmp_path / "up").write_bytes(data)
        target = str(remote_dir / "up")
        assert await within(engine.upload(
            "up", target, preserve=True, resume=False, fsync=True))
        assert (remote_dir / "up").read_bytes() == data
        attrs = await within(client.stat(target))
        assert isinstance(attrs, Attrs)
        assert attrs.mtime == int((tmp_path / "up").stat().st_mtime)
        assert await within(engine.download(
            target, "down", None, preserve=False, resume=False,
            fsync=True))
        assert (tmp_path / "down").read_bytes() == data
        assert leftovers(remote_dir) == [] and leftovers(tmp_path) == []
    finally:
        await client.close()
        conn.close()


async def test_no_room_for_a_temporary_means_in_place(rig: Rig) -> None:
    # ".<name>.psftp-xxxxxxxx" would pass NAME_MAX: sftp's way is used
    name = "n" * 250
    (rig.remote / "f").write_bytes(payload(3 * MAX_BUFFER))
    (rig.local / "f").write_bytes(payload(MAX_BUFFER, seed=5))
    seen: list[bool] = []
    rig.engine.observer = Recorder(on_advance=lambda job: seen.append(
        (rig.local / name).exists()))
    assert await get(rig, "f", name)
    assert seen and all(seen)
    seen.clear()
    rig.engine.observer = Recorder(on_advance=lambda job: seen.append(
        (rig.remote / name).exists()))
    assert await put(rig, "f", name)
    assert seen and all(seen)
    assert (rig.local / name).read_bytes() == payload(3 * MAX_BUFFER)
    assert (rig.remote / name).read_bytes() == payload(MAX_BUFFER, seed=5)


async def test_cancel_during_open_removes_the_temporary(rig: Rig) -> None:
    """The copy is cancelled while its OPEN is on the way: the handle the
    late reply brings is closed and the temporary it made removed."""
    (rig.local / "f").write_bytes(b"data")
    real_open = rig.client.open_nowait
    real_late = rig.client.on_late_reply
    late_handles: list[bytes] = []

    def open_nowait(path: str, pflags: int,
                    attrs: Attrs | None = None) -> asyncio.Future[bytes]:
        fut = real_open(path, pflags, attrs)
        task.cancel()           # the command, before the reply can come
        return fut

    def on_late_reply(fut: asyncio.Future[Any],
                      late: Callable[[Any], None] | None) -> None:
        def record(handle: bytes) -> None:
            late_handles.append(handle)
            assert late is not None
            late(handle)
        real_late(fut, None if late is None else record)

    rig.client.open_nowait = open_nowait    # type: ignore[method-assign]
    rig.client.on_late_reply = on_late_reply    # type: ignore[method-assign]
    task = asyncio.ensure_future(put(rig, "f", "copy"))
    with pytest.raises(asyncio.CancelledError):
        await within(task)
    for _ in range(100):
        if late_handles and not leftovers(rig.remote):
            break
        await asyncio.sleep(0.02)
    assert late_handles                     # the server made it
    assert leftovers(rig.remote) == []
    assert not (rig.remote / "copy").exists()
