"""The adapters on asyncssh's per-packet path, their fallbacks, and
the pipes to ``-S``/``-D`` processes."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from typing import Any

import asyncssh
import pytest
from asyncssh.logging import SSHLogger
from asyncssh.packet import SSHPacketLogger

from psftp_shell.ssh import asyncssh_speedups as sshfast
from psftp_shell.ssh import transport


class FakeConn:
    """A protocol that records what its transport hands it."""

    def __init__(self) -> None:
        self.pieces: list[tuple[bytes, Any]] = []
        self.closed = False

    def data_received(self, data: bytes, datatype: Any = None) -> None:
        assert isinstance(data, (bytes, memoryview))
        self.pieces.append((bytes(data), datatype))

    def is_closed(self) -> bool:
        return self.closed


def test_split_reads_hands_on_pieces_in_order() -> None:
    conn = FakeConn()
    assert sshfast.split_reads(conn, piece=1000)
    assert not sshfast.split_reads(conn, piece=1000)   # once only
    data = os.urandom(4500)
    conn.data_received(data, 7)
    assert [len(p) for p, _ in conn.pieces] == [1000] * 4 + [500]
    assert b"".join(p for p, _ in conn.pieces) == data
    assert {t for _, t in conn.pieces} == {7}
    conn.pieces.clear()
    conn.data_received(b"small")
    assert conn.pieces == [(b"small", None)]


def test_split_reads_stops_once_the_connection_closed() -> None:
    conn = FakeConn()
    sshfast.split_reads(conn, piece=10)
    real = FakeConn.data_received

    def closing(data: bytes, datatype: Any = None) -> None:
        real(conn, data, datatype)
        conn.closed = True
    conn.data_received = closing            # type: ignore[method-assign]
    sshfast.split_reads(conn, piece=10)
    conn.data_received(b"x" * 35)
    assert conn.pieces == [(b"x" * 10, None)]


def test_split_reads_leaves_other_objects_alone() -> None:
    thing = object()
    assert not sshfast.split_reads(thing)


@pytest.fixture
def packet_log_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncssh's own packet logging during the test (earlier tests may
    have adapted it, for the whole process), as it was after it."""
    for name in ("log_sent_packet", "log_received_packet"):
        method = getattr(SSHPacketLogger, name)
        monkeypatch.setattr(SSHPacketLogger, name, method)
        monkeypatch.setattr(SSHPacketLogger, name,
                            getattr(method, "__wrapped__", method))
    monkeypatch.setattr(SSHLogger, "_debug_level", SSHLogger._debug_level)


class Recorder(SSHPacketLogger):
    """A packet logger whose formatter records what it is asked."""

    def __init__(self) -> None:
        self.logged: list[tuple[Any, ...]] = []

    def _log_packet(self, *args: Any) -> None:
        self.logged.append(args)


def test_quiet_packet_log_skips_only_what_would_be_dropped(
        packet_log_methods: None) -> None:
    assert sshfast.quiet_packet_log()
    assert sshfast.quiet_packet_log()       # a second call is harmless
    rec = Recorder()
    asyncssh.set_debug_level(2)
    rec.log_received_packet(94, 1, b"data")
    rec.log_sent_packet(94, 2, b"data")
    assert rec.logged == []
    asyncssh.set_debug_level(3)             # packet logging on
    rec.log_received_packet(94, 1, b"data")
    rec.log_sent_packet(94, 2, b"data")
    assert [args[0] for args in rec.logged] == ["Received", "Sent"]


def test_quiet_packet_log_falls_back_when_asyncssh_differs(
        packet_log_methods: None, monkeypatch: pytest.MonkeyPatch) -> None:
    before = SSHPacketLogger.log_sent_packet
    monkeypatch.setattr(SSHLogger, "_debug_level", None)
    assert not sshfast.quiet_packet_log()
    assert SSHPacketLogger.log_sent_packet is before
    monkeypatch.setattr(SSHLogger, "_debug_level", 1)
    monkeypatch.delattr(SSHPacketLogger, "log_received_packet")
    assert not sshfast.quiet_packet_log()
    assert SSHPacketLogger.log_sent_packet is before
    rec = Recorder()
    rec.log_sent_packet(94, 2, b"data")     # asyncssh's own behaviour
    assert [args[0] for args in rec.logged] == ["Sent"]


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"),
                    reason="pipe sizes are Linux's")
def test_server_processes_get_big_pipes() -> None:
    """A ``-S``/``-D`` process's pipes hold :data:`PIPE_SIZE` bytes."""
    script = ("import fcntl; print(fcntl.fcntl(0, fcntl.F_GETPIPE_SZ), "
              "fcntl.fcntl(1, fcntl.F_GETPIPE_SZ))")
    out = subprocess.run(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE, preexec_fn=transport._ignore_sigint,
        check=True, input=b"").stdout.split()
    want = min(transport.PIPE_SIZE, int(
        open("/proc/sys/fs/pipe-max-size").read()))
    assert [int(n) for n in out] == [want, want]


class FakeSender:
    """A connection that records the packets it is asked to send."""

    def __init__(self, cipher: str) -> None:
        self.cipher = cipher
        self.sent: list[tuple[Any, ...]] = []

    def send_packet(self, pkttype: int, *args: bytes, **kwargs: Any
                    ) -> None:
        self.sent.append((pkttype, *args))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.cipher if name == "send_cipher" else default


def test_skip_ignores_drops_empty_ignores_unless_cbc() -> None:
    gcm = FakeSender("aes128-gcm@openssh.com")
    assert sshfast.skip_ignores(gcm)
    assert not sshfast.skip_ignores(gcm)            # once only
    gcm.send_packet(sshfast.IGNORE, sshfast.EMPTY)
    gcm.send_packet(sshfast.IGNORE, b"\0\0\0\1x")   # not asyncssh's
    gcm.send_packet(94, b"data")
    assert gcm.sent == [(sshfast.IGNORE, b"\0\0\0\1x"), (94, b"data")]
    cbc = FakeSender("aes256-cbc")
    sshfast.skip_ignores(cbc)
    cbc.send_packet(sshfast.IGNORE, sshfast.EMPTY)
    assert cbc.sent == [(sshfast.IGNORE, sshfast.EMPTY)]
    assert not sshfast.skip_ignores(object())


def test_ignore_is_asyncssh_s_number() -> None:
    from asyncssh.constants import MSG_IGNORE
    from asyncssh.packet import String
    assert sshfast.IGNORE == MSG_IGNORE
    assert sshfast.EMPTY == String(b"")
