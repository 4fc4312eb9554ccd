"""SSH transport: channels on one connection, and the receive window."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.sftp.client import OPEN_CREAT, OPEN_READ, OPEN_WRITE
from psftp_shell.ssh import asyncssh_speedups as sshfast
from psftp_shell.ssh import fast_receive, fast_send
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport


def transport_for(sshd: PrivateSSHD) -> SSHTransport:
    target = SSHTarget(host=HOST_ALIAS, config_file=str(sshd.ssh_config),
                       batch_mode=True)
    return SSHTransport(Connector(target, BatchPrompter()))


async def test_channels_share_one_connection(sshd: PrivateSSHD,
                                             clean_ssh_env: None) -> None:
    transport = transport_for(sshd)
    try:
        first = await transport.open_client()
        second = await transport.open_channel(first)
        assert len(transport.connections) == 1
        assert second is not first
        conn = transport.connections[0]     # one receive path for both
        assert fast_receive.installed(conn)
        assert not getattr(conn.data_received, "split_reads", False)
        assert await second.realpath(".") == await first.realpath(".")
    finally:
        await transport.close()


@pytest.mark.parametrize("adapters", ["fast", "split", "none"])
async def test_window_grows_and_data_stays_intact(
        sshd: PrivateSSHD, remote_dir: object, clean_ssh_env: None,
        adapters: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fast receive path (AES-GCM, the default), with asyncssh's
    receive path in pieces (another cipher), and with asyncssh left as
    it is (the adapters' and fast_send's fallbacks)."""
    if adapters != "fast":
        monkeypatch.setattr(fast_receive, "install", lambda conn: False)
    if adapters == "none":
        monkeypatch.setattr(sshfast, "split_reads", lambda conn: False)
        monkeypatch.setattr(sshfast, "skip_ignores", lambda conn: False)
        monkeypatch.setattr(fast_send, "lean_channel", lambda chan: False)
    data = os.urandom(6 << 20)
    path = sshd.root / "window.bin"
    copy = sshd.root / "window-up.bin"
    path.write_bytes(data)
    transport = transport_for(sshd)
    try:
        client = await transport.open_client()
        conn = transport.connections[0]
        assert getattr(conn.data_received, "split_reads", False) is \
            (adapters == "split")
        assert fast_receive.installed(conn) is (adapters == "fast")
        assert getattr(conn.send_packet, "skip_ignores", False) is \
            (adapters != "none")
        writer: Any = transport._writer_of[id(client)]
        assert getattr(writer.channel, "_lean", False) is \
            (adapters != "none")
        before = transport.get_window(client)
        assert before is not None and before < 16 << 20
        transport.set_window(client, 16 << 20)
        assert transport.get_window(client) == 16 << 20
        handle = await client.open(str(path), OPEN_READ)
        block = 261120     # what OpenSSH serves per READ
        futures = [client.read_nowait(handle, off, block)
                   for off in range(0, len(data), block)]
        got = b"".join([await f for f in futures])
        await client.close_handle(handle)
        assert got == data
        # and back up again: the send side, IGNORE packets skipped or not
        handle = await client.open(str(copy), OPEN_WRITE | OPEN_CREAT)
        await asyncio.gather(*[
            client.write_nowait(handle, off, data[off:off + block])
            for off in range(0, len(data), block)])
        await client.close_handle(handle)
        assert copy.read_bytes() == data
    finally:
        await transport.close()
        path.unlink()
        copy.unlink(missing_ok=True)


class _LateLogin:
    """A connector whose login finishes when told to."""

    def __init__(self) -> None:
        self.resolved = None
        self.go = asyncio.Event()
        self.conns: list[_Conn] = []

    async def connect(self) -> _Conn:
        await self.go.wait()
        conn = _Conn()
        self.conns.append(conn)
        return conn


class _Conn:
    closed = False

    def close(self) -> None:
        self.closed = True


async def test_a_login_that_ends_as_it_is_given_up_is_closed() -> None:
    """The login finishes in the very turn the wait for it is cancelled
    (a stream no longer wanted): its connection is closed, not left to
    the garbage collector (a ResourceWarning at exit, once in CI)."""
    connector = _LateLogin()
    transport = SSHTransport(connector)     # type: ignore[arg-type]
    waiting = asyncio.ensure_future(transport._connect())
    await asyncio.sleep(0.01)
    connector.go.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert [conn.closed for conn in connector.conns] == [True]


async def test_a_discarded_stream_is_gone_when_discard_returns(
        sshd: PrivateSSHD, clean_ssh_env: None) -> None:
    """Its socket is closed by then: a login started next never meets
    it half closed."""
    transport = transport_for(sshd)
    try:
        await transport.open_client()
        extra = await transport.open_client()
        conn = transport.connections[-1]
        sock = conn.get_extra_info("socket")
        assert sock.fileno() >= 0
        await transport.discard(extra)
        assert sock.fileno() == -1
        assert conn not in transport.connections
    finally:
        await transport.close()
