"""The data path's shape: how requests leave and replies are taken apart.

Requests made in one turn of the event loop must leave in one write (over
SSH, one packet), a WRITE must leave with its data in one piece, and
nothing queued may be lost on drain or close; replies must parse however
the transport cuts them.  Below SFTP, an SSH connection's socket writes
are gathered per turn too.  The bytes on the wire are checked against the
SFTP v3 encoding, and a round trip against OpenSSH's sftp-server checks
the result byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from psftp_shell.filecopy import localdest
from psftp_shell.filecopy.copy_context import CopyContext, Flags
from psftp_shell.filecopy.localdest import pwrite_all
from psftp_shell.filecopy.single_upload import upload_file
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    OPEN_CREAT,
    OPEN_READ,
    OPEN_TRUNC,
    OPEN_WRITE,
    ProtocolError,
    SFTPClient,
    StatusError,
)
from psftp_shell.ssh import turn_batcher as transport
from psftp_shell.ssh.channel import SFTPChannelWriter, SFTPSession
from tests.test_protocol import spawn, stop

T = TypeVar("T")
FXP_READ, FXP_WRITE, FXP_STATUS, FXP_DATA = 5, 6, 101, 103
FXP_EXTENDED, FXP_EXTENDED_REPLY = 200, 201
FXP_OPEN, FXP_CLOSE, FXP_LSTAT, FXP_FSTAT = 3, 4, 7, 8


async def within(aw: Awaitable[T]) -> T:
    return await asyncio.wait_for(aw, 10)


class RecordingWriter:
    """A ByteWriter that keeps every write as it was made."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed_after = -1

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed_after = len(self.writes)


def packets(data: bytes) -> list[tuple[int, bytes]]:
    """Split a byte string into SFTP packets: (type, body after type)."""
    out = []
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        body = data[pos + 4:pos + 4 + length]
        assert len(body) == length, "a packet cut short"
        out.append((body[0], body[1:]))
        pos += 4 + length
    return out


def version() -> bytes:
    return struct.pack(">IBI", 5, 2, 3)


def reply(ptype: int, rid: int, body: bytes) -> bytes:
    return struct.pack(">IBI", 5 + len(body), ptype, rid) + body


async def started(writer: RecordingWriter | None = None
                  ) -> tuple[SFTPClient, asyncio.StreamReader,
                             RecordingWriter]:
    reader = asyncio.StreamReader()
    writer = writer or RecordingWriter()
    client = SFTPClient(reader, writer)
    reader.feed_data(version())
    await within(client.start())
    writer.writes.clear()
    return client, reader, writer


async def test_reads_of_one_turn_leave_in_one_write() -> None:
    client, reader, writer = await started()
    futs = [client.read_nowait(b"h", off, 100) for off in (0, 100, 200)]
    assert writer.writes == []          # nothing before the turn ends
    await asyncio.sleep(0)
    assert len(writer.writes) == 1
    sent = packets(writer.writes[0])
    assert [p[0] for p in sent] == [FXP_READ] * 3
    assert all(body[4:9] == b"\0\0\0\1h" for _, body in sent)
    asked = [struct.unpack_from(">QI", body, 9) for _, body in sent]
    assert asked == [(0, 100), (100, 100), (200, 100)]
    ids = [struct.unpack_from(">I", body)[0] for _, body in sent]
    for rid, fill in zip(ids, b"abc", strict=True):
        reader.feed_data(reply(FXP_DATA, rid,
                               struct.pack(">I", 100) + bytes([fill]) * 100))
    assert [await within(f) for f in futs] == [b"a" * 100, b"b" * 100,
                                              b"c" * 100]
    await client.close()


async def test_drain_sends_what_is_queued_first() -> None:
    client, _, writer = await started()
    client.read_nowait(b"h", 0, 10)
    await client.drain()        # no turn of the loop has passed
    assert [p[0] for p in packets(b"".join(writer.writes))] == [FXP_READ]
    await client.close()


async def test_close_sends_what_is_queued() -> None:
    client, _, writer = await started()
    client.read_nowait(b"h", 0, 10)
    await client.close()
    assert writer.closed_after == 1
    assert [p[0] for p in packets(writer.writes[0])] == [FXP_READ]


async def test_write_leaves_in_one_piece_after_queued_requests() -> None:
    client, _, writer = await started()
    client.read_nowait(b"h", 0, 10)
    payload = os.urandom(200_000)
    client.write_nowait(b"hd", 7 << 32, memoryview(payload))
    # The small READ went first, then the WRITE, header and data together.
    assert len(writer.writes) == 2
    assert packets(writer.writes[0])[0][0] == FXP_READ
    ((ptype, body),) = packets(writer.writes[1])
    assert ptype == FXP_WRITE
    _, hlen = struct.unpack_from(">II", body)
    assert body[8:8 + hlen] == b"hd"
    offset, dlen = struct.unpack_from(">QI", body, 8 + hlen)
    assert (offset, dlen) == (7 << 32, len(payload))
    assert body[8 + hlen + 12:] == payload
    await client.close()


class TwoPieceWriter(RecordingWriter):
    """A writer that takes a WRITE's header and data apart."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[bytes, object]] = []

    def write_two(self, head: bytes, data: object) -> None:
        self.pairs.append((head, data))
        self.writes.append(b"<two>")


async def test_a_writer_taking_two_pieces_gets_the_data_uncopied() -> None:
    writer = TwoPieceWriter()
    client, _, _ = await started(writer)
    client.read_nowait(b"h", 0, 10)
    payload = os.urandom(200_000)
    client.write_nowait(b"hd", 5, payload)
    client.write_nowait(b"hd", 9, b"small")         # coalesced, joined
    await asyncio.sleep(0)
    client.write_nowait(b"hd", 0, bytearray(payload))   # may change: copied
    assert writer.writes[1] == b"<two>"
    assert packets(writer.writes[3])[0][1].endswith(payload)
    assert packets(writer.writes[0])[0][0] == FXP_READ
    ((head, data),) = writer.pairs
    assert data is payload
    (length, ptype, _, hlen) = struct.unpack_from(">IBII", head)
    assert (length, ptype) == (len(head) - 4 + len(payload), FXP_WRITE)
    assert head[13:13 + hlen] == b"hd"
    assert struct.unpack_from(">QI", head, 13 + hlen) == (5, len(payload))
    ((ptype, body),) = packets(writer.writes[2])
    assert ptype == FXP_WRITE and body.endswith(b"small")
    assert len(writer.pairs) == 1
    await client.close()


async def three_requests(client: SFTPClient, writer: RecordingWriter
                         ) -> tuple[list[asyncio.Future[Any]], list[int]]:
    """A READ of 5,000 bytes, an EXTENDED and a READ of 10, sent: their
    futures and request ids."""
    futs: list[asyncio.Future[Any]] = [
        client.read_nowait(b"h", 0, 5000),
        client.request(FXP_EXTENDED, b"\0\0\0\1x"),
        client.read_nowait(b"h", 0, 10)]
    await asyncio.sleep(0)
    ids = [struct.unpack_from(">I", body)[0]
           for _, body in packets(b"".join(writer.writes))]
    return futs, ids


async def feed_cut(feed: Callable[[bytes], None], stream: bytes,
                   seed: int) -> None:
    """Feed *stream* in pieces of random sizes, a loop turn after each."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(stream):
        step = rng.choice((1, 2, 3, 5, 9, 13, 700))
        feed(stream[pos:pos + step])
        pos += step
        await asyncio.sleep(0)


async def test_replies_parse_however_the_stream_is_cut() -> None:
    client, reader, writer = await started()
    data = os.urandom(5000)
    (read, ext, padded), ids = await three_requests(client, writer)
    stream = (reply(FXP_DATA, ids[0], struct.pack(">I", 5000) + data)
              + reply(FXP_EXTENDED_REPLY, ids[1], b"")
              # data followed by bytes the reply does not account for
              + reply(FXP_DATA, ids[2], struct.pack(">I", 3) + b"abcXY"))
    await feed_cut(reader.feed_data, stream, 4)
    assert await within(read) == data
    assert await within(ext) == (FXP_EXTENDED_REPLY, b"")
    assert await within(padded) == b"abc"
    await client.close()


def test_pwrite_all_finishes_short_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.pwrite
    calls: list[int] = []

    def short(fd: int, data: bytes, offset: int) -> int:
        calls.append(offset)
        return real(fd, memoryview(data)[:1000], offset)

    monkeypatch.setattr(localdest.os, "pwrite", short)
    data = os.urandom(4500)
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        pwrite_all(fd, data, 10)
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(10) + data
    assert calls == [10, 1010, 2010, 3010, 4010]


async def test_round_trip_with_sftp_server(sftp_server_bin: str,
                                           tmp_path: Path) -> None:
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    data = os.urandom(3 * 261120 + 17)
    path = str(tmp_path / "f")
    try:
        handle = await within(client.open(
            path, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC))
        offsets = range(0, len(data), 261120)
        acks = [client.write_nowait(handle, off, data[off:off + 261120])
                for off in offsets]
        for ack in acks:
            await within(ack)
        await within(client.close_handle(handle))
        assert Path(path).read_bytes() == data
        handle = await within(client.open(path, OPEN_READ))
        reads = [client.read_nowait(handle, off, 261120) for off in offsets]
        got = [await within(r) for r in reads]
        await within(client.close_handle(handle))
        assert b"".join(got) == data
    finally:
        await stop(session)


class FakeSocketTransport(asyncio.Transport):
    """A transport that records what reaches it, and when it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[object] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return f"info:{name}"


class FakeConnection:
    """Where asyncssh keeps its socket transport."""

    def __init__(self, transport: object) -> None:
        self._transport = transport


async def test_batcher_writes_once_per_turn_in_order() -> None:
    real = FakeSocketTransport()
    conn = FakeConnection(real)
    transport.batch_writes(conn)
    batched = conn._transport
    assert isinstance(batched, transport.TurnBatcher)
    transport.batch_writes(conn)            # a second call changes nothing
    assert conn._transport is batched
    batched.write(b"ignore")
    batched.write(b"packet")
    assert real.events == []
    await asyncio.sleep(0)
    assert real.events == [b"ignorepacket"]
    batched.write(b"x" * transport.BATCH_LIMIT)     # too much to hold
    assert real.events[-1] == b"x" * transport.BATCH_LIMIT
    assert batched.get_extra_info("peername") == "info:peername"


async def test_batcher_sends_queued_bytes_before_close_or_abort() -> None:
    for how in ("close", "abort"):
        real = FakeSocketTransport()
        conn = FakeConnection(real)
        transport.batch_writes(conn)
        batched = conn._transport
        assert isinstance(batched, transport.TurnBatcher)
        batched.write(b"bye")
        getattr(batched, how)()
        assert real.events == [b"bye", how]
        batched.write(b"late")
        await asyncio.sleep(0)
        assert real.events == [b"bye", how]     # nothing after closing


class FakeChannel:
    """An SSH channel that writes its data straight to its connection."""

    def __init__(self, conn: FakeConnection) -> None:
        self._conn = conn

    def write(self, data: bytes) -> None:
        self._conn._transport.write(data)   # type: ignore[attr-defined]


async def test_sftp_requests_leave_without_waiting_for_the_turn() -> None:
    """The SFTP client's writes are a turn's requests gathered already:
    they reach the socket at once, not one more turn later."""
    real = FakeSocketTransport()
    conn = FakeConnection(real)
    transport.batch_writes(conn)
    session = SFTPSession(lambda: None)
    session.channel = FakeChannel(conn)
    writer = SFTPChannelWriter(session)
    writer.write(b"requests")
    assert real.events == [b"requests"]
    unbatched = FakeConnection(FakeSocketTransport())
    session.channel = FakeChannel(unbatched)
    SFTPChannelWriter(session).write(b"as before")      # no batcher


class CountingLoop:
    """Stands in for a batcher's loop: counts what it is asked to run."""

    def __init__(self) -> None:
        self.scheduled: list[object] = []

    def call_soon(self, callback: object) -> None:
        self.scheduled.append(callback)


async def test_sftp_requests_schedule_no_idle_turn() -> None:
    """A write the SFTP client hands on at once leaves no end-of-turn
    flush behind (an idle turn of the loop for every request); bytes
    queued before it still leave with it, in order."""
    real = FakeSocketTransport()
    conn = FakeConnection(real)
    transport.batch_writes(conn)
    batched = conn._transport
    assert isinstance(batched, transport.TurnBatcher)
    loop = CountingLoop()
    batched._loop = loop    # type: ignore[assignment]
    session = SFTPSession(lambda: None)
    session.channel = FakeChannel(conn)
    writer = SFTPChannelWriter(session)
    writer.write(b"requests")
    assert real.events == [b"requests"]
    assert loop.scheduled == []
    batched.write(b"window-adjust")
    assert len(loop.scheduled) == 1
    writer.write(b"more")
    assert real.events == [b"requests", b"window-adjustmore"]


async def test_requests_sent_now_leave_in_the_order_made(
        tmp_path: Path, sftp_server_bin: str) -> None:
    """The *_nowait requests are sent when made, not when a task starts:
    a LSTAT made before an OPEN is answered first."""
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    path = str(tmp_path / "f")
    try:
        look = client.lstat_nowait(path)
        opening = client.open_nowait(path, OPEN_WRITE | OPEN_CREAT)
        order: list[str] = []
        look.add_done_callback(lambda _: order.append("lstat"))
        opening.add_done_callback(lambda _: order.append("open"))
        with pytest.raises(StatusError):
            await within(look)
        handle = await within(opening)
        setting = client.setstat_nowait(path, Attrs(permissions=0o600))
        closing = client.close_nowait(handle)
        renaming = client.posix_rename_nowait(path, path + ".2")
        for fut in (setting, closing, renaming):
            await within(fut)
        assert order == ["lstat", "open"]
        assert (tmp_path / "f.2").stat().st_mode & 0o777 == 0o600
    finally:
        await stop(session)


async def test_batch_writes_leaves_other_transports_alone() -> None:
    conn = FakeConnection(None)
    transport.batch_writes(conn)
    assert conn._transport is None
    tunnel = object()
    conn = FakeConnection(tunnel)
    transport.batch_writes(conn)
    assert conn._transport is tunnel


class Said:
    """A Printer that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    info = error = logit = line

    def call(self, action: Callable[[], None]) -> None:
        action()


@pytest.mark.parametrize("verify, size", [
    ("size", 5 * 32768 + 100), ("size", 16384), ("none", 16384)])
async def test_the_size_check_of_an_upload_rides_with_its_last_writes(
        sftp_server_bin: str, tmp_path: Path, verify: str,
        size: int) -> None:
    """The FSTAT behind ``verify=size`` is sent before the last WRITE's
    ACK arrives, so it costs no round trip of its own (for a one-block
    file too, whose first WRITE sftp's loop waits for)."""
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    events: list[str] = []
    write_nowait, fstat = client.write_nowait, client.fstat_nowait

    def recording_write(handle: bytes, offset: int, data: bytes
                        ) -> asyncio.Future[None]:
        fut = write_nowait(handle, offset, data)
        fut.add_done_callback(lambda _: events.append("ack"))
        return fut

    def recording_fstat(handle: bytes) -> asyncio.Future[Attrs]:
        events.append("fstat")
        return fstat(handle)

    client.write_nowait = recording_write  # type: ignore[method-assign,assignment]
    client.fstat_nowait = recording_fstat      # type: ignore[method-assign]
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    said = Said()
    ctx = CopyContext(local_cwd=str(tmp_path), verify=verify)
    try:
        assert await within(upload_file(ctx, client, said, "src",
                                        str(tmp_path / "dst"), Flags()))
    finally:
        await stop(session)
    assert (tmp_path / "dst").read_bytes() == data
    assert said.lines == []
    if verify == "none":
        assert "fstat" not in events
    else:
        assert events.count("fstat") == 1
        assert events.index("fstat") < len(events) - 1   # an ACK after it


async def test_a_one_block_upload_takes_three_writes(
        sftp_server_bin: str, tmp_path: Path) -> None:
    """A small file's upload leaves in three pieces, one per round trip:
    LSTAT and OPEN, the WRITE with the FSTAT of the size check, CLOSE
    and RENAME."""
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    sent: list[bytes] = []
    write = client._write

    def recording(data: bytes) -> None:
        sent.append(bytes(data))
        write(data)

    client._write = recording       # type: ignore[method-assign]
    (tmp_path / "src").write_bytes(os.urandom(3000))
    ctx = CopyContext(local_cwd=str(tmp_path))
    try:
        assert await within(upload_file(ctx, client, Said(), "src",
                                        str(tmp_path / "dst"), Flags()))
    finally:
        await stop(session)
    assert (tmp_path / "dst").read_bytes() == (tmp_path / "src").read_bytes()
    kinds = [[p[0] for p in packets(piece)] for piece in sent]
    assert kinds == [[FXP_LSTAT, FXP_OPEN], [FXP_WRITE, FXP_FSTAT],
                     [FXP_CLOSE, FXP_EXTENDED]], kinds


async def session_started() -> tuple[SFTPClient, SFTPSession,
                                     RecordingWriter]:
    """A client reading from an SSH channel's session (fed by hand)."""
    session = SFTPSession(lambda: None)
    session.connection_made(FakeWindowChannel())
    writer = RecordingWriter()
    client = SFTPClient(session, writer)
    session.data_received(version(), None)
    await within(client.start())
    await asyncio.sleep(0)          # the receive loop waits for a reply
    writer.writes.clear()
    return client, session, writer


class FakeWindowChannel:
    """Just what :class:`SFTPSession` asks of its channel."""

    def get_recv_window(self) -> int:
        return 1 << 20


async def test_replies_are_resolved_as_they_arrive() -> None:
    """Whole replies buffered while the receive loop waits are resolved
    in the data callback itself, not a turn later by the loop's task;
    however the stream is cut, each arrives intact."""
    client, session, writer = await session_started()
    data = os.urandom(5000)
    (read, ext, padded), ids = await three_requests(client, writer)
    session.data_received(reply(FXP_EXTENDED_REPLY, ids[1], b""), None)
    assert ext.done() and ext.result() == (FXP_EXTENDED_REPLY, b"")
    stream = (reply(FXP_DATA, ids[0], struct.pack(">I", 5000) + data)
              + reply(FXP_DATA, ids[2], struct.pack(">I", 3) + b"abcXY"))
    await feed_cut(lambda piece: session.data_received(piece, None),
                   stream, 7)
    assert await within(read) == data
    assert await within(padded) == b"abc"
    assert session.buffered() == 0
    await client.close()


async def test_a_reply_to_no_request_is_left_to_the_loop() -> None:
    """An unknown id is not taken from the buffer: the receive loop
    reads it and ends the session with sftp's error."""
    client, session, writer = await session_started()
    fut = client.request(FXP_EXTENDED, b"\0\0\0\1x")
    session.data_received(reply(FXP_EXTENDED_REPLY, 999, b""), None)
    assert not fut.done()
    assert await within(client.wait_closed()) is not None
    assert "Unexpected reply 999" in str(client.lost_reason)
    with pytest.raises(ProtocolError):
        await within(fut)
