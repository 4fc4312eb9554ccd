"""The stream pool: lazy, concurrent opening within sshd's limits.

A fake transport stands in for SSH: it counts handshakes in progress,
refuses attempts on demand and records the pauses between attempts, so
the tests see the limit of eight, the back-off and the fallback.  The
real pool is then checked against OpenSSH's sftp-server over pipes and
against the private sshd.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.core.output import Output
from psftp_shell.engine.pool import MAX_HANDSHAKES, Stream, StreamPool
from psftp_shell.engine.transfer_engine import TransferEngine
from psftp_shell.sftp.client import ConnectionLost, SFTPClient
from psftp_shell.ssh.transport import PipeTransport
from tests.test_engine import payload, within


class FakeClient:
    """Stands for an SFTP client; *connection* names its connection."""

    closed = False

    def __init__(self, connection: int) -> None:
        self.connection = connection


class FakeTransport:
    """Opens fake clients slowly, refusing the first *refuse* attempts
    and any beyond *limit* connections."""

    def __init__(self, refuse: int = 0, delay: float = 0.01,
                 limit: int | None = None) -> None:
        self.refuse = refuse
        self.limit = limit
        self.delay = delay
        self.attempts = 0
        self.connections = 0
        self.busy = 0
        self.peak = 0

    async def open_client(self) -> SFTPClient:
        self.attempts += 1
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        try:
            await asyncio.sleep(self.delay)
            if self.refuse > 0:
                self.refuse -= 1
                raise ConnectionResetError("dropped by MaxStartups")
            if self.limit is not None and self.connections >= self.limit:
                raise ConnectionRefusedError("too many connections")
        finally:
            self.busy -= 1
        self.connections += 1
        return FakeClient(self.connections)  # type: ignore[return-value]


class ChannelTransport(FakeTransport):
    """Can also open more channels on an existing connection."""

    def __init__(self) -> None:
        super().__init__()
        self.channels = 0

    async def open_channel(self, client: SFTPClient) -> SFTPClient:
        self.channels += 1
        connection = client.connection   # type: ignore[attr-defined]
        return FakeClient(connection)  # type: ignore[return-value]


def messages() -> tuple[Output, io.BytesIO]:
    err = io.BytesIO()
    return Output(io.BytesIO(), err), err


class Pauses:
    """A fake sleep that records the pauses."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def test_never_more_than_eight_handshakes() -> None:
    transport = FakeTransport()
    out, err = messages()
    pool = StreamPool(transport, 20, out, requests=64)
    streams = await within(pool.streams())
    assert len(streams) == 20
    assert transport.peak == MAX_HANDSHAKES == 8
    assert [s.index for s in streams] == list(range(20))
    assert err.getvalue() == b""


async def test_streams_open_once_and_only_when_asked() -> None:
    transport = FakeTransport()
    out, _ = messages()
    pool = StreamPool(transport, 3, out, requests=8)
    assert not pool.opened and transport.attempts == 0
    first, again = await within(asyncio.gather(pool.streams(),
                                               pool.streams()))
    assert transport.attempts == 3
    assert [s.client for s in first] == [s.client for s in again]


class Staggered(FakeTransport):
    """The first connection opens at once, the others after a while."""

    async def open_client(self) -> SFTPClient:
        if self.attempts:
            await asyncio.sleep(0.2)
        return await super().open_client()


async def test_work_starts_on_the_first_stream_open() -> None:
    out, _ = messages()
    pool = StreamPool(Staggered(delay=0), 4, out, requests=8)
    heard: list[int] = []

    def hear(stream: Stream) -> None:
        heard.append(stream.index)

    first = await within(pool.first())
    assert len(first) == 1 and len(pool.ready) == 1
    pool.subscribe(hear)
    assert len(await within(pool.streams())) == 4
    assert heard == [1, 2, 3]
    pool.unsubscribe(hear)
    assert pool._listeners == []


async def test_refused_attempts_are_retried_with_back_off() -> None:
    transport = FakeTransport(refuse=3)
    out, err = messages()
    pauses = Pauses()
    pool = StreamPool(transport, 1, out, requests=8, backoff=0.25,
                      sleep=pauses)
    assert len(await within(pool.streams())) == 1
    assert pauses.pauses == [0.25, 0.5, 1.0]
    assert err.getvalue() == b""


async def test_fewer_streams_carry_on_and_say_so_once() -> None:
    transport = FakeTransport(limit=3)
    out, err = messages()
    pauses = Pauses()
    pool = StreamPool(transport, 5, out, requests=8, sleep=pauses)
    streams = await within(pool.streams())
    assert len(streams) == 3
    assert err.getvalue() == (b"Could open only 3 of 5 streams: "
                              b"transferring on 3\r\n")
    assert transport.attempts == 3 + 2 * 4      # four tries each
    assert len(pauses.pauses) == 2 * 3
    await within(pool.streams())
    assert err.getvalue().count(b"Could open") == 1


async def test_no_stream_at_all_says_so() -> None:
    transport = FakeTransport(limit=0)
    out, err = messages()
    pool = StreamPool(transport, 2, out, requests=8, sleep=Pauses())
    assert await within(pool.streams()) == []
    assert b"main connection only" in err.getvalue()


async def test_channels_share_connections() -> None:
    transport = ChannelTransport()
    out, _ = messages()
    pool = StreamPool(transport, 10, out, requests=8, channels=4)
    streams = await within(pool.streams())
    assert len(streams) == 10
    assert transport.connections == 3       # 4 + 4 + 2 channels
    assert transport.channels == 7
    per_connection = [s.client.connection for s in streams]  # type: ignore
    assert sorted(per_connection.count(c) for c in {1, 2, 3}) == [2, 4, 4]


async def test_lost_stream_is_left_out() -> None:
    out, _ = messages()
    pool = StreamPool(FakeTransport(), 3, out, requests=8, replacements=0)
    streams = await within(pool.streams())
    pool.lost(streams[1])
    assert [s.index for s in await pool.streams()] == [0, 2]


async def test_a_lost_stream_is_replaced_in_its_place() -> None:
    transport = FakeTransport()
    out, err = messages()
    pauses = Pauses()
    pool = StreamPool(transport, 3, out, requests=8, backoff=0.5,
                      sleep=pauses)
    streams = await within(pool.streams())
    heard: list[Stream] = []
    pool.subscribe(heard.append)
    pool.lost(streams[1])
    pool.lost(streams[1])                   # told twice: one replacement
    await within(pool.settle())
    assert transport.attempts == 4
    assert pauses.pauses == [0.5]           # a pause before the attempt
    assert len(heard) == 1 and heard[0].index == 1
    assert pool.ready[1] is heard[0] and heard[0].usable()
    assert [s.index for s in pool.live()] == [0, 1, 2]
    assert pool.replaced == 1 and err.getvalue() == b""


async def test_replacements_are_bounded_per_session() -> None:
    transport = FakeTransport(limit=2)      # no more connections to have
    out, _ = messages()
    pauses = Pauses()
    pool = StreamPool(transport, 2, out, requests=8, replacements=1,
                      sleep=pauses)
    streams = await within(pool.streams())
    pool.lost(streams[0])
    pool.lost(streams[1])
    await within(pool.settle())
    assert transport.attempts == 2 + 4      # one replacement, four tries
    assert pauses.pauses == [0.25, 0.25, 0.5, 1.0]
    assert pool.live() == [] and pool.replaced == 0 and pool.spares == 0


async def test_a_client_lost_between_commands_is_replaced() -> None:
    transport = FakeTransport()
    out, _ = messages()
    pool = StreamPool(transport, 2, out, requests=8, sleep=Pauses())
    streams = await within(pool.streams())
    client: Any = streams[0].client
    client.closed = True
    client.on_lost(ConnectionLost("Connection closed"))
    await within(pool.settle())
    assert pool.ready[0] is not streams[0] and pool.ready[0].usable()
    assert transport.attempts == 3


async def test_no_replacement_once_closed() -> None:
    transport = FakeTransport()
    out, _ = messages()
    pool = StreamPool(transport, 2, out, requests=8)
    streams = await within(pool.streams())
    pool.lost(streams[0])                   # pausing before its attempt
    await within(pool.close())
    pool.lost(streams[1])
    await within(pool.settle())
    assert transport.attempts == 2 and pool.live() == []


# ---------------------------------------------------------------- real

@pytest.fixture
async def pipe_engine(tmp_path: Path, sftp_server_bin: str
                      ) -> AsyncIterator[TransferEngine]:
    transport = PipeTransport([sftp_server_bin])
    client = await within(transport.open_client())
    out = Output(io.BytesIO(), io.BytesIO(), quiet=True)
    engine = await within(TransferEngine.create(
        client, out, transport=transport, streams=3))
    engine.local_cwd = str(tmp_path)
    yield engine
    await transport.close()


async def test_pool_opens_on_the_first_transfer(pipe_engine: TransferEngine,
                                                tmp_path: Path) -> None:
    transport = pipe_engine.pool.transport      # type: ignore[union-attr]
    assert isinstance(transport, PipeTransport)
    assert len(transport.processes) == 1        # the control client only
    (tmp_path / "f").write_bytes(payload(1000))
    assert await within(pipe_engine.download(
        str(tmp_path / "f"), "g", None, preserve=False, resume=False,
        fsync=False))
    assert len(transport.processes) == 4        # control + 3 streams
    assert await within(pipe_engine.download(
        str(tmp_path / "f"), "h", None, preserve=False, resume=False,
        fsync=False))
    assert len(transport.processes) == 4        # kept for the session
    assert (tmp_path / "h").read_bytes() == payload(1000)
