"""The SFTP channel's session: buffering, flow control, EOF and stderr."""

from __future__ import annotations

import asyncio
import io
import os

import asyncssh
import pytest

from psftp_shell.ssh.channel import SFTPChannelWriter, SFTPSession


class FakeChannel:
    """Records what the session asks of its channel."""

    def __init__(self, window: int = 1 << 16) -> None:
        self.window = window
        self.events: list[str] = []
        self.written: list[bytes] = []

    def get_recv_window(self) -> int:
        return self.window

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def write(self, data: bytes) -> None:
        self.written.append(data)


def session_with(channel: FakeChannel,
                 stderr: io.BytesIO | None = None) -> SFTPSession:
    session = SFTPSession(lambda: stderr)
    session.connection_made(channel)
    return session


async def test_reads_cross_packets_in_order() -> None:
    session = session_with(FakeChannel())
    data = os.urandom(100_000)
    for start in range(0, len(data), 32768):
        session.data_received(data[start:start + 32768], None)
    got = [await session.readexactly(n) for n in (4, 9, 70_000, 29_987)]
    assert b"".join(got) == data
    assert [len(g) for g in got] == [4, 9, 70_000, 29_987]
    assert await session.readexactly(0) == b""



async def test_memoryviews_in_bytes_out() -> None:
    """The fast receive path hands the session views of its packets
    (``takes_views``): every read, peek and take gives bytes, whether it
    falls inside one packet, spans several, or empties the buffer."""
    assert SFTPSession.takes_views is True
    session = session_with(FakeChannel(window=1 << 20))
    data = os.urandom(100_000)
    packets = [memoryview(b"xx" + data[i:i + 32768])[2:]
               for i in range(0, len(data), 32768)]
    for packet in packets:
        session.data_received(packet, None)
    assert type(session.peek(9)) is bytes and session.peek(9) == data[:9]
    assert session.peek(40_000) == data[:40_000]
    got = [session.take(5), await session.readexactly(70_000),
           session.take(20), await session.read()]
    assert [type(g) for g in got] == [bytes] * 4
    assert b"".join(got) == data
    session.data_received(memoryview(b"abcdef")[1:], None)
    whole = await session.readexactly(5)        # a whole packet
    assert type(whole) is bytes and whole == b"bcdef"

async def test_a_read_waits_for_enough_data() -> None:
    session = session_with(FakeChannel())
    task = asyncio.ensure_future(session.readexactly(10))
    session.data_received(b"12345", None)
    await asyncio.sleep(0)
    assert not task.done()
    session.data_received(b"67890abc", None)
    assert await task == b"1234567890"
    assert await session.read() == b"abc"


async def test_eof_gives_the_partial_read_then_end() -> None:
    session = session_with(FakeChannel())
    session.data_received(b"abc", None)
    assert session.eof_received() is True
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await session.readexactly(5)
    assert info.value.partial == b"abc"
    assert await session.read() == b""
    assert session.at_eof()


async def test_a_lost_channel_fails_reads_after_the_data() -> None:
    session = session_with(FakeChannel())
    session.data_received(b"data", None)
    lost = asyncssh.ConnectionLost("gone")
    session.connection_lost(lost)
    assert await session.readexactly(4) == b"data"
    with pytest.raises(asyncssh.ConnectionLost):
        await session.readexactly(4)


async def test_reading_pauses_above_the_window_and_resumes() -> None:
    channel = FakeChannel(window=1 << 16)
    session = session_with(channel)
    for _ in range(3):
        session.data_received(b"x" * 32768, None)
    assert channel.events == ["pause"]
    await session.readexactly(32768)
    assert channel.events == ["pause"]      # still above half the window
    await session.readexactly(32768)
    assert channel.events == ["pause", "resume"]


async def test_stderr_is_copied_as_it_comes() -> None:
    err = io.BytesIO()
    session = session_with(FakeChannel(), err)
    session.data_received(b"complaint\n", asyncssh.EXTENDED_DATA_STDERR)
    session.data_received(b"out", None)
    assert err.getvalue() == b"complaint\n"
    assert await session.readexactly(3) == b"out"


async def test_drain_waits_while_writing_is_paused() -> None:
    channel = FakeChannel()
    session = session_with(channel)
    writer = SFTPChannelWriter(session)
    writer.write(b"req")
    assert channel.written == [b"req"]
    session.pause_writing()
    task = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0)
    assert not task.done()
    session.resume_writing()
    await task
    session.pause_writing()
    session.connection_lost(None)
    await writer.drain()                    # lost: nothing left to wait for
