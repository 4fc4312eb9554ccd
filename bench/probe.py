"""Measure what the relay alone imposes: round trip and raw TCP ceiling.

A small server (:class:`Sink`) answers two kinds of connection: ``E``
echoes every byte back, ``S`` swallows everything and notes when the
first and the last byte arrived.  :func:`measure_ceiling` runs a relay in
front of it and reports the round trip and the throughput of one and of
several parallel streams, with no SSH involved.

:func:`sftp_request_cost` measures what one SFTP request costs sftp itself
(through its ssh, sshd and the server), which is what its time for many
small files is made of: machines differ in it more than in CPU speed.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.runner import run_timed
from psftp_shell.devserver import end_process

CHUNK = 1 << 20


@dataclass
class _Arrival:
    """When a sink connection saw its first and last byte."""

    first: float = 0.0
    last: float = 0.0
    size: int = 0


@dataclass
class Sink:
    """An echo-or-discard TCP server on 127.0.0.1 in daemon threads."""

    port: int = 0
    arrivals: list[_Arrival] = field(default_factory=list)
    _sock: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        """Listen on a free port; return it."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()
        return self.port

    def stop(self) -> None:
        """Stop accepting connections."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            mode = conn.recv(1)
            if mode == b"E":
                _echo(conn)
            elif mode == b"S":
                arrival = _swallow(conn)
                with self._lock:
                    self.arrivals.append(arrival)
                conn.sendall(b"k")

    def take(self) -> list[_Arrival]:
        """Return and forget the arrivals noted so far."""
        with self._lock:
            taken, self.arrivals = self.arrivals, []
        return taken


def _echo(conn: socket.socket) -> None:
    while data := conn.recv(CHUNK):
        conn.sendall(data)


def _swallow(conn: socket.socket) -> _Arrival:
    arrival = _Arrival()
    while data := conn.recv(CHUNK):
        now = time.perf_counter()
        if not arrival.size:
            arrival.first = now
        arrival.last = now
        arrival.size += len(data)
    return arrival


def round_trip(port: int, count: int = 5) -> float:
    """Return the median round trip of one byte through *port*, seconds."""
    times = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"E")
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"x")
            if not sock.recv(1):
                raise OSError("echo connection closed early")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


REQUEST_PROBE_LINES = 200
"""``cd .`` lines in the request probe's script: two requests each
(REALPATH, then STAT), against a script of ``pwd`` (none)."""
REQUEST_PROBE_TIMEOUT = 120.0
"""Seconds one run of the probe may take (then its process group is
killed and the probe gives no figure)."""


def sftp_request_cost(argv: list[str], workdir: Path,
                      env: dict[str, str] | None = None, pairs: int = 3
                      ) -> float | None:
    """Seconds one SFTP request takes sftp, one after the other as it
    makes them: *argv* is ``sftp`` with its options and host, without
    ``-b``.  The median of *pairs* of runs after one untimed run (the
    server's first login is slower); None if a run failed or the
    figure is lost in the noise."""
    scripts = {"idle": "pwd\n", "busy": "cd .\n" * REQUEST_PROBE_LINES}
    for name, text in scripts.items():
        (workdir / f"request-probe-{name}").write_text(text)
    logs = workdir / "request-probe"
    logs.mkdir(exist_ok=True)

    def run(name: str) -> float | None:
        batch = workdir / f"request-probe-{name}"
        done = run_timed(argv[:-1] + ["-b", str(batch), argv[-1]],
                         logs, REQUEST_PROBE_TIMEOUT, env)
        return done.seconds if done.ok else None

    if run("idle") is None:
        return None
    costs = []
    for _ in range(pairs):
        idle, busy = run("idle"), run("busy")
        if idle is None or busy is None:
            return None
        costs.append((busy - idle) / (2 * REQUEST_PROBE_LINES))
    cost = statistics.median(costs)
    return cost if cost > 0 else None


def _send(port: int, size: int, errors: list[BaseException]) -> None:
    block = bytes(CHUNK)
    try:
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=120) as sock:
            sock.sendall(b"S")
            left = size
            while left > 0:
                sock.sendall(block[:min(left, CHUNK)])
                left -= CHUNK
            sock.shutdown(socket.SHUT_WR)
            if sock.recv(1) != b"k":
                raise OSError("sink did not confirm")
    except BaseException as exc:  # noqa: BLE001 - reported by the caller
        errors.append(exc)


def throughput(port: int, sink: Sink, size: int, streams: int = 1) -> float:
    """Send *size* bytes over *streams* parallel connections; bytes/s.

    The rate is taken at the sink, from the first to the last byte, so
    neither the connection set-up nor the path's delay counts.
    """
    sink.take()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_send,
                                args=(port, size // streams, errors))
               for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise OSError(f"relay probe failed: {errors[0]!r}")
    arrivals = sink.take()
    total = sum(a.size for a in arrivals)
    first = min(a.first for a in arrivals)
    last = max(a.last for a in arrivals)
    if total != size // streams * streams:
        raise OSError(f"relay probe lost data: {total} of {size} bytes")
    return total / max(last - first, 1e-6)


def start_relay(target_port: int, delay_ms: float, rate_mbit: float,
                max_seconds: float = 7200.0) -> tuple[subprocess.Popen[str],
                                                      int]:
    """Start ``python -m bench.relay`` in front of *target_port*.

    Returns the process and the port it listens on.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.relay", "--listen-port", "0",
         "--target-port", str(target_port), "--delay-ms", str(delay_ms),
         "--rate-mbit", str(rate_mbit), "--max-seconds", str(max_seconds)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        proc.wait()
        raise RuntimeError("the relay did not start")
    return proc, int(line[1])


def stop_relay(proc: subprocess.Popen[str]) -> None:
    """Stop a relay started with :func:`start_relay`."""
    end_process(proc)
    if proc.stdout is not None:
        proc.stdout.close()


@dataclass
class Ceiling:
    """What a relay configuration carries on its own, without SSH."""

    delay_ms: float
    rate_mbit: float
    rtt: float
    one_stream: float
    streams: int
    many_streams: float


def measure_ceiling(delay_ms: float, rate_mbit: float, size: int,
                    streams: int = 8) -> Ceiling:
    """Measure a relay's round trip and raw TCP throughput (bytes/s)."""
    sink = Sink()
    sink.start()
    proc, port = start_relay(sink.port, delay_ms, rate_mbit, 600)
    try:
        rtt = round_trip(port)
        one = throughput(port, sink, size, 1)
        many = throughput(port, sink, size, streams)
    finally:
        stop_relay(proc)
        sink.stop()
    return Ceiling(delay_ms, rate_mbit, rtt, one, streams, many)


if __name__ == "__main__":
    for delay, rate in ((0, 0), (10, 1000), (50, 1000), (25, 1000)):
        c = measure_ceiling(delay, rate, 128 << 20)
        print(f"{delay} ms {rate} Mbit/s: rtt {c.rtt * 1000:.1f} ms, "
              f"1 stream {c.one_stream / 1e6:.1f} MB/s, "
              f"{c.streams} streams {c.many_streams / 1e6:.1f} MB/s")
