"""A user-space TCP relay that emulates a wide-area path on loopback.

Kernel netem is not available everywhere, so the benchmark puts this relay
between the clients and sshd.  Each direction of the path is one shared
:class:`Link` for every connection, as on a real path: a chunk read from
a sender is serialised at the link's rate after whatever is already queued
(``start = max(now, free_at)``, ``free_at = start + len / rate``) and is
delivered one propagation delay later (``free_at + delay``).  While more
than a bounded number of bytes are queued on a link (a bandwidth-delay
product plus some slack), the relay stops reading from its senders, so TCP
flow control pushes back on them instead of the relay buffering without
limit.

Deliveries are batched: a link keeps one timer for the earliest pending
chunk and hands over every chunk that is due when it fires, so a 1 Gbit/s
path costs a few hundred timer wake-ups a second, not one per packet.

Run it standalone with::

    python -m bench.relay --listen-port 0 --target-port 2222 \\
        --delay-ms 50 --rate-mbit 1000

It prints ``listening <port>`` once it accepts connections and stops by
itself after ``--max-seconds`` or as soon as its parent process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys

# Chunks due within this many seconds of a timer are delivered together.
BATCH_SECONDS = 0.0005
# The queue bound's slack on top of the bandwidth-delay product: this many
# seconds of the link's rate, and at least MIN_SLACK bytes.
SLACK_SECONDS = 0.010
MIN_SLACK = 1 << 20
# A queue bound for links without a rate limit.
UNLIMITED_QUEUE = 16 << 20


def queue_limit(rate: float | None, delay: float) -> int:
    """Return the default queue bound for a link, in bytes.

    *rate* is in bytes per second (``None``: unlimited), *delay* the
    one-way delay in seconds.
    """
    if rate is None:
        return UNLIMITED_QUEUE
    return int(rate * delay) + max(MIN_SLACK, int(rate * SLACK_SECONDS))


# What a queued entry carries besides data.
DATA, EOF, CLOSE = 0, 1, 2


class _Pipe:
    """One direction of one relayed connection."""

    def __init__(self, conn: _Connection, link: Link) -> None:
        self.conn = conn
        self.link = link
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.link_blocked = False
        self.dst_full = False
        self.ended = False

    def update_reading(self) -> None:
        """Pause or resume reading from the sender as the blocks demand."""
        src = self.src
        if src is None or src.is_closing() or self.ended:
            return
        if self.link_blocked or self.dst_full or self.dst is None:
            src.pause_reading()
        else:
            src.resume_reading()

    def deliver(self, data: bytes, kind: int) -> None:
        """Hand *data*, an EOF or a close over to the receiver."""
        dst = self.dst
        if dst is None or dst.is_closing():
            return
        if kind == DATA:
            dst.write(data)
        elif kind == EOF:
            self.conn.eof_delivered(dst)
        else:
            dst.close()


class Link:
    """One direction of an emulated path, shared by every connection.

    :param rate: bytes per second, or ``None`` for no rate limit
    :param delay: one-way propagation delay in seconds
    :param limit: queued bytes above which the senders are paused
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, rate: float | None,
                 delay: float, limit: int) -> None:
        self.loop = loop
        self.rate = rate
        self.delay = delay
        self.limit = limit
        self.free_at = 0.0
        self.queued = 0
        self._queue: collections.deque[
            tuple[float, _Pipe, bytes, int]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._blocked: list[_Pipe] = []

    def send(self, pipe: _Pipe, data: bytes, kind: int = DATA) -> None:
        """Schedule *data* (or an EOF or close) from *pipe* for delivery."""
        start = max(self.loop.time(), self.free_at)
        if self.rate is not None:
            start += len(data) / self.rate
        self.free_at = start
        due = start + self.delay
        self._queue.append((due, pipe, data, kind))
        self.queued += len(data)
        if self._timer is None:
            self._arm(due)
        if self.queued > self.limit and not pipe.link_blocked:
            pipe.link_blocked = True
            self._blocked.append(pipe)
            pipe.update_reading()

    def _arm(self, due: float) -> None:
        # The selector wakes up to a millisecond late: aim half of one
        # early, as _deliver takes whatever is due within BATCH_SECONDS.
        self._timer = self.loop.call_at(due - BATCH_SECONDS, self._deliver)

    def _deliver(self) -> None:
        """Deliver every chunk that is due, then re-arm the timer."""
        self._timer = None
        horizon = self.loop.time() + BATCH_SECONDS
        queue = self._queue
        while queue and queue[0][0] <= horizon:
            _, pipe, data, kind = queue.popleft()
            self.queued -= len(data)
            pipe.deliver(data, kind)
        if queue:
            self._arm(queue[0][0])
        if self._blocked and self.queued <= self.limit:
            blocked, self._blocked = self._blocked, []
            for pipe in blocked:
                pipe.link_blocked = False
                pipe.update_reading()


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; what it reads goes to *out*."""

    def __init__(self, conn: _Connection, out: _Pipe, into: _Pipe) -> None:
        self.conn = conn
        self.out = out
        self.into = into
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.out.src = transport
        self.into.dst = transport
        self.out.update_reading()
        self.into.update_reading()
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.out.link.send(self.out, data)

    def eof_received(self) -> bool:
        if not self.out.ended:
            self.out.ended = True
            self.out.link.send(self.out, b"", EOF)
        return True

    def pause_writing(self) -> None:
        self.into.dst_full = True
        self.into.update_reading()

    def resume_writing(self) -> None:
        self.into.dst_full = False
        self.into.update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.out.link.send(self.out, b"", CLOSE)


class _Connection:
    """A client's connection and the relay's connection to the target."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.up = _Pipe(self, relay.up)
        self.down = _Pipe(self, relay.down)
        self.client = _Side(self, self.up, self.down)
        self.server = _Side(self, self.down, self.up)
        self.eofs = 0

    def side_made(self, side: _Side) -> None:
        """Connect to the target once the client's connection is in."""
        if side is self.client:
            task = asyncio.get_running_loop().create_task(self._connect())
            self.relay.tasks.add(task)
            task.add_done_callback(self.relay.tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: self.server, self.relay.target_host,
                self.relay.target_port)
        except OSError:
            if self.client.transport is not None:
                self.client.transport.close()

    def eof_delivered(self, dst: asyncio.Transport) -> None:
        """Half-close *dst*; close both sockets once both ways ended."""
        self.eofs += 1
        if self.eofs >= 2:
            for side in (self.client, self.server):
                if side.transport is not None:
                    side.transport.close()
        elif dst.can_write_eof():
            dst.write_eof()


class Relay:
    """A listening relay: every accepted connection is relayed to a target.

    :param delay: one-way delay in seconds, added in each direction
    :param rate: bytes per second per direction, ``None`` for unlimited
    :param limit: the queue bound per direction (default: see
        :func:`queue_limit`)
    """

    def __init__(self, target_port: int, *, delay: float = 0.0,
                 rate: float | None = None, limit: int | None = None,
                 target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.rate = rate
        self.limit = limit if limit is not None else queue_limit(rate, delay)
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.up: Link
        self.down: Link

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listen on *host*:*port* (0: any free port); return the port."""
        loop = asyncio.get_running_loop()
        self.up = Link(loop, self.rate, self.delay, self.limit)
        self.down = Link(loop, self.rate, self.delay, self.limit)
        self._server = await loop.create_server(
            lambda: _Connection(self).client, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()
            self._server = None


async def _watch(max_seconds: float, parent: int) -> None:
    """Return after *max_seconds* or once process *parent* is gone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    while loop.time() < deadline:
        if os.getppid() != parent:
            return
        await asyncio.sleep(min(0.25, max(0.0, deadline - loop.time())))


async def serve(args: argparse.Namespace) -> None:
    """Run a relay as the command line asks, until it is time to stop."""
    parent = os.getppid()
    rate = args.rate_mbit * 1e6 / 8 if args.rate_mbit else None
    relay = Relay(args.target_port, target_host=args.target_host,
                  delay=args.delay_ms / 1000, rate=rate,
                  limit=args.queue_bytes)
    port = await relay.start(args.listen_port, args.listen_host)
    print(f"listening {port}", flush=True)
    await _watch(args.max_seconds, parent)
    await relay.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the standalone relay's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay",
        description="Relay TCP connections with added delay and a shared "
                    "rate limit per direction.")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0,
                        help="0 picks a free port (printed on stdout)")
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="one-way delay added in each direction")
    parser.add_argument("--rate-mbit", type=float, default=0.0,
                        help="rate per direction, Mbit/s (0: unlimited)")
    parser.add_argument("--queue-bytes", type=int, default=None,
                        help="queue bound per direction (default: the "
                             "bandwidth-delay product plus slack)")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="stop after this long (default 3600)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the standalone relay."""
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
