"""The fast receive path for asyncssh connections
(:mod:`psftp_shell.ssh.fast_receive`): the bytes it delivers, what it
hands on to asyncssh, and where it stands aside."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest
from asyncssh.logging import SSHLogger

from psftp_shell.ssh import asyncssh_speedups as sshfast
from psftp_shell.ssh import fast_receive
from psftp_shell.ssh.asyncssh_private import PrivateUse, digest

PAYLOAD = os.urandom(3 << 20) + b"end"
ERRTEXT = b"some stderr\n"
REKEY = 512 << 10
"""The server asks for new keys after sending this many bytes."""


async def _serve(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Send PAYLOAD in pieces of many sizes, some stderr, exit 3; or,
    for the command ``sum``, the SHA-256 of what stdin brought."""
    if process.command == "sum":
        digest = hashlib.sha256()
        while chunk := await process.stdin.read(1 << 16):
            digest.update(chunk)
        process.stdout.write(digest.hexdigest().encode())
        process.exit(0)
        return
    view = memoryview(PAYLOAD)
    sizes = [1, 100, 32768, 70000, 5]
    pos = 0
    i = 0
    while pos < len(PAYLOAD):
        step = sizes[i % len(sizes)]
        process.stdout.write(bytes(view[pos:pos + step]))
        pos += step
        i += 1
        if i % 7 == 0:
            await process.stdout.drain()
    process.stderr.write(ERRTEXT)
    process.exit(3)


class _Client(asyncssh.SSHClient):
    lost: list[Exception | None] = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


@pytest.fixture
async def server() -> AsyncIterator[int]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    acceptor = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[key], process_factory=_serve,
        encoding=None, allow_scp=False, server_factory=_NoAuth,
        rekey_bytes=REKEY, window=128 << 10)
    try:
        yield acceptor.sockets[0].getsockname()[1]
    finally:
        acceptor.close()
        await acceptor.wait_closed()


class _NoAuth(asyncssh.SSHServer):
    conns: list[Any] = []

    def connection_made(self, conn: Any) -> None:
        self.conns.append(conn)

    def begin_auth(self, username: str) -> bool:
        return False


async def _connect(port: int, **options: Any) -> asyncssh.SSHClientConnection:
    options.setdefault("encryption_algs", ["aes128-gcm@openssh.com"])
    conn, _ = await asyncssh.create_connection(
        _Client, "127.0.0.1", port, known_hosts=None, username="u",
        client_keys=None, agent_path=None, **options)
    return conn


class _Count:
    """Counts the packets the fast path delivered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delivered = 0
        deliver = fast_receive._Handler._deliver

        def counting(handler: Any, plaintext: bytes) -> bool:
            done = deliver(handler, plaintext)
            self.delivered += done
            return done
        monkeypatch.setattr(fast_receive._Handler, "_deliver", counting)


async def _fetch(conn: asyncssh.SSHClientConnection
                 ) -> asyncssh.SSHCompletedProcess:
    return await conn.run("x", encoding=None, timeout=60)


async def test_delivers_every_byte_and_hands_on_the_rest(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    count = _Count(monkeypatch)
    conn = await _connect(server)
    try:
        assert fast_receive.install(conn)
        assert fast_receive.installed(conn)
        handler = conn._recv_pkthdr
        assert fast_receive.install(conn)           # a second channel's
        assert conn._recv_pkthdr == handler         # given once only
        result = await _fetch(conn)
    finally:
        conn.close()
    assert result.stdout == PAYLOAD
    assert result.stderr == ERRTEXT                 # extended data
    assert result.exit_status == 3                  # a channel request
    assert count.delivered > 90
    # every packet counted: the client's next sequence number is the
    # server's (strict key exchange restarts both at each NEWKEYS)
    await conn.wait_closed()
    assert conn._recv_seq == _NoAuth.conns[-1]._send_seq


async def test_window_adjusts_of_an_upload(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's WINDOW_ADJUSTs reopen the window of a long write."""
    adjusted = []
    adjust = fast_receive._Handler._adjust

    def counting(handler: Any, plaintext: bytes) -> bool:
        done = adjust(handler, plaintext)
        adjusted.append(done)
        return done
    monkeypatch.setattr(fast_receive._Handler, "_adjust", counting)
    conn = await _connect(server)
    try:
        assert fast_receive.install(conn)
        result = await conn.run("sum", input=PAYLOAD, encoding=None,
                                timeout=60)
    finally:
        conn.close()
    assert result.stdout == hashlib.sha256(PAYLOAD).hexdigest().encode()
    assert len(adjusted) > 10 and all(adjusted)


async def test_input_in_small_pieces_and_rekeys(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets split over many reads, and new keys (the server's) every
    REKEY bytes: the new keys' packets are decrypted with the new key."""
    count = _Count(monkeypatch)
    conn = await _connect(server)
    keys: set[bytes] = set()
    decrypt = fast_receive._Handler.receive

    def noting(handler: Any) -> bool:
        key = getattr(getattr(handler._conn._recv_encryption, "_cipher",
                              None), "_key", None)
        if key is not None:
            keys.add(key)
        return decrypt(handler)
    monkeypatch.setattr(fast_receive._Handler, "receive", noting)
    try:
        assert fast_receive.install(conn)
        assert sshfast.split_reads(conn, piece=997)
        result = await _fetch(conn)
    finally:
        conn.close()
    assert result.stdout == PAYLOAD
    assert result.exit_status == 3
    assert count.delivered > 90
    assert len(keys) >= 5



class _Views(asyncssh.SSHClientSession[bytes]):
    """A session that takes memoryviews, and notes the types it got."""

    takes_views: Any = True

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes | memoryview, datatype: Any
                      ) -> None:
        if datatype is None:
            self.parts.append(data if type(data) is bytes
                              else bytes(data))
            self.types.add(type(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    types: set[type] = set()


@pytest.mark.parametrize("views", [True, "yes", False])
async def test_memoryviews_only_for_a_session_that_takes_them(
        server: int, views: Any) -> None:
    """A session with ``takes_views = True`` is handed views of the
    packets it is sent, any other bytes (asyncssh's own sessions keep
    and join what they are given)."""
    conn = await _connect(server)
    session: _Views | None = None

    def make() -> _Views:
        nonlocal session
        session = _Views()
        session.takes_views = views
        session.types = set()
        return session
    try:
        assert fast_receive.install(conn)
        await conn.create_session(make, "x", encoding=None)
        assert session is not None
        await asyncio.wait_for(session.done, 60)
    finally:
        conn.close()
    assert b"".join(session.parts) == PAYLOAD
    assert session.types == ({bytes, memoryview} if views is True
                             else {bytes})

async def test_stands_aside_for_other_ciphers(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    count = _Count(monkeypatch)
    conn = await _connect(
        server, encryption_algs=["chacha20-poly1305@openssh.com"])
    try:
        assert not fast_receive.install(conn)
        result = await _fetch(conn)
    finally:
        conn.close()
    assert result.stdout == PAYLOAD
    assert count.delivered == 0


async def test_stands_aside_while_asyncssh_logs_packets(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    count = _Count(monkeypatch)
    conn = await _connect(server)
    monkeypatch.setattr(SSHLogger, "_debug_level", 2)
    try:
        assert fast_receive.install(conn)
        result = await _fetch(conn)
    finally:
        conn.close()
    assert result.stdout == PAYLOAD
    assert count.delivered == 0


@pytest.mark.parametrize("forged, error", [
    (b"\0\0\0\x20" + b"x" * 48, asyncssh.MACError),
    (b"\x7f\0\0\0" + b"x" * 48, asyncssh.ProtocolError),
])
async def test_a_forged_packet_ends_the_connection(
        server: int, forged: bytes, error: type[Exception]) -> None:
    _Client.lost = []
    conn = await _connect(server)
    assert fast_receive.install(conn)
    conn.data_received(forged)
    await asyncio.wait_for(conn.wait_closed(), 10)
    assert len(_Client.lost) == 1
    assert isinstance(_Client.lost[0], error)


def test_leaves_other_objects_alone() -> None:
    assert not fast_receive.connection_ok(object())
    assert not fast_receive.install(object())
    assert not fast_receive.installed(object())
    assert not fast_receive.channel_ok(None)
    assert not fast_receive.cipher_ok(object())


def test_stands_aside_for_an_asyncssh_not_reviewed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def gone() -> list[object]:
        raise AttributeError("no _recv_packet")
    monkeypatch.setattr(fast_receive, "_PARTS", [])
    monkeypatch.setattr(fast_receive, "USE", PrivateUse("fast", gone, {}))
    assert fast_receive.parts() is None
    monkeypatch.setattr(fast_receive, "_PARTS", [])
    monkeypatch.setattr(fast_receive, "USE", PrivateUse(
        "fast", fast_receive._relies_on, {"0.0": "not-this-source"}))
    assert fast_receive.parts() is None         # another source


def test_reviewed_source_is_what_it_says() -> None:
    """A reviewed release has the reviewed source; an unreviewed one is
    used only if its source is one reviewed (else asyncssh's path)."""
    found = digest(fast_receive._relies_on())
    use = fast_receive.USE
    if asyncssh.__version__ in use.reviewed:
        assert found == use.reviewed[asyncssh.__version__]
    fresh = PrivateUse("fast", fast_receive._relies_on, use.reviewed)
    assert (fresh.problem("0.0-unreviewed") is None) == \
        (found in use.reviewed.values())
