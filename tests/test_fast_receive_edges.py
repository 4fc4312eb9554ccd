"""The fast receive path against asyncssh's own, packet by packet: a
server that sends what OpenSSH never would (unknown channels, empty data,
no padding), and sessions that act in the middle of a delivery.  Each
case runs both ways and must come out the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncssh
import pytest
from asyncssh.packet import Byte, String, UInt32

from psftp_shell.ssh import fast_receive

DATA = 94


class _Srv(asyncssh.SSHServer):
    conns: list[Any] = []

    def connection_made(self, conn: Any) -> None:
        self.conns.append(conn)

    def begin_auth(self, username: str) -> bool:
        return False


async def _serve(process: asyncssh.SSHServerProcess[bytes]) -> None:
    process.stdout.write(b"hello")
    await process.stdin.read()
    process.exit(0)


class _Client(asyncssh.SSHClient):
    lost: list[Exception | None] = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


class _Rec(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.raise_exc: Exception | None = None

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.chunks.append(data)
        if self.raise_exc is not None and data == b"boom":
            raise self.raise_exc


@pytest.fixture
async def server() -> AsyncIterator[int]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    acceptor = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[key], process_factory=_serve,
        encoding=None, allow_scp=False, server_factory=_Srv)
    try:
        yield acceptor.sockets[0].getsockname()[1]
    finally:
        acceptor.close()
        await acceptor.wait_closed()


async def _connect(port: int, fast: bool) -> Any:
    _Client.lost = []
    conn, _ = await asyncssh.create_connection(
        _Client, "127.0.0.1", port, known_hosts=None, username="u",
        client_keys=None, agent_path=None,
        encryption_algs=["aes128-gcm@openssh.com"])
    assert fast_receive.install(conn) if fast else True
    return conn


async def _session(conn: Any) -> tuple[Any, _Rec]:
    chan, session = await conn.create_session(_Rec, "x", encoding=None)
    for _ in range(200):
        if session.chunks:
            break
        await asyncio.sleep(0.01)
    assert session.chunks == [b"hello"]
    return chan, session


def _raw_send(srv: Any, plain: bytes) -> None:
    """Send *plain* (padlen byte + payload + padding) as one packet."""
    hdr = UInt32(len(plain))
    seq = srv._send_seq
    packet, mac = srv._send_encryption.encrypt_packet(seq, hdr, plain)
    srv._send(packet + mac)
    srv._send_seq = (seq + 1) & 0xffffffff


@pytest.mark.parametrize("fast", [False, True])
async def test_unknown_channel_as_first_data(server: int, fast: bool) -> None:
    """DATA for a channel number nobody has, before any other DATA."""
    conn = await _connect(server, fast)
    srv = _Srv.conns[-1]
    srv.send_packet(DATA, UInt32(99), String(b"abc"))
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert len(_Client.lost) == 1
    exc = _Client.lost[0]
    assert isinstance(exc, asyncssh.ProtocolError), repr(exc)
    assert "Invalid channel number 99" in str(exc)


@pytest.mark.parametrize("fast", [False, True])
async def test_empty_data_packet(server: int, fast: bool) -> None:
    conn = await _connect(server, fast)
    try:
        chan, session = await _session(conn)
        srv = _Srv.conns[-1]
        srv.send_packet(DATA, UInt32(chan._recv_chan), String(b""))
        srv.send_packet(DATA, UInt32(chan._recv_chan), String(b"world"))
        for _ in range(200):
            if b"world" in session.chunks:
                break
            await asyncio.sleep(0.01)
        assert session.chunks == [b"hello", b"world"]
    finally:
        conn.close()


@pytest.mark.parametrize("fast", [False, True])
async def test_empty_data_packet_reads_as_eof(server: int, fast: bool) -> None:
    """asyncssh's stream reader: read(n) returns b'' (EOF) on an empty
    chunk."""
    conn = await _connect(server, fast)
    try:
        proc = await conn.create_process("x", encoding=None)
        assert await proc.stdout.read(100) == b"hello"
        srv = _Srv.conns[-1]
        srv.send_packet(DATA, UInt32(proc.channel._recv_chan), String(b""))
        await asyncio.sleep(0.3)
        srv.send_packet(DATA, UInt32(proc.channel._recv_chan),
                        String(b"world"))
        assert await asyncio.wait_for(proc.stdout.read(100), 5) == b"world"
    finally:
        conn.close()


@pytest.mark.parametrize("fast", [False, True])
async def test_zero_padding_length(server: int, fast: bool) -> None:
    """A DATA packet with padding length 0 (RFC 4253 requires >= 4):
    asyncssh reads its payload as empty and ends the connection."""
    conn = await _connect(server, fast)
    chan, session = await _session(conn)
    srv = _Srv.conns[-1]
    payload = Byte(DATA) + UInt32(chan._recv_chan) + String(b"sixsix")
    plain = Byte(0) + payload
    assert len(plain) % 16 == 0
    _raw_send(srv, plain)
    try:
        await asyncio.wait_for(conn.wait_closed(), 3)
    finally:
        conn.close()
        assert session.chunks == [b"hello"]
    assert len(_Client.lost) == 1


@pytest.mark.parametrize("fast", [False, True])
async def test_packet_decode_error_in_session(server: int, fast: bool
                                              ) -> None:
    """asyncssh turns a PacketDecodeError out of a handler into a
    ProtocolError (and sends DISCONNECT)."""
    conn = await _connect(server, fast)
    chan, session = await _session(conn)
    session.raise_exc = asyncssh.packet.PacketDecodeError("bad")
    srv = _Srv.conns[-1]
    srv.send_packet(DATA, UInt32(chan._recv_chan), String(b"boom"))
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert len(_Client.lost) == 1
    assert isinstance(_Client.lost[0], asyncssh.ProtocolError), \
        repr(_Client.lost[0])


ENDING = ("close_conn", "abort_conn", "raise")
"""Actions that end the connection in the middle of the pieces."""


async def _until(done: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait until *done()* (or *limit* seconds), then a moment more."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not done() and loop.time() < end:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)


class _Act(_Rec):
    action = ""
    chan: Any = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.chunks.append(data)
        if data == b"boom":
            if self.action == "close_chan":
                self.chan.close()
            elif self.action == "close_conn":
                self.chan.get_connection().close()
            elif self.action == "abort_conn":
                self.chan.get_connection().abort()
            elif self.action == "pause":
                self.chan.pause_reading()
            elif self.action == "raise":
                raise RuntimeError("session failed")


async def _act(port: int, fast: bool, action: str) -> tuple[Any, ...]:
    """What a session doing *action* mid-delivery saw, and what became
    of its channel and connection."""
    conn = await _connect(port, fast)
    _Act.action = action
    chan, session = await conn.create_session(_Act, "x", encoding=None)
    for _ in range(200):
        if session.chunks:
            break
        await asyncio.sleep(0.01)
    srv = _Srv.conns[-1]
    seq0 = conn._recv_seq
    for piece in (b"a", b"boom", b"c", b"d", b"e"):
        srv.send_packet(DATA, UInt32(chan._recv_chan), String(piece))
    await _until(lambda: conn._recv_seq - seq0 >= 5 or bool(_Client.lost))
    if action == "close_chan":      # the server's CLOSE counted, always
        await asyncio.wait_for(chan.wait_closed(), 10)
    state: tuple[Any, ...] = (
        list(session.chunks), chan._recv_window, conn._recv_seq - seq0,
        [type(e).__name__ for e in _Client.lost], conn._transport is None)
    if action in ENDING:
        # what came after the end depends on how the pieces were read
        state = (state[0][:3], state[3], state[4])
    if action == "pause":
        chan.resume_reading()
        await _until(lambda: len(session.chunks) >= 6)
        state += (list(session.chunks), chan._recv_window)
    conn.close()
    await conn.wait_closed()     # its connection_lost before the next one
    return state


@pytest.mark.parametrize("action", ["close_chan", "close_conn", "abort_conn",
                                    "pause", "raise"])
async def test_actions_in_delivery(server: int, action: str) -> None:
    slow = await _act(server, False, action)
    fast = await _act(server, True, action)
    assert fast == slow
    assert b"boom" in slow[0]


async def _odd_adjust(port: int, fast: bool, extra: bytes, chan_no: int | None
                      ) -> tuple[Any, ...]:
    """What a WINDOW_ADJUST with *extra* bytes behind it, for channel
    *chan_no* (None: the session's), does to the connection."""
    conn = await _connect(port, fast)
    chan, session = await _session(conn)
    srv = _Srv.conns[-1]
    window = chan._send_window
    number = chan._recv_chan if chan_no is None else chan_no
    srv.send_packet(93, UInt32(number), UInt32(1000), extra)
    srv.send_packet(DATA, UInt32(chan._recv_chan), String(b"after"))
    await _until(lambda: b"after" in session.chunks or bool(_Client.lost))
    state = (chan._send_window - window, list(session.chunks),
             [(type(e).__name__, str(e)) for e in _Client.lost])
    conn.close()
    await conn.wait_closed()
    return state


@pytest.mark.parametrize("extra, chan_no", [
    (b"", None), (b"", 99), (b"x", None)])
async def test_window_adjusts_as_asyncssh(server: int, extra: bytes,
                                          chan_no: int | None) -> None:
    slow = await _odd_adjust(server, False, extra, chan_no)
    fast = await _odd_adjust(server, True, extra, chan_no)
    assert fast == slow
    assert (slow[0] == 1000) == (not extra and chan_no is None)
