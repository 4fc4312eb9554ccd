"""A fault-injecting TCP relay for the tests, on 127.0.0.1 only.

:class:`FaultRelay` listens on a free loopback port and forwards each
accepted connection to a target port (the private sshd).  Connections
are numbered in the order they arrive: with psftp-shell, connection 0 is
the control connection and 1, 2, ... are the pool's streams (and any
replacement).  A :class:`Rule` picks a connection by that number and
does something to it once a chosen number of bytes has passed in a
chosen direction:

``reset``
    close both sides with an RST (``SO_LINGER`` 0);
``close``
    close both sides with a plain FIN;
``silent``
    stop forwarding in both directions but keep both sockets open and
    keep reading (and dropping) what arrives: a peer that says nothing.

A rule may watch a connection other than the one it cuts (cut the
control connection once stream 2 has moved 3 MB); :meth:`FaultRelay.apply`
sets new rules that number connections from the next one.  The relay
counts the bytes of every connection in both directions, so a test can
see how much a second run moved.  It runs in the caller's event loop
(:meth:`FaultRelay.start`) or in a thread of its own
(:meth:`FaultRelay.start_in_thread`) for tests that block.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psftp_shell.devserver import start_in_thread, stop_thread

UP = "up"           # client to server
DOWN = "down"       # server to client
ACTIONS = ("reset", "close", "silent")


@dataclass
class Rule:
    """What to do to connection *index* once *after* bytes went *direction*.

    :param watch: the connection whose bytes are counted (default: *index*)
    :param refuse: instead, close the connection as soon as it arrives
    """

    index: int
    after: int = 0
    direction: str = DOWN
    action: str = "reset"
    watch: int | None = None
    refuse: bool = False
    fired: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS or self.direction not in (UP, DOWN):
            raise ValueError(f"bad rule: {self}")


@dataclass(eq=False)
class Link:
    """One relayed connection: its sockets' writers and its counts."""

    index: int
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    moved: dict[str, int] = field(default_factory=lambda: {UP: 0, DOWN: 0})
    state: str = "open"         # open, silent, reset, close, done

    def end(self) -> None:
        """Close both sides, whatever was done to them before."""
        if self.state == "silent":
            self.state = "open"
        self.cut("close")

    def cut(self, action: str) -> None:
        """Reset, close or silence both sides."""
        if self.state != "open":
            return
        self.state = action
        if action == "silent":
            return
        for writer in (self.client, self.server):
            if writer is None:
                continue
            if action == "reset":
                _linger_zero(writer)
            writer.close()


def _linger_zero(writer: asyncio.StreamWriter) -> None:
    """Make the next close send an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()


class FaultRelay:
    """Relay 127.0.0.1:*port* to 127.0.0.1:*target*, applying *rules*."""

    def __init__(self, target: int, rules: list[Rule] | None = None
                 ) -> None:
        self.target = target
        self.rules = list(rules or [])
        self.port = 0
        self.links: list[Link] = []
        self.base = 0               # rules count connections from here
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- life

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in self.links:
            link.end()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def start_in_thread(self) -> None:
        """Run the relay in a daemon thread with its own event loop."""
        start_in_thread(self.start, 10)

    def stop_thread(self) -> None:
        """Stop a relay started with :meth:`start_in_thread`."""
        if self._loop is not None:
            stop_thread(self.stop, self._loop)

    def apply(self, rules: list[Rule]) -> None:
        """Replace the rules; they number connections from the next one.
        """
        self.rules = list(rules)
        self.base = len(self.links)

    # ---- what tests read

    def moved(self, index: int | None = None, direction: str = DOWN) -> int:
        """Bytes relayed *direction* on connection *index* (or on all)."""
        links = self.links if index is None else [
            link for link in self.links if link.index == index]
        return sum(link.moved[direction] for link in links)

    def cut(self, index: int, action: str = "reset") -> None:
        """Apply *action* to connection *index* now (from any thread)."""
        def apply() -> None:
            for link in self.links:
                if link.index == index:
                    link.cut(action)
        try:
            running: asyncio.AbstractEventLoop | None = \
                asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            apply()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(apply)

    # ---- relaying

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = Link(len(self.links), writer)
        self.links.append(link)
        try:
            number = link.index - self.base
            if any(r.refuse and r.index == number for r in self.rules):
                link.cut("close")
                return
            try:
                up_reader, link.server = await asyncio.open_connection(
                    "127.0.0.1", self.target)
            except OSError:
                link.cut("reset")
                return
            await asyncio.gather(
                self._pump(link, reader, link.server, UP),
                self._pump(link, up_reader, writer, DOWN),
                return_exceptions=True)
        finally:
            link.end()
            link.state = "done"
            self._tasks.discard(task)

    async def _pump(self, link: Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, direction: str) -> None:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if link.state == "silent":
                continue            # read and drop: say nothing
            if link.state != "open":
                break
            data = self._forward(link, data, direction)
            if data:
                writer.write(data)
                await writer.drain()
        if link.state == "open":
            with contextlib.suppress(OSError):
                writer.write_eof()
        elif link.state == "silent":
            link.end()              # one side gave up: end it all

    def _forward(self, link: Link, data: bytes, direction: str) -> bytes:
        """Count *data*; fire the rules it reaches; what may pass."""
        before = link.moved[direction]
        for rule in self.rules:
            watched = rule.index if rule.watch is None else rule.watch
            if rule.fired or rule.refuse or rule.direction != direction \
                    or self.base + watched != link.index:
                continue
            if before + len(data) >= rule.after:
                rule.fired = True
                if self.base + rule.index == link.index:
                    data = data[:max(0, rule.after - before)]
                    link.moved[direction] += len(data)
                    self._write_then_cut(link, data, direction, rule.action)
                    return b""
                self.cut(self.base + rule.index, rule.action)
        link.moved[direction] += len(data)
        return data

    def _write_then_cut(self, link: Link, data: bytes, direction: str,
                        action: str) -> None:
        writer = link.server if direction == UP else link.client
        if data and writer is not None:
            writer.write(data)
        link.cut(action)


def relay_config(ssh_config: Path, known_hosts: Path, port: int,
                 relay_port: int, workdir: Path) -> Path:
    """An ssh_config for the same host, through the relay on *relay_port*.

    The known_hosts entry for the sshd's *port* is copied for the relay's
    port, so host key checking stays strict.
    """
    lines = []
    for line in known_hosts.read_text().splitlines():
        lines.append(line.replace(f"]:{port} ", f"]:{relay_port} "))
    hosts = workdir / f"known_hosts_relay_{relay_port}"
    hosts.write_text("\n".join(lines) + "\n")
    config = []
    for line in ssh_config.read_text().splitlines():
        key = line.strip().split(" ", 1)[0].lower()
        if key == "port":
            line = f"  Port {relay_port}"
        elif key == "userknownhostsfile":
            line = f"  UserKnownHostsFile {hosts}"
        config.append(line)
    path = workdir / f"ssh_config_relay_{relay_port}"
    path.write_text("\n".join(config) + "\n")
    return path


async def until(check: Callable[[], bool], seconds: float = 30) -> None:
    """Wait until *check()* is true (polling), failing after *seconds*."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the relay never got there"
        await asyncio.sleep(0.05)
