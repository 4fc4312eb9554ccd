"""The lean path for channel data (:mod:`psftp_shell.ssh.fast_send`):
the same bytes arrive as through asyncssh's own path, across window
exhaustion, rekeying and every cipher kind, and asyncssh's path takes
over where the lean one must not run."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest
from asyncssh.logging import SSHLogger

from psftp_shell.ssh import fast_send
from psftp_shell.ssh.asyncssh_private import PrivateUse
from psftp_shell.ssh.channel import open_sftp_channel


class Digest(asyncssh.SSHServerSession):   # type: ignore[type-arg]
    """A server command that answers the SHA-256 of what it read."""

    def connection_made(self, chan: Any) -> None:
        self._chan = chan
        self._sha = hashlib.sha256()
        self._size = 0

    def data_received(self, data: bytes, datatype: Any) -> None:
        self._sha.update(data)
        self._size += len(data)

    def eof_received(self) -> bool:
        self._chan.write(f"{self._size} {self._sha.hexdigest()}".encode())
        self._chan.exit(0)
        return False

    def exec_requested(self, command: str) -> bool:
        return True


class Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False

    def session_requested(self) -> Digest:
        return Digest()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[key], server_factory=Server,
        encoding=None, window=256 * 1024,
        encryption_algs=["aes128-gcm@openssh.com", "aes256-ctr",
                         "chacha20-poly1305@openssh.com", "aes128-cbc"])
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def count_asyncssh_data(conn: Any) -> list[int]:
    """Count the CHANNEL_DATA packets that take asyncssh's own path."""
    seen = [0]
    send = conn.send_packet

    def send_packet(pkttype: int, *args: Any, **kwargs: Any) -> None:
        if pkttype == fast_send.MSG_CHANNEL_DATA:
            seen[0] += 1
        send(pkttype, *args, **kwargs)
    conn.send_packet = send_packet
    return seen


async def upload(port: int, cipher: str, lean: bool, blocks: list[bytes],
                 two: bytes = b"", **options: Any
                 ) -> tuple[bytes, int, bool]:
    """Send *blocks* on one channel; the server's digest of them, the
    data packets asyncssh's path sent, and whether the lean path was
    installed."""
    async with asyncssh.connect(
            "127.0.0.1", port, known_hosts=None, username="u",
            encryption_algs=[cipher], **options) as conn:
        reader, writer = await open_sftp_channel(conn, "/digest")
        installed = fast_send.lean_channel(writer.channel) if lean \
            else False
        seen = count_asyncssh_data(conn)
        for block in blocks:
            if two:
                writer.write_two(two, block)
            else:
                writer.write(block)
            await writer.drain()
            await asyncio.sleep(0)
        writer.write_eof()
        answer = await reader.read()
        while not reader.at_eof():
            answer += await reader.read()
    return answer, seen[0], installed


def expected(blocks: list[bytes]) -> bytes:
    data = b"".join(blocks)
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


BLOCKS = [os.urandom(n) for n in (1, 9, 32768, 32769, 261120, 700000,
                                  5000, 261120, 261120)]


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "aes256-ctr",
                                    "chacha20-poly1305@openssh.com"])
async def test_lean_path_sends_the_same_bytes(port: int, cipher: str
                                              ) -> None:
    answer, seen, installed = await upload(port, cipher, True, BLOCKS)
    assert installed
    assert answer == expected(BLOCKS)
    assert seen == 0        # all went the lean way


@pytest.mark.parametrize("lean", [True, False])
async def test_a_head_and_its_data_as_if_joined(
        port: int, lean: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_two's head leaves in one packet with the start of its data
    (the lean path: not joined first), or joined to it (asyncssh's)."""
    heads = []
    send = fast_send._PacketSender.send

    def recording(self: Any, chan: Any, data: Any, first: Any = b"") -> bool:
        heads.append(bytes(first))
        return send(self, chan, data, first)
    monkeypatch.setattr(fast_send._PacketSender, "send", recording)
    head = b"H" * 29
    answer, seen, installed = await upload(
        port, "aes128-gcm@openssh.com", lean, BLOCKS, two=head)
    assert installed == lean
    assert answer == expected([head + block for block in BLOCKS])
    assert (head in heads) == lean and any(heads) == lean
    assert (seen == 0) == lean


async def test_asyncssh_path_without_it(port: int) -> None:
    answer, seen, _ = await upload(port, "aes128-gcm@openssh.com", False,
                                   BLOCKS)
    assert answer == expected(BLOCKS)
    assert seen > 40


async def test_rekeying_mid_write_takes_asyncssh_s_path(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lean = [0]
    send = fast_send._PacketSender.send

    def counted(self: Any, *args: Any) -> bool:
        sent = send(self, *args)
        lean[0] += sent
        return sent
    monkeypatch.setattr(fast_send._PacketSender, "send", counted)
    blocks = [os.urandom(261120) for _ in range(12)]
    answer, seen, _ = await upload(port, "aes128-gcm@openssh.com", True,
                                   blocks, rekey_bytes=400000)
    assert answer == expected(blocks)
    assert seen > 0         # the packets that found a key exchange due
    assert lean[0] > 40     # and the others, with each new key


async def test_cbc_keeps_asyncssh_s_ignore_packets(port: int) -> None:
    answer, seen, _ = await upload(port, "aes128-cbc", True, BLOCKS)
    assert answer == expected(BLOCKS)
    assert seen > 40


async def test_packet_logging_takes_asyncssh_s_path(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SSHLogger, "_debug_level", 3)
    answer, seen, _ = await upload(port, "aes128-gcm@openssh.com", True,
                                   BLOCKS[:4])
    assert answer == expected(BLOCKS[:4])
    assert seen > 2


async def test_other_asyncssh_internals_leave_the_channel_alone(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def gone() -> list[object]:
        raise AttributeError("SSHChannel._flush_send_buf")
    monkeypatch.setattr(fast_send, "USE", PrivateUse("lean", gone, {}))
    assert fast_send.problem() is not None
    answer, seen, installed = await upload(
        port, "aes128-gcm@openssh.com", True, BLOCKS)
    assert not installed
    assert answer == expected(BLOCKS)
    assert seen > 40


def test_reviewed_digest_matches_the_installed_asyncssh() -> None:
    if asyncssh.__version__ in fast_send.USE.reviewed:
        from psftp_shell.ssh.asyncssh_private import digest
        assert digest(fast_send._relies_on()) == \
            fast_send.USE.reviewed[asyncssh.__version__]
    assert fast_send.problem() is None
