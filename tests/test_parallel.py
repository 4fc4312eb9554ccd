"""Parallel transfers (``-n N``): chunks, stealing, resume, faults.

The pure parts (byte ranges, the chunk queue, output order, the rate
limiter, journals) are checked against simple models; the engine runs
against OpenSSH's sftp-server, one process per stream, through a test
transport that can slow a stream down, rewrite its replies or kill it;
the last tests run over the private sshd.  Every copy is compared byte
for byte with its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import random
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.core.ordered_output import Sequencer
from psftp_shell.core.output import Output
from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.engine.transfer_engine import (
    MAX_BUFFER,
    TEMP_MARK,
    TransferEngine,
)
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import (
    MAX_CHUNK,
    MIN_CHUNK,
    Chunk,
    ChunkQueue,
    RangeSet,
    chunk_size,
)
from psftp_shell.filecopy.ratelimit import RateLimiter, kbps_to_bytes
from psftp_shell.filecopy.window import DEFAULT_WINDOW, WindowTuner
from psftp_shell.sftp.client import SFTPClient, StatVFS
from psftp_shell.sftp.request_core import SFTPCore
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport
from tests.test_engine import (
    MIB,
    Mangle,
    ManglingReader,
    PipeWriter,
    Recorder,
    failure_status,
    nth_data,
    payload,
    within,
)

CHUNK = 4 * MAX_BUFFER
"""The chunk size the pipe tests use: four requests."""


# ---------------------------------------------------------------- ranges

def test_range_set_matches_a_set_of_bytes() -> None:
    rng = random.Random(7)
    model: set[int] = set()
    ranges = RangeSet()
    for _ in range(400):
        start = rng.randrange(200)
        end = start + rng.randrange(12)
        ranges.add(start, end)
        model.update(range(start, end))
        lo = rng.randrange(210)
        hi = lo + rng.randrange(30)
        gaps = {b for s, e in ranges.missing(lo, hi) for b in range(s, e)}
        assert gaps == set(range(lo, hi)) - model
        assert ranges.covers(lo, hi) == (not gaps)
        prefix = lo
        while prefix in model:
            prefix += 1
        assert ranges.prefix(lo) == prefix
    assert ranges.total == len(model)
    spans = list(ranges)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_range_set_clip() -> None:
    ranges = RangeSet([(0, 10), (20, 30), (40, 50)])
    ranges.clip(25)
    assert list(ranges) == [(0, 10), (20, 25)]
    ranges.clip(20)
    assert list(ranges) == [(0, 10)]


def test_chunk_size_bounds() -> None:
    block = MAX_BUFFER
    assert chunk_size(10, 4, block) == MIN_CHUNK - MIN_CHUNK % block
    assert chunk_size(1 << 40, 4, block) == MAX_CHUNK - MAX_CHUNK % block
    size = chunk_size(800 * MIB, 8, block)      # about 4 per stream
    assert size % block == 0 and 24 * MIB < size <= 25 * MIB


def test_queue_cuts_ranges_and_marks_the_last_chunk() -> None:
    queue = ChunkQueue([(0, 25)], 25, chunk=10, align=1, steal_min=1)
    chunks = [queue.take() for _ in range(3)]
    assert [(c.start, c.end, c.follow) for c in chunks if c] == [
        (0, 10, False), (10, 20, False), (20, 25, True)]
    assert queue.take() is None


def test_queue_adds_a_follower_when_the_end_is_done() -> None:
    queue = ChunkQueue([(0, 5), (10, 15)], 20, chunk=100, align=1,
                       steal_min=1)
    got = [(c.start, c.end, c.follow) for c in iter(queue.take, None)]
    assert got == [(0, 5, False), (10, 15, False), (20, 20, True)]
    empty = ChunkQueue([], 0, chunk=100, align=1, steal_min=1)
    only = empty.take()
    assert only is not None and (only.start, only.follow) == (0, True)


def test_steal_takes_half_of_the_slowest_chunk() -> None:
    queue = ChunkQueue([(0, 400)], 400, chunk=200, align=8, steal_min=16)
    fast, slow = queue.take(), queue.take()
    assert fast is not None and slow is not None
    fast.pos, slow.pos = 190, 208       # slow: 192 left; fast: 10
    thief = queue.steal()
    assert thief is not None
    assert (slow.end, slow.follow) == (304, False)
    assert (thief.start, thief.pos, thief.end, thief.follow) == (
        304, 304, 400, True)
    slow.pos = 300
    assert queue.stealable() is thief
    thief.pos = 380                     # 20 left: below 2 * steal_min
    assert queue.steal() is None
    for chunk in (fast, slow, thief):
        queue.release(chunk)
    assert queue.idle


def test_put_back_keeps_the_follow_duty() -> None:
    queue = ChunkQueue([], 0, chunk=10, align=1, steal_min=1)
    queue.take()
    queue.put_back([(3, 7), (9, 12)], 12)
    got = [(c.start, c.end, c.follow) for c in iter(queue.take, None)]
    assert got == [(3, 7, False), (9, 12, True)]
    assert isinstance(Chunk(0, 0, 0), Chunk)


# ---------------------------------------------------------------- order

def test_slots_print_in_order() -> None:
    stdout, stderr = io.BytesIO(), io.BytesIO()
    seq = Sequencer(Output(stdout, stderr))
    first, second, third = seq.slot(), seq.slot(), seq.slot()
    third.line("three")
    second.error("two")
    first.line("one")           # the head writes through
    assert stdout.getvalue() == b"one\n" and stderr.getvalue() == b""
    second.close()              # closed early: held until its turn
    assert stderr.getvalue() == b""
    first.close()
    assert stderr.getvalue() == b"two\r\n"
    assert stdout.getvalue() == b"one\nthree\n"
    third.close()
    assert seq.done


# ---------------------------------------------------------------- -l

class FakeClock:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_limiter_holds_all_streams_to_one_rate() -> None:
    clock = FakeClock()
    rate = kbps_to_bytes(8000)          # -l 8000: 1 024 000 bytes/s
    assert rate == 1_024_000
    limiter = RateLimiter(rate, clock=clock.time, sleep=clock.sleep)

    async def stream(requests: int) -> None:
        for _ in range(requests):
            await limiter.take(32_000)

    await asyncio.gather(*(stream(16) for _ in range(8)))
    moved = 8 * 16 * 32_000
    # what was sent could not have gone faster than the rate allows
    assert clock.now - 100.0 == pytest.approx(moved / rate, rel=1e-9)


async def test_limiter_saves_up_only_a_short_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000.0, clock=clock.time, sleep=clock.sleep)
    clock.now += 60                     # a minute idle
    await limiter.take(100)             # the burst (0.1 s) pays for it
    assert clock.now == 160.0
    await limiter.take(1000)            # then one second per 1000 bytes
    assert clock.now == pytest.approx(161.0)


def test_engine_gives_the_limit_to_the_context() -> None:
    out = Output(io.BytesIO(), io.BytesIO())
    engine = TransferEngine(object(), out,  # type: ignore[arg-type]
                            limit_kbps=100)
    assert engine.ctx.limiter is not None
    assert engine.ctx.limiter.rate == 100 * 1024 / 8


# ---------------------------------------------------------------- journal

def test_journal_round_trip(tmp_path: Path) -> None:
    entry = journal.Journal("/r/f", 10, 5, "/l/.f.psftp-1",
                            RangeSet([(0, 3), (6, 8)]))
    path = str(tmp_path / "j")
    assert journal.save(path, entry)
    back = journal.load(path)
    assert back is not None and back == entry
    assert back.matches("/r/f", 10, 5) and not back.matches("/r/f", 11, 5)
    (tmp_path / "j").write_text("{not json")
    assert journal.load(path) is None
    mine = journal.download_path({"XDG_STATE_HOME": "/s"}, "/a/b")
    assert mine.startswith("/s/psftp-shell/journal/get-")
    assert mine == journal.download_path({"XDG_STATE_HOME": "/s"}, "/a/./b")
    assert mine != journal.download_path({"XDG_STATE_HOME": "/s"}, "/a/c")
    one = journal.upload_path({"XDG_STATE_HOME": "/s"}, "h", "/r", 1, 2)
    two = journal.upload_path({"XDG_STATE_HOME": "/s"}, "h", "/r", 1, 3)
    assert one.startswith("/s/psftp-shell/journal/") and one != two


# ---------------------------------------------------------------- rig

class SlowReader:
    """A pipe that waits *delay* seconds before each packet."""

    def __init__(self, stream: asyncio.StreamReader, delay: float) -> None:
        self._stream = stream
        self._delay = delay

    async def readexactly(self, n: int) -> bytes:
        if n == 9:      # a packet header: the client reads one per reply
            await asyncio.sleep(self._delay)
        return await self._stream.readexactly(n)


class ProcTransport:
    """sftp-server processes; client 0 is the control, 1.. the pool."""

    def __init__(self, server: str, cwd: Path) -> None:
        self.server = server
        self.cwd = cwd
        self.procs: list[asyncio.subprocess.Process] = []
        self.clients: list[SFTPClient] = []   # in the order they started
        self.numbered: dict[int, SFTPClient] = {}   # by the order opened
        self.mangles: dict[int, Mangle] = {}
        self.delays: dict[int, float] = {}
        self.late: dict[int, float] = {}
        self.opened = 0

    async def open_client(self) -> SFTPClient:
        index = self.opened
        self.opened += 1
        await asyncio.sleep(self.late.get(index, 0))
        proc = await asyncio.create_subprocess_exec(
            self.server, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, cwd=self.cwd)
        self.procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None
        reader: object = proc.stdout
        if index in self.mangles:
            reader = ManglingReader(proc.stdout, self.mangles[index])
        if index in self.delays:
            reader = SlowReader(proc.stdout, self.delays[index])
        client = SFTPClient(reader, PipeWriter(proc.stdin))  # type: ignore
        await client.start()
        self.clients.append(client)
        self.numbered[index] = client
        return client

    def kill(self, index: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.procs[index].kill()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


@dataclass
class PRig:
    """An engine with a pool of sftp-server streams."""

    engine: TransferEngine
    transport: ProcTransport
    remote: Path
    local: Path
    stdout: io.BytesIO
    stderr: io.BytesIO
    seen: Recorder

    def messages(self) -> str:
        return self.stderr.getvalue().decode()

    async def get(self, name: str, dest: str, **flags: bool) -> bool:
        opts = {"preserve": False, "resume": False, "fsync": False,
                **flags}
        return await within(self.engine.download(
            str(self.remote / name), dest, None, **opts))

    async def put(self, src: str, name: str, **flags: bool) -> bool:
        opts = {"preserve": False, "resume": False, "fsync": False,
                **flags}
        return await within(self.engine.upload(
            src, str(self.remote / name), **opts))

    def pool_process(self, stream: int) -> int:
        """The transport's index of the process behind pool *stream*."""
        assert self.engine.pool is not None
        streams = self.engine.pool.ready
        client = streams[stream].client
        return next(i for i, c in self.transport.numbered.items()
                    if c is client)


async def make_rig(tmp_path: Path, server: str, streams: int = 3, *,
                   transport: ProcTransport | None = None,
                   remote: Path | None = None,
                   buffer_size: int | None = None,
                   max_requests: int | None = None) -> PRig:
    """An engine on *streams* streams: sftp-server processes, or the
    given *transport* (whose files are in *remote*); *buffer_size* and
    *max_requests* are ``-B`` and ``-R``."""
    remote = remote or tmp_path / "remote"
    local = tmp_path / "local"
    remote.mkdir(exist_ok=True)
    local.mkdir(exist_ok=True)
    transport = transport or ProcTransport(server, remote)
    client = await within(transport.open_client())
    stdout, stderr = io.BytesIO(), io.BytesIO()
    out = Output(stdout, stderr, quiet=True)
    engine = await within(TransferEngine.create(
        client, out, transport=transport, streams=streams,
        buffer_size=buffer_size, max_requests=max_requests))
    engine.local_cwd = str(local)
    engine.ctx.chunk = CHUNK
    engine.ctx.share_min = 0
    engine.ctx.environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    seen = Recorder()
    engine.observer = seen
    return PRig(engine, transport, remote, local, stdout, stderr, seen)


@pytest.fixture
async def prig(tmp_path: Path, sftp_server_bin: str
               ) -> AsyncIterator[PRig]:
    rig = await make_rig(tmp_path, sftp_server_bin)
    yield rig
    await rig.transport.close()


async def test_chunked_copies_onto_their_own_source_are_refused(
        prig: PRig) -> None:
    data = payload(5 * CHUNK + 7)
    path = prig.remote / "f"
    path.write_bytes(data)
    assert not await prig.get("f", str(path))
    assert not await prig.put(str(path), "f")
    assert path.read_bytes() == data
    assert prig.messages() == (
        f'download "{path}": "{path}" is the same file\r\n'
        f'upload "{path}": "{path}" is the same file\r\n')
    assert leftovers(prig.remote) == []


def leftovers(*dirs: Path) -> list[str]:
    """Temporaries left in *dirs*."""
    return [p.name for d in dirs for p in d.iterdir()
            if TEMP_MARK in p.name]


def get_journal(rig: PRig, name: str) -> Path:
    """Where the journal of *rig*'s download to *name* is kept."""
    return Path(journal.download_path(rig.engine.ctx.environ,
                                      str(rig.local / name)))


# ---------------------------------------------------------------- sizes

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + MAX_BUFFER + 3]


@pytest.mark.parametrize("size", SIZES)
async def test_chunked_copies_are_byte_identical(prig: PRig,
                                                 size: int) -> None:
    data = payload(size, seed=size % 7)
    (prig.remote / "f").write_bytes(data)
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == data
    assert await prig.put("down", "up")
    assert (prig.remote / "up").read_bytes() == data
    assert prig.seen.moved == 2 * size
    assert prig.seen.errors == [None, None]
    assert prig.messages() == ""
    assert leftovers(prig.local, prig.remote) == []


async def test_a_big_file_uses_every_stream(tmp_path: Path,
                                            sftp_server_bin: str) -> None:
    rig = await make_rig(tmp_path, sftp_server_bin, streams=4)
    try:
        data = payload(24 * CHUNK + 5)
        (rig.remote / "f").write_bytes(data)
        assert await rig.get("f", "down")
        assert set(rig.seen.streams) == {0, 1, 2, 3}
        assert ("command", 4) in rig.seen.events
        rig.seen.streams.clear()
        assert await rig.put("down", "up")
        assert set(rig.seen.streams) == {0, 1, 2, 3}
        assert (rig.local / "down").read_bytes() == data
        assert (rig.remote / "up").read_bytes() == data
    finally:
        await rig.transport.close()


@pytest.mark.parametrize("upload", [False, True])
async def test_idle_streams_steal_from_the_slowest(
        tmp_path: Path, sftp_server_bin: str, upload: bool) -> None:
    rig = await make_rig(tmp_path, sftp_server_bin, streams=4)
    try:
        assert rig.engine.pool is not None
        rig.engine.pool.requests = 2        # so chunks are not all asked
        rig.engine.ctx.chunk = 16 * MAX_BUFFER
        data = payload(32 * MAX_BUFFER)     # two chunks for four streams
        # the first pool stream is slow: long enough that the others,
        # done with their chunk, always steal from it on a busy machine
        rig.transport.delays = {1: 0.25}
        await rig.engine.pool.streams()     # all open before the copy
        if upload:
            (rig.local / "up").write_bytes(data)
            assert await rig.put("up", "f")
            assert (rig.remote / "f").read_bytes() == data
        else:
            (rig.remote / "f").write_bytes(data)
            assert await rig.get("f", "down")
            assert (rig.local / "down").read_bytes() == data
        assert len(set(rig.seen.streams)) >= 3      # two had to steal
        slow = rig.transport.numbered[1]   # (a slow start: not clients[1])
        streams = rig.engine.pool.ready
        index = next(s.index for s in streams if s.client is slow)
        slow_share = rig.seen.streams.count(index)
        assert slow_share < 16              # less than its chunk
    finally:
        await rig.transport.close()


async def test_late_streams_join_a_running_copy(tmp_path: Path,
                                                 sftp_server_bin: str
                                                 ) -> None:
    rig = await make_rig(tmp_path, sftp_server_bin, streams=3)
    try:
        rig.transport.late = {2: 0.3, 3: 0.3}    # pool streams 2 and 3
        rig.transport.delays = {1: 0.004}       # the first one is slow
        data = payload(40 * CHUNK)
        (rig.remote / "f").write_bytes(data)
        at_first: list[int] = []

        def first(job: object) -> None:
            if not at_first:
                at_first.append(len(rig.transport.clients))

        rig.seen.on_advance = first
        assert await rig.get("f", "down")
        assert (rig.local / "down").read_bytes() == data
        assert at_first == [2]      # control + one stream: no waiting
        assert set(rig.seen.streams) == {0, 1, 2}
        assert rig.seen.events[0] == ("command", 3)
    finally:
        await rig.transport.close()


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("direction", ["get", "put"])
async def test_a_lost_stream_does_not_lose_the_copy(prig: PRig,
                                                    direction: str) -> None:
    data = payload(30 * CHUNK + 11)
    (prig.remote / "f").write_bytes(data)
    (prig.local / "f").write_bytes(data)
    killed: list[int] = []

    def kill(job: object) -> None:
        streams = prig.seen.streams
        if not killed and streams and len(prig.seen.events) > 20:
            killed.append(streams[-1])
            prig.transport.kill(prig.pool_process(streams[-1]))

    prig.seen.on_advance = kill
    if direction == "get":
        assert await prig.get("f", "down")
        assert (prig.local / "down").read_bytes() == data
    else:
        assert await prig.put("f", "up")
        assert (prig.remote / "up").read_bytes() == data
    assert killed
    assert prig.messages() == ""
    assert leftovers(prig.local, prig.remote) == []


async def test_every_stream_lost_falls_back_to_control(prig: PRig) -> None:
    data = payload(20 * CHUNK)
    (prig.remote / "f").write_bytes(data)

    def kill_all(job: object) -> None:
        for stream in range(3):
            prig.transport.kill(prig.pool_process(stream))

    prig.seen.on_advance = kill_all
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == data


async def test_read_error_fails_the_file(tmp_path: Path,
                                         sftp_server_bin: str) -> None:
    """A READ refused mid-file fails it with sftp's line; the bytes
    that arrived stay in a temporary with its journal, as at ``-n 1``,
    and reget moves only the rest."""
    rig = await make_rig(tmp_path, sftp_server_bin)
    try:
        for index in (1, 2, 3):
            rig.transport.mangles[index] = nth_data(3, failure_status)
        data = payload(20 * CHUNK)
        (rig.remote / "f").write_bytes(data)
        (rig.local / "down").write_bytes(b"precious")
        assert not await rig.get("f", "down")
        assert rig.messages() == (
            f'read remote "{rig.remote}/f" : Failure\r\n')
        assert (rig.local / "down").read_bytes() == b"precious"
        found = journal.load(str(get_journal(rig, "down")))
        assert found is not None
        assert leftovers(rig.local) == [Path(found.temp).name]
        kept = Path(found.temp).read_bytes()
        assert 0 < found.done.total < len(data)
        for start, end in found.done:
            assert kept[start:end] == data[start:end]
        rig.transport.mangles.clear()
        rig.seen.events.clear()
        assert await rig.get("f", "down", resume=True)
        assert (rig.local / "down").read_bytes() == data
        assert rig.seen.moved == len(data) - found.done.total
        assert leftovers(rig.local) == []
        assert not get_journal(rig, "down").exists()
    finally:
        await rig.transport.close()


async def test_no_room_is_a_clear_error(prig: PRig,
                                        monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    size = 8 * CHUNK
    (prig.remote / "f").write_bytes(payload(size))
    monkeypatch.setattr("psftp_shell.engine.getjob.free_space", lambda p: 1000)
    assert not await prig.get("f", "down")
    assert prig.messages() == (f'local "down": not enough free space '
                               f"({size} bytes needed, 1000 available)\r\n")
    (prig.local / "up").write_bytes(payload(size))

    async def tiny(self: SFTPClient, path: str) -> StatVFS:
        return StatVFS(4096, 4096, 10, 1, 1, 0, 0, 0, 0, 0, 255)

    monkeypatch.setattr(SFTPClient, "statvfs", tiny)
    assert not await prig.put("up", "up")
    assert prig.messages().endswith(
        f'remote "{prig.remote}/up": not enough free space ({size} bytes '
        "needed, 4096 available)\r\n")
    assert leftovers(prig.local, prig.remote) == []
    assert not (prig.local / "down").exists()
    assert not (prig.remote / "up").exists()


# ---------------------------------------------------------------- resume

def stop_after(rig: PRig, nbytes: int) -> dict[str, bool]:
    flag = {"stop": False}
    rig.engine.is_interrupted = lambda: flag["stop"]

    def check(job: object) -> None:
        if rig.seen.moved >= nbytes:
            flag["stop"] = True

    rig.seen.on_advance = check
    return flag


async def test_interrupted_get_is_finished_by_reget(prig: PRig) -> None:
    data = payload(40 * CHUNK + 7)
    (prig.remote / "f").write_bytes(data)
    flag = stop_after(prig, 10 * CHUNK)
    assert not await prig.get("f", "down")
    assert not (prig.local / "down").exists()
    assert len(leftovers(prig.local)) == 1
    assert get_journal(prig, "down").is_file()
    assert prig.messages() == ""
    first = prig.seen.moved
    flag["stop"] = False
    prig.seen.on_advance = None
    prig.seen.events.clear()
    assert await prig.get("f", "down", resume=True)
    assert (prig.local / "down").read_bytes() == data
    assert leftovers(prig.local) == []
    assert not get_journal(prig, "down").exists()
    # only what was missing crossed again
    assert prig.seen.moved == len(data) - prig.seen.events[1][1]
    assert prig.seen.events[1][1] >= first - 3 * 64 * MAX_BUFFER
    assert prig.seen.events[1][1] > 0


async def test_a_journal_whose_temporary_is_gone_is_dropped(
        prig: PRig) -> None:
    """Download journals are kept in the state directory: one whose
    temporary the user removed goes when another download keeps one.
    Another tool's journal (not ours to read) and an upload's stay."""
    for name in ("f", "g"):
        (prig.remote / name).write_bytes(payload(20 * CHUNK))
    state = Path(journal.state_dir(prig.engine.ctx.environ))
    state.mkdir(parents=True)
    (state / "get-future.json").write_text('{"version": 2}\n')
    (state / "0123-4567.json").write_text("{}\n")
    flag = stop_after(prig, 5 * CHUNK)
    assert not await prig.get("f", "down")
    first = get_journal(prig, "down")
    assert first.is_file()
    for temp in leftovers(prig.local):
        (prig.local / temp).unlink()          # the user's rm
    prig.seen.events.clear()
    flag["stop"] = False
    assert not await prig.get("g", "other")
    assert not first.exists()
    assert get_journal(prig, "other").is_file()
    assert sorted(p.name for p in state.iterdir()) == sorted(
        ["get-future.json", "0123-4567.json",
         get_journal(prig, "other").name])


async def test_reget_of_a_parallel_get_works_at_n1(prig: PRig) -> None:
    data = payload(20 * CHUNK)
    (prig.remote / "f").write_bytes(data)
    stop_after(prig, 5 * CHUNK)
    assert not await prig.get("f", "down")
    prig.seen.on_advance = None
    control = prig.transport.numbered[0]
    single = await within(TransferEngine.create(
        control, Output(io.BytesIO(), io.BytesIO())))
    single.local_cwd = str(prig.local)
    single.ctx.environ = prig.engine.ctx.environ
    assert await within(single.download(
        str(prig.remote / "f"), "down", None, preserve=False, resume=True,
        fsync=False))
    assert (prig.local / "down").read_bytes() == data
    assert leftovers(prig.local) == []


async def test_interrupted_put_is_finished_by_reput(prig: PRig,
                                                    tmp_path: Path) -> None:
    data = payload(40 * CHUNK + 3)
    (prig.local / "f").write_bytes(data)
    flag = stop_after(prig, 10 * CHUNK)
    assert not await prig.put("f", "up")
    prig.seen.on_advance = None
    assert not (prig.remote / "up").exists()
    assert len(leftovers(prig.remote)) == 1     # the temporary
    state = tmp_path / "state" / "psftp-shell" / "journal"
    assert len(list(state.iterdir())) == 1
    flag["stop"] = False
    assert await prig.put("f", "up", resume=True)
    assert (prig.remote / "up").read_bytes() == data
    assert leftovers(prig.remote) == []
    assert list(state.iterdir()) == []
    assert prig.messages() == ""


async def test_reput_through_a_link_finishes_the_file_it_names(
        prig: PRig, tmp_path: Path) -> None:
    """A put to a link whose file is in another directory stops half
    way; reput finishes that file's temporary, keeps the link, and
    leaves no temporary, no journal and no open handle behind."""
    data = payload(40 * CHUNK + 3)
    (prig.local / "f").write_bytes(data)
    (prig.remote / "elsewhere").mkdir()
    real = prig.remote / "elsewhere" / "real"
    real.write_bytes(b"old")
    (prig.remote / "up").symlink_to("elsewhere/real")
    flag = stop_after(prig, 10 * CHUNK)
    assert not await prig.put("f", "up")
    prig.seen.on_advance = None
    assert real.read_bytes() == b"old"
    assert len(leftovers(prig.remote / "elsewhere")) == 1
    flag["stop"] = False
    assert await prig.put("f", "up", resume=True)
    assert (prig.remote / "up").is_symlink()
    assert real.read_bytes() == data
    assert leftovers(prig.remote, prig.remote / "elsewhere") == []
    state = tmp_path / "state" / "psftp-shell" / "journal"
    assert list(state.iterdir()) == []
    assert prig.messages() == ""


@pytest.mark.parametrize("lexical", [False, True])
async def test_a_put_to_a_link_loop_ends(prig: PRig,
                                          monkeypatch: pytest.MonkeyPatch,
                                          lexical: bool) -> None:
    """``ln -s loop loop``: sftp-server's REALPATH fails on it; a server
    whose REALPATH does not resolve links gives the path back.  Either
    way the put fails as sftp's in-place OPEN does, once."""
    if lexical:
        async def same(self: SFTPClient, path: str) -> str:
            return path
        monkeypatch.setattr(SFTPClient, "realpath", same)
    (prig.local / "f").write_bytes(payload(5 * CHUNK))
    (prig.remote / "loop").symlink_to("loop")
    assert not await prig.put("f", "loop")
    assert prig.messages().startswith(
        f'dest open "{prig.remote / "loop"}": ')
    assert leftovers(prig.remote) == []


async def test_reget_without_journal_appends_like_sftp(prig: PRig) -> None:
    data = payload(12 * CHUNK + 1)
    (prig.remote / "f").write_bytes(data)
    (prig.local / "part").write_bytes(data[:3 * CHUNK + 5])
    assert await prig.get("f", "part", resume=True)
    assert (prig.local / "part").read_bytes() == data


async def test_cancel_keeps_what_arrived(prig: PRig) -> None:
    data = payload(40 * CHUNK)
    (prig.remote / "f").write_bytes(data)
    started = asyncio.Event()

    def go(job: object) -> None:
        if prig.seen.moved > 5 * CHUNK:
            started.set()

    prig.seen.on_advance = go
    task = asyncio.ensure_future(prig.get("f", "down"))
    await within(started.wait())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert get_journal(prig, "down").is_file()
    prig.seen.on_advance = None
    assert await prig.get("f", "down", resume=True)
    assert (prig.local / "down").read_bytes() == data
    assert leftovers(prig.local) == []


async def test_checkpoints_record_only_data_in_place(
        prig: PRig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("psftp_shell.engine.checkpoints.CHECKPOINT_SECONDS",
                        0.0)
    prig.transport.delays = {1: 0.01, 2: 0.01, 3: 0.01}   # slow streams
    data = payload(30 * CHUNK + 5)
    (prig.remote / "f").write_bytes(data)
    jpath = get_journal(prig, "down")
    seen: list[journal.Journal] = []

    def look(job: object) -> None:
        if len(prig.seen.events) % 8:
            return
        found = journal.load(str(jpath))
        if found is not None and found.done.total:
            with open(found.temp, "rb") as temp:
                for start, end in found.done:   # a crash now: all true?
                    assert os.pread(temp.fileno(), end - start,
                                    start) == data[start:end]
            seen.append(found)

    prig.seen.on_advance = look
    assert await prig.get("f", "down")
    assert len(seen) > 3            # the journal grew as data came in
    assert seen[-1].done.total > seen[0].done.total
    assert not jpath.exists() and leftovers(prig.local) == []
    assert (prig.local / "down").read_bytes() == data


# ---------------------------------------------------------------- sources

def grow_once(prig: PRig, path: Path, extra: bytes) -> None:
    """Append *extra* to *path* as the copy's first data moves."""
    def grow(job: object) -> None:
        if prig.seen.on_advance is not None:
            prig.seen.on_advance = None
            with open(path, "ab") as f:
                f.write(extra)

    prig.seen.on_advance = grow


async def test_a_growing_source_is_followed(prig: PRig) -> None:
    src = prig.remote / "f"
    src.write_bytes(payload(12 * CHUNK))
    grow_once(prig, src, payload(CHUNK + 17, seed=3))
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == src.read_bytes()
    assert prig.messages() == (
        f'Source file "{src}" changed during transfer\r\n')


async def test_a_shrinking_source_leaves_no_stale_bytes(prig: PRig) -> None:
    src = prig.remote / "f"
    src.write_bytes(payload(12 * CHUNK))

    def shrink(job: object) -> None:
        if prig.seen.on_advance is not None:
            prig.seen.on_advance = None
            os.truncate(src, 5 * CHUNK + 3)

    prig.seen.on_advance = shrink
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == src.read_bytes()
    assert "changed during transfer" in prig.messages()


@pytest.mark.parametrize("size", [12 * CHUNK, 5 * CHUNK + 3])
@pytest.mark.parametrize("upload", [False, True])
async def test_a_source_rewritten_meanwhile_is_copied_again(
        prig: PRig, size: int, upload: bool) -> None:
    # new contents (zeros: blocks a fresh temporary may skip), a new
    # mtime, the same size or a smaller one: nothing read before the
    # change may stay in the copy
    src = (prig.local if upload else prig.remote) / "f"
    src.write_bytes(payload(12 * CHUNK))

    def rewrite(job: object) -> None:
        if prig.seen.on_advance is not None:
            prig.seen.on_advance = None
            with open(src, "r+b") as f:
                f.write(bytes(size))
                f.truncate(size)
            os.utime(src, (5, 5))

    prig.seen.on_advance = rewrite
    if upload:
        assert await prig.put("f", "copy")
        copy = prig.remote / "copy"
    else:
        assert await prig.get("f", "copy")
        copy = prig.local / "copy"
    assert copy.read_bytes() == bytes(size)
    assert "changed during transfer" in prig.messages()


async def test_a_growing_upload_source_is_followed(prig: PRig) -> None:
    src = prig.local / "f"
    src.write_bytes(payload(12 * CHUNK))
    grow_once(prig, src, payload(2 * CHUNK + 1, seed=4))
    assert await prig.put("f", "up")
    assert (prig.remote / "up").read_bytes() == src.read_bytes()
    assert "changed during transfer" in prig.messages()


# ---------------------------------------------------------------- attrs

async def test_chunked_preserve_and_modes(prig: PRig) -> None:
    src = prig.remote / "f"
    src.write_bytes(payload(9 * CHUNK))
    src.chmod(0o640)
    os.utime(src, (1_000_000_000, 1_100_000_000))
    (prig.local / "kept").write_bytes(b"old")
    (prig.local / "kept").chmod(0o604)
    assert await prig.get("f", "kept")
    assert stat.S_IMODE((prig.local / "kept").stat().st_mode) == 0o604
    os.utime(src, (1_000_000_000, 1_100_000_000))   # reading moved atime
    assert await prig.get("f", "pres", preserve=True, fsync=True)
    st = (prig.local / "pres").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_atime, st.st_mtime) == (1_000_000_000, 1_100_000_000)
    assert await prig.put("pres", "back", preserve=True, fsync=True)
    st = (prig.remote / "back").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_mtime == 1_100_000_000
    assert (prig.remote / "back").read_bytes() == src.read_bytes()


def build_tree(root: Path, files: int = 60) -> None:
    """Nested directories of files, some big enough to be chunked."""
    rng = random.Random(files)
    dirs = [root]
    for i in range(8):
        sub = rng.choice(dirs) / f"d{i}"
        sub.mkdir()
        dirs.append(sub)
    for i in range(files):
        size = rng.choice([0, 1, 100, 5000, MAX_BUFFER + 1, 3 * CHUNK + 9])
        path = rng.choice(dirs) / f"f{i}"
        path.write_bytes(payload(size, seed=i))
        path.chmod(rng.choice([0o600, 0o644, 0o640]))
        os.utime(path, (1_000_000_000 + i, 1_000_000_000 + 2 * i))
    (dirs[3]).chmod(0o555)
    for d in dirs:
        os.utime(d, (1_200_000_000, 1_200_000_000))


def describe(root: Path) -> dict[str, tuple[object, ...]]:
    tree: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        digest = hashlib.sha256(path.read_bytes()).hexdigest() \
            if path.is_file() else ""
        tree[rel] = (oct(st.st_mode), int(st.st_mtime), digest)
    return tree


@contextlib.contextmanager
def writable(root: Path) -> Iterator[None]:
    try:
        yield
    finally:
        for path in root.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)


async def test_trees_cross_identical_with_attributes(
        prig: PRig, tmp_path: Path, sftp_server_bin: str) -> None:
    src = prig.remote / "tree"
    src.mkdir()
    build_tree(src)
    with writable(prig.remote), writable(prig.local):
        assert await within(prig.engine.download_dir(
            str(src), "tree", None, preserve=True, resume=False,
            fsync=False))
        assert describe(prig.local / "tree") == describe(src)
        assert await within(prig.engine.upload_dir(
            "tree", str(prig.remote / "back"), preserve=True, resume=False,
            fsync=False))
        assert describe(prig.remote / "back") == describe(src)
        assert leftovers(prig.local, prig.remote) == []
        parallel = prig.stdout.getvalue(), prig.messages()
        # the same lines, in the same order, as a one-stream engine's
        (tmp_path / "one").mkdir()
        single = await make_rig(tmp_path / "one", sftp_server_bin, 1)
        try:
            one = single.remote / "tree"
            one.mkdir()
            build_tree(one)
            with writable(single.remote), writable(single.local):
                await single.engine.download_dir(
                    str(one), "tree", None, preserve=True, resume=False,
                    fsync=False)
                await single.engine.upload_dir(
                    "tree", str(single.remote / "back"), preserve=True,
                    resume=False, fsync=False)
        finally:
            await single.transport.close()
        base = str(tmp_path / "one").encode()
        ours = parallel[0].replace(str(tmp_path).encode(), base)
        assert ours == single.stdout.getvalue()
        assert parallel[1] == single.messages() == ""
        assert ours.count(b"Retrieving ") == 9


async def test_zero_blocks_are_not_written(prig: PRig) -> None:
    block = MAX_BUFFER
    data = (bytes(3 * block) + payload(block + 5) + bytes(9 * block)
            + payload(7) + bytes(4 * block + 1))
    (prig.local / "f").write_bytes(data)
    assert await prig.put("f", "up")
    up = prig.remote / "up"
    assert up.read_bytes() == data
    assert up.stat().st_blocks * 512 < len(data) // 2   # holes, not sent
    assert await prig.get("up", "down")
    assert (prig.local / "down").read_bytes() == data
    assert prig.messages() == ""


# ---------------------------------------------------------------- sshd

def same_bytes(one: Path, two: Path) -> bool:
    """Compare two (big) files block by block."""
    with open(one, "rb") as a, open(two, "rb") as b:
        while True:
            block = a.read(1 << 22)
            if block != b.read(1 << 22):
                return False
            if not block:
                return True


SPARSE_GIB = float(os.environ.get("PSFTP_TEST_SPARSE_GIB", "4.5"))
"""The sparse test's size (4.5 GiB by default, past the 2**31 and 2**32
marks)."""


@pytest.fixture
async def srig(sshd: PrivateSSHD, remote_dir: Path,
               tmp_path: Path) -> AsyncIterator[PRig]:
    """An engine on four SSH connections to the private sshd."""
    connector = Connector(SSHTarget(host=HOST_ALIAS,
                                    config_file=str(sshd.ssh_config),
                                    batch_mode=True), BatchPrompter())
    transport = SSHTransport(connector)
    rig = await make_rig(tmp_path, "", 4, remote=remote_dir,
                         transport=transport)  # type: ignore[arg-type]
    yield rig
    await transport.close()


@pytest.mark.sshd
@pytest.mark.parametrize("size", [0, 1, CHUNK + 1, 9 * CHUNK + 5])
async def test_sshd_chunked_sizes(srig: PRig, size: int) -> None:
    data = payload(size, seed=5)
    (srig.remote / "f").write_bytes(data)
    assert await srig.get("f", "down")
    assert (srig.local / "down").read_bytes() == data
    assert await srig.put("down", "up")
    assert (srig.remote / "up").read_bytes() == data
    assert srig.messages() == ""
    assert leftovers(srig.local, srig.remote) == []


@pytest.mark.sshd
@pytest.mark.slow
async def test_sshd_several_gib_sparse(srig: PRig) -> None:
    srig.engine.ctx.chunk = None            # the real chunk sizes
    srig.engine.ctx.share_min = 4 * MIB
    size = int(SPARSE_GIB * 1024) * MIB + 4097
    src = srig.remote / "sparse"
    with open(src, "wb") as f:
        islands = [0, (1 << 31) - 500, (1 << 32) - 500, size - 1000]
        for offset in (o for o in islands if o + 1000 <= size):
            f.seek(offset)
            f.write(payload(1000, seed=offset % 11))
        f.truncate(size)
    assert await within(srig.engine.download(
        str(src), "down", None, preserve=False, resume=False,
        fsync=False), 600)
    assert set(srig.seen.streams) == {0, 1, 2, 3}
    assert same_bytes(srig.local / "down", src)
    assert await within(srig.engine.upload(
        "down", str(srig.remote / "up"), preserve=False, resume=False,
        fsync=False), 600)
    assert same_bytes(srig.remote / "up", src)
    assert leftovers(srig.local, srig.remote) == []


@pytest.mark.sshd
async def test_sshd_trees_with_attributes(srig: PRig) -> None:
    src = srig.remote / "tree"
    src.mkdir()
    build_tree(src, files=80)
    with writable(srig.remote), writable(srig.local):
        assert await within(srig.engine.download_dir(
            str(src), "tree", None, preserve=True, resume=False,
            fsync=False))
        assert describe(srig.local / "tree") == describe(src)
        assert await within(srig.engine.upload_dir(
            "tree", str(srig.remote / "back"), preserve=True,
            resume=False, fsync=True))
        assert describe(srig.remote / "back") == describe(src)
    assert srig.messages() == ""
    assert len(set(srig.seen.streams)) == 4


@pytest.mark.sshd
async def test_sshd_interrupted_get_and_reget(srig: PRig) -> None:
    data = payload(60 * CHUNK + 9)
    (srig.remote / "f").write_bytes(data)
    (srig.local / "down").write_bytes(b"precious")
    stop_after(srig, 20 * CHUNK)
    assert not await srig.get("f", "down")
    assert (srig.local / "down").read_bytes() == b"precious"
    assert get_journal(srig, "down").is_file()
    srig.engine.is_interrupted = lambda: False
    srig.seen.on_advance = None
    srig.seen.events.clear()
    assert await srig.get("f", "down", resume=True)
    assert (srig.local / "down").read_bytes() == data
    assert srig.seen.moved < len(data)
    assert leftovers(srig.local) == []
    assert srig.messages() == ""


# ---------------------------------------------------------------- windows

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(tuner: WindowTuner, client: object, clock: Clock, rtt: float,
         per_trip: Callable[[int], int], trips: int) -> list[int]:
    """Deliver *per_trip(window)* bytes each round trip, in 8 parts."""
    tuner.round_trip(client, rtt)           # type: ignore[arg-type]
    windows = []
    for _ in range(trips):
        amount = per_trip(tuner.window(client))   # type: ignore[arg-type]
        for _ in range(8):
            clock.now += rtt / 8
            tuner.received(client, amount // 8)   # type: ignore[arg-type]
        windows.append(tuner.window(client))      # type: ignore[arg-type]
    return windows


def test_window_doubles_while_it_is_the_limit() -> None:
    clock, applied = Clock(), []
    tuner = WindowTuner(lambda c, n: applied.append(n), 2,
                        budget=64 * MIB, clock=clock)
    # a window-limited stream: one window arrives per round trip
    windows = feed(tuner, "c", clock, 0.05, lambda w: w, 8)
    assert windows[-1] == 32 * MIB                  # budget / 2 streams
    assert applied == sorted(applied) and applied[-1] == 32 * MIB
    steps = list(zip([DEFAULT_WINDOW] + windows, windows, strict=False))
    assert all(a <= b <= 2.5 * a for a, b in steps)   # about doubling


def test_window_settles_at_twice_the_path() -> None:
    clock = Clock()
    tuner = WindowTuner(lambda c, n: None, 1, clock=clock)
    bdp = 3 * MIB                 # what the path carries per round trip
    windows = feed(tuner, "c", clock, 0.1, lambda w: min(w, bdp), 10)
    assert windows[-1] == windows[-4] == pytest.approx(2 * bdp, rel=0.01)


def test_window_stays_on_loopback() -> None:
    clock, applied = Clock(), []
    tuner = WindowTuner(lambda c, n: applied.append(n), 1, clock=clock)
    feed(tuner, "c", clock, 0.0002, lambda w: w, 50)
    assert applied == [] and tuner.window("c") == DEFAULT_WINDOW  # type: ignore


class Recording(WindowTuner):
    """A tuner that records what the pipelines tell it."""

    def __init__(self) -> None:
        super().__init__(lambda c, n: None, 1)
        self.trips: list[float] = []
        self.bytes = 0

    def round_trip(self, client: SFTPClient, seconds: float) -> None:
        self.trips.append(seconds)

    def received(self, client: SFTPClient, nbytes: int) -> None:
        self.bytes += nbytes


@pytest.mark.parametrize("streams", [1, 3])
async def test_downloads_feed_the_tuner(tmp_path: Path, sftp_server_bin: str,
                                        streams: int) -> None:
    rig = await make_rig(tmp_path, sftp_server_bin, streams)
    try:
        tuner = Recording()
        rig.engine.ctx.tuner = tuner
        data = payload(12 * CHUNK)
        (rig.remote / "f").write_bytes(data)
        assert await rig.get("f", "down")
        assert tuner.bytes == len(data)
        assert tuner.trips and all(0 < t < 10 for t in tuner.trips)
    finally:
        await rig.transport.close()


def test_engine_tunes_only_transports_that_can() -> None:
    out = Output(io.BytesIO(), io.BytesIO())

    class CanTune(ProcTransport):
        def set_window(self, client: SFTPClient, nbytes: int) -> None:
            pass

    plain = TransferEngine(object(), out,  # type: ignore[arg-type]
                           transport=ProcTransport("", Path()), streams=4)
    tuned = TransferEngine(object(), out,  # type: ignore[arg-type]
                           transport=CanTune("", Path()), streams=4)
    assert plain.ctx.tuner is None
    assert tuned.ctx.tuner is not None and tuned.ctx.tuner.cap == 64 * MIB


@pytest.mark.parametrize("direction", ["get", "put"])
async def test_small_files_survive_a_lost_stream(tmp_path: Path,
                                                 sftp_server_bin: str,
                                                 direction: str) -> None:
    rig = await make_rig(tmp_path, sftp_server_bin)
    try:
        rig.engine.ctx.share_min = 4 * MIB      # every file whole
        tree = (rig.remote if direction == "get" else rig.local) / "t"
        tree.mkdir()
        for i in range(40):
            (tree / f"f{i}").write_bytes(payload(3 * MAX_BUFFER + i, i))
        killed: list[int] = []

        def kill(job: object) -> None:
            if not killed and len(rig.seen.streams) > 12:
                killed.append(rig.seen.streams[-1])
                rig.transport.kill(rig.pool_process(killed[0]))

        rig.seen.on_advance = kill
        if direction == "get":
            assert await within(rig.engine.download_dir(
                str(tree), "t", None, preserve=False, resume=False,
                fsync=False))
            copy = rig.local / "t"
        else:
            assert await within(rig.engine.upload_dir(
                "t", str(rig.remote / "t"), preserve=False, resume=False,
                fsync=False))
            copy = rig.remote / "t"
        assert killed
        contents = {k: v[2] for k, v in describe(tree).items()}
        assert {k: v[2] for k, v in describe(copy).items()} == contents
        assert rig.messages() == ""
        assert leftovers(rig.local, rig.remote, copy) == []
    finally:
        await rig.transport.close()


async def test_the_end_of_file_probe_rides_with_the_last_reads(
        prig: PRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The READ that finds the end of file leaves before the last data
    comes back, so it costs no round trip of its own."""
    src = prig.remote / "f"
    src.write_bytes(payload(12 * CHUNK + 5))
    size = src.stat().st_size
    order: list[tuple[str, int]] = []
    read_nowait = SFTPCore.read_nowait

    def spy(self: SFTPCore, handle: bytes, offset: int,
            length: int) -> asyncio.Future[Any]:
        order.append(("sent", offset))
        fut = read_nowait(self, handle, offset, length)
        end = offset + length
        fut.add_done_callback(lambda _: order.append(("back", end)))
        return fut

    monkeypatch.setattr(SFTPCore, "read_nowait", spy)
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == src.read_bytes()
    probes = [i for i, (what, at) in enumerate(order)
              if what == "sent" and at == size]
    # the reply to the read that ends at the expected end of file
    last_block = max(i for i, (what, end) in enumerate(order)
                     if what == "back" and end == size)
    assert len(probes) == 1 and probes[0] < last_block


async def test_chunked_get_f_syncs_the_file_then_its_directory(
        prig: PRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``get -f`` in chunks: the temporary is fsynced before it is
    renamed, the directory after; without -f neither is."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    data = payload(6 * CHUNK + 5)
    (prig.remote / "f").write_bytes(data)
    assert await prig.get("f", "plain")
    assert events == [("rename", "plain")]
    events.clear()
    assert await prig.get("f", "synced", fsync=True)
    assert events == [("fsync", "file"), ("rename", "synced"),
                      ("fsync", "dir")]
    assert (prig.local / "synced").read_bytes() == data


async def test_chunked_get_reserves_its_blocks_before_writing(
        prig: PRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The missing ranges are preallocated (fallocate, keeping the size)
    before the first chunk is written, and they cover the file."""
    from psftp_shell.engine import chunk_pipeline as chunkpipe
    from psftp_shell.engine import getjob
    order: list[str] = []
    reserved: list[tuple[int, int]] = []
    real_reserve, real_write = getjob.preallocate, chunkpipe.pwrite_all

    def reserve(fd: int, offset: int, length: int) -> bool:
        order.append("reserve")
        reserved.append((offset, offset + length))
        return real_reserve(fd, offset, length)

    def write(fd: int, data: bytes, offset: int) -> None:
        order.append("write")
        real_write(fd, data, offset)

    monkeypatch.setattr(getjob, "preallocate", reserve)
    monkeypatch.setattr(chunkpipe, "pwrite_all", write)
    size = 6 * CHUNK + 5
    (prig.remote / "f").write_bytes(payload(size))
    assert await prig.get("f", "down")
    assert order[0] == "reserve" and "write" in order
    assert order.index("write") > max(
        i for i, what in enumerate(order) if what == "reserve")
    assert reserved == [(0, size)]
