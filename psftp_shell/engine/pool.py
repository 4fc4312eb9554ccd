"""The streams parallel transfers run on, and the pool that opens them.

A :class:`Stream` is one SFTP client (one SSH channel, or one ``-D``
process) with its own budget of requests in flight.  With ``-n N`` the
:class:`StreamPool` opens N of them when the first transfer needs them
(not at login; or quietly ahead of it, :meth:`StreamPool.open_quietly`)
and keeps them for the session; that transfer starts as soon as the
first is open, and the others join it as they open.  The
shell's control connection is not among them, so Ctrl-C and the next
prompt never wait behind queued data.

Connections are opened concurrently, but never more than eight
handshakes at once: sshd's default ``MaxStartups 10:30:100`` starts
dropping unauthenticated connections beyond ten.  A dropped or refused
attempt is retried after a growing pause; if fewer streams can be had,
the transfer carries on with those and says so once.  With several
channels per connection (a transport that offers ``open_channel``), N
streams share fewer TCP connections, each channel with its own window.

A stream whose connection is lost mid-session is replaced: after a
pause, a new connection is tried through the same gate and back-off,
and joins whatever transfer is running (through the listeners).  The
number of replacements per session is bounded, so a dead server costs a
few attempts, not an endless loop; without a replacement the transfer
finishes on the streams left.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Protocol

from psftp_shell.core.ordered_output import Printer
from psftp_shell.engine.stream import Stream
from psftp_shell.sftp.client import SFTPClient

MAX_HANDSHAKES = 8
ATTEMPTS = 4
FIRST_WAIT = 10.0
"""Seconds a command waits for its first stream (ConnectTimeout, when
set, instead) before it starts on the control connection; the streams
join it as they open."""
ATTEMPT_LIMIT = 3
"""An attempt to open a stream is given up after this many first waits:
a login that went silent (asyncssh's keepalives start only once logged
in) counts as a failed attempt instead of holding a stream for ever."""
BACKOFF = 0.25          # seconds before the second attempt; doubles
REPLACEMENTS_PER_STREAM = 2
"""Replacement connections a session may open, per stream asked for."""


class Opener(Protocol):
    """What the pool needs of a transport."""

    async def open_client(self) -> SFTPClient:
        """Open one more SFTP client on a connection of its own."""
        ...


class Hush(Protocol):
    """Logins made quiet: none asks or tells the user anything."""

    spoke: bool
    """A login wanted to ask or tell (and failed instead)."""

    def speak(self) -> None:
        """From now on, logins ask and tell as usual."""
        ...


Quietly = Callable[[], AbstractContextManager[Hush | None]]
"""Makes the transport's logins quiet inside (None: it cannot)."""


class ChannelOpener(Protocol):
    """A transport that can open more SFTP channels on a connection."""

    async def open_channel(self, client: SFTPClient) -> SFTPClient:
        """Open an SFTP client on the connection *client* runs on."""
        ...


class StreamPool:
    """Opens and keeps the N streams of a session's parallel transfers.

    :param transport: opens SFTP clients (``open_client``, and
        ``open_channel`` when *channels* > 1)
    :param size: the number of streams wanted (``-n``)
    :param requests: requests in flight per stream (``-R``)
    :param channels: streams per connection
    :param replacements: how many lost streams may be replaced in the
        session (default: :data:`REPLACEMENTS_PER_STREAM` per stream)
    """

    def __init__(self, transport: Opener, size: int, out: Printer, *,
                 requests: int, channels: int = 1,
                 max_handshakes: int = MAX_HANDSHAKES,
                 attempts: int = ATTEMPTS, backoff: float = BACKOFF,
                 replacements: int | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                 ) -> None:
        self.transport = transport
        self.size = size
        self.out = out
        self.requests = requests
        self.channels = max(1, channels)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._gate = asyncio.Semaphore(max(1, max_handshakes))
        self.ready: list[Stream] = []   # every stream opened, by index
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[Stream], None]] = []
        self.spares = REPLACEMENTS_PER_STREAM * size \
            if replacements is None else replacements
        self.replaced = 0               # replacements that opened
        self._gone: set[Stream] = set()
        self._replacing: set[asyncio.Task[None]] = set()
        self._closing = False
        self._connections = 0           # numbers given out so far
        self._early: asyncio.Task[None] | None = None
        self._hush: Hush | None = None
        patience = getattr(transport, "login_patience", None)
        found = patience() if callable(patience) else None
        self.first_wait = float(found) if found else FIRST_WAIT

    @property
    def opened(self) -> bool:
        """Whether opening the streams has begun."""
        return self._task is not None

    def live(self) -> list[Stream]:
        """The streams open and working now."""
        return [s for s in self.ready if s.usable()]

    def start(self) -> None:
        """Begin opening the streams now, before a transfer needs them."""
        self._start()

    def set_requests(self, requests: int) -> None:
        """Allow *requests* in flight per stream from now on.

        Streams opened early, before the server's limits were known, are
        idle: their budgets are replaced.
        """
        self.requests = requests
        for stream in self.ready:
            if stream.runs == 0:
                stream.budget = asyncio.Semaphore(max(1, requests))

    def _start(self) -> asyncio.Task[None]:
        if self._task is None:
            if self._hush is not None:  # logins under way may now ask
                self._hush.speak()
            self._task = asyncio.ensure_future(
                self._open_all() if self._early is None
                else self._adopt())
        return self._task

    def open_quietly(self, quietly: Quietly) -> None:
        """Open the streams now, in the background, without a word.

        For an interactive session about to show its first prompt.  Until
        a transfer wants them, a login that would ask or tell the user
        anything fails instead; then, or if a stream cannot be had, the
        streams opened are closed again and the first transfer opens
        them as it always did (its questions, messages and retries).
        A transfer that comes while they open takes those open, and the
        logins still under way carry on as its own.
        """
        if self._task is None and self._early is None:
            self._early = asyncio.ensure_future(self._open_ahead(quietly))

    async def _open_ahead(self, quietly: Quietly) -> None:
        with quietly() as hush:
            if hush is None:
                return
            self._hush = hush
            try:
                with contextlib.suppress(Exception):    # tried again
                    await self._open_more(self.size)
            finally:
                self._hush = None
        if self._task is None and (
                hush.spoke or len(self.live()) < self.size):
            await self._forget()

    async def _forget(self) -> None:
        """Close the streams opened ahead: the first transfer opens its own."""
        drop = getattr(self.transport, "discard", None)
        streams, self.ready = self.ready, []
        self._gone.clear()
        self._connections = 0
        for stream in streams:
            stream.client.on_lost = None
            with contextlib.suppress(Exception):
                await (stream.client.close() if drop is None
                       else drop(stream.client))

    async def _adopt(self) -> None:
        """The first transfer's streams, with those opened ahead: the
        missing ones are opened now, as without them."""
        assert self._early is not None
        if not self._early.done():
            await self._early
        elif len(self.live()) < self.size:  # one was lost while idle
            await self._forget()
        await self._open_more(self.size - len(self.ready))
        if len(self.ready) < self.size:
            self._say_fewer(len(self.ready))

    @property
    def opening(self) -> bool:
        """Whether streams are still being opened."""
        return self._task is not None and not self._task.done()

    async def first(self) -> list[Stream]:
        """The live streams once at least one is open (or none can be,
        or none has opened after :attr:`first_wait` seconds).

        The others keep opening; :meth:`subscribe` to hear of them.
        """
        task = self._start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.first_wait
        while not self.live() and not task.done():
            left = deadline - loop.time()
            if left <= 0:
                break
            self._wake.clear()
            woken = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait([task, woken], timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
        if task.done():
            task.result()
        return self.live()

    async def streams(self) -> list[Stream]:
        """The live streams, once every attempt to open them is over."""
        await asyncio.shield(self._start())
        return self.live()

    async def close(self) -> None:
        """Stop opening streams (at exit: nothing may outlive the loop)."""
        self._closing = True
        tasks = [t for t in (self._task, self._early, *self._replacing)
                 if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def subscribe(self, listener: Callable[[Stream], None]) -> None:
        """Call *listener* with each stream opened from now on."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Stream], None]) -> None:
        """Stop telling *listener* about new streams."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _new_connection(self) -> int:
        self._connections += 1
        return self._connections

    def _add(self, client: SFTPClient, connection: int,
             index: int | None = None) -> None:
        """A new stream: appended, or in place of lost stream *index*."""
        number = len(self.ready) if index is None else index
        stream = Stream.make(number, client, self.requests,
                             connection=connection)
        if index is None:
            self.ready.append(stream)
        else:
            self.ready[index] = stream
        if getattr(client, "on_lost", None) is None:
            # lost between commands too: replace it all the same
            client.on_lost = lambda _reason: self.lost(stream)
        self._wake.set()
        for listener in list(self._listeners):
            listener(stream)

    async def _open_all(self) -> None:
        await self._open_more(self.size)
        if len(self.ready) < self.size:
            self._say_fewer(len(self.ready))

    async def _open_more(self, count: int) -> None:
        connections = math.ceil(count / self.channels)
        counts = [min(self.channels, count - i * self.channels)
                  for i in range(connections)]
        await asyncio.gather(*(self._open_connection(n) for n in counts))

    def _say_fewer(self, got: int) -> None:
        if got == 0:
            self.out.logit("Could not open any extra connection: "
                           "transferring on the main connection only")
        else:
            self.out.logit(f"Could open only {got} of {self.size} streams: "
                           f"transferring on {got}")

    async def _open_connection(self, channels: int) -> None:
        """Open one connection's first channel, then its other channels."""
        first = await self._retry(self.transport.open_client)
        if first is None:
            return
        shared = self._new_connection()
        self._add(first, shared)
        opener = getattr(self.transport, "open_channel", None)
        for _ in range(channels - 1):
            if opener is None:
                extra = await self._retry(self.transport.open_client)
                connection = self._new_connection()
            else:
                extra = await self._try(lambda: opener(first))
                connection = shared
            if extra is not None:
                self._add(extra, connection)

    async def _retry(self, open_one: Callable[[], Awaitable[SFTPClient]]
                     ) -> SFTPClient | None:
        """Open a client, backing off after drops; None if all failed."""
        for attempt in range(self.attempts):
            if self._hush is not None and self._hush.spoke and \
                    self._task is None:
                return None     # ahead of any transfer: no retry
            client = await self._try(open_one)
            if client is not None:
                return client
            if attempt + 1 < self.attempts:
                await self._sleep(self.backoff * 2 ** attempt)
        return None

    async def _try(self, open_one: Callable[[], Awaitable[SFTPClient]]
                   ) -> SFTPClient | None:
        async with self._gate:
            try:
                return await asyncio.wait_for(
                    open_one(), self.first_wait * ATTEMPT_LIMIT)
            except asyncio.CancelledError:
                raise
            except Exception:   # refused, dropped or silent: retry
                return None

    def lost(self, stream: Stream) -> None:
        """*stream*'s connection is gone: no more work goes to it.

        A replacement is tried in the background while the session may
        still open some (see :attr:`spares`).
        """
        stream.alive = False
        if stream.control or stream in self._gone:
            return
        self._gone.add(stream)
        if self._closing or self._task is None or self.spares <= 0 or \
                stream.index >= len(self.ready) or \
                self.ready[stream.index] is not stream:
            return
        self.spares -= 1
        task = asyncio.ensure_future(self._replace(stream.index))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, index: int) -> None:
        """Open a stream in place of lost stream *index*, after a pause."""
        await self._sleep(self.backoff)
        client = await self._retry(self.transport.open_client)
        if client is None or self._closing:
            return
        self.replaced += 1
        self._add(client, self._new_connection(), index)

    async def settle(self) -> None:
        """Wait for the replacements under way (tests)."""
        while self._replacing:
            await asyncio.wait(set(self._replacing))


def open_early(transport: Opener, streams: int, out: Printer, *,
               requests: int, channels: int = 1) -> StreamPool:
    """Start opening ``-n``'s streams before the first transfer.

    For scripts known to transfer: the streams log in while the control
    connection does, instead of after it.  The engine adopts the pool.
    """
    pool = StreamPool(transport, streams, out, requests=requests,
                      channels=channels)
    pool.start()
    return pool
