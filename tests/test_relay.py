"""The benchmark's link-emulating relay, run as ``python -m bench.relay``.

Each test starts the relay in front of a small echo-or-sink server of its
own and checks what a real path would do: data arrives intact both ways,
a round trip grows by twice the one-way delay, the rate limit holds and is
shared by all connections, and the relay stops by itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """A TCP server in threads: ``E`` connections echo, ``S`` ones count
    what they receive and note when the last byte came."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[int, float]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            mode = conn.recv(1)
            total, last = 0, 0.0
            while data := conn.recv(1 << 16):
                if mode == b"E":
                    conn.sendall(data)
                total, last = total + len(data), time.monotonic()
            self.received.append((total, last))

    def close(self) -> None:
        self.sock.close()


@contextmanager
def relay(target: int, *args: str) -> Iterator[int]:
    """Run the standalone relay in front of *target*; yield its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.relay", "--target-port", str(target),
         "--max-seconds", "60", *args],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        assert words[:1] == ["listening"], words
        yield int(words[1])
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def connect(port: int, mode: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mode)
    return sock


def echo_round_trip(port: int) -> float:
    """The shortest of five trips of one byte through *port* and back."""
    times = []
    with connect(port, b"E") as sock:
        for _ in range(5):
            start = time.monotonic()
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
            times.append(time.monotonic() - start)
    return min(times)       # load only adds to a round trip


def test_data_arrives_intact_both_ways(server: Server) -> None:
    payload = os.urandom(3 << 20)
    echoed = bytearray()
    with relay(server.port, "--delay-ms", "2", "--rate-mbit", "800") \
            as port, connect(port, b"E") as sock:
        def read_all() -> None:
            while data := sock.recv(1 << 16):
                echoed.extend(data)

        reader = threading.Thread(target=read_all)
        reader.start()
        sock.sendall(payload)
        # The relay passes the half-close on; the echo server then ends.
        sock.shutdown(socket.SHUT_WR)
        reader.join(20)
    assert not reader.is_alive()
    assert len(echoed) == len(payload)
    assert bytes(echoed) == payload


def test_round_trip_grows_by_twice_the_delay(server: Server) -> None:
    with relay(server.port) as port:
        plain = echo_round_trip(port)
    with relay(server.port, "--delay-ms", "40") as port:
        delayed = echo_round_trip(port)
    assert plain < 0.015
    assert 0.075 <= delayed <= 0.120
    assert 0.070 <= delayed - plain <= 0.115


def _send(port: int, size: int) -> None:
    with connect(port, b"S") as sock:
        sock.sendall(bytes(size))


def _rate(server: Server, port: int, sizes: list[int]) -> float:
    """Send *sizes* bytes on parallel connections; bytes/s at the sink."""
    start = time.monotonic()
    senders = [threading.Thread(target=_send, args=(port, size))
               for size in sizes]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    deadline = time.monotonic() + 20
    while len(server.received) < len(sizes) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(n for n, _ in server.received) == sorted(sizes)
    last = max(t for _, t in server.received)
    server.received.clear()
    return sum(sizes) / (last - start)


def test_rate_limit_holds_and_is_shared(server: Server) -> None:
    # 40 Mbit/s is 5 MB/s; one connection alone, then two sharing it.
    with relay(server.port, "--rate-mbit", "40") as port:
        alone = _rate(server, port, [4 << 20])
        shared = _rate(server, port, [2 << 20, 2 << 20])
    assert 4.0e6 <= alone <= 5.3e6
    assert 4.0e6 <= shared <= 5.3e6


def test_stops_after_max_seconds(server: Server) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.relay", "--target-port",
         str(server.port), "--max-seconds", "0.5"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("listening")
    assert proc.wait(10) == 0
    proc.stdout.close()


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def test_stops_when_its_parent_dies(server: Server, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = (f"{sys.executable} -m bench.relay --target-port {server.port}"
              f" --max-seconds 60 >/dev/null & echo $! > {pidfile}; "
              "sleep 1.5")
    subprocess.run(["sh", "-c", script], cwd=ROOT, check=True, timeout=20)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = _gone(pid)
    if not gone:
        os.kill(pid, 9)
    assert gone


def test_queue_is_bounded(server: Server) -> None:
    # At 4 MB/s a sender may get about a second's worth, the queue bound
    # (1 MiB here) and the kernel's socket buffers ahead: far from 64 MiB.
    block = bytes(1 << 20)
    sent = 0
    with relay(server.port, "--rate-mbit", "32") as port, \
            connect(port, b"S") as sock:
        sock.settimeout(0.2)
        start = time.monotonic()
        while time.monotonic() - start < 1.0 and sent < 64 << 20:
            try:
                sent += sock.send(block)
            except TimeoutError:
                pass
    assert 3 << 20 <= sent <= 24 << 20
