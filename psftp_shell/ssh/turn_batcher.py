"""A connection's socket writes, gathered once per turn of the event loop.

:class:`TurnBatcher` stands in for an asyncssh connection's socket
transport (:func:`batch_writes`), so that what one turn writes leaves in
one ``send``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

BATCH_LIMIT = 512 * 1024
"""Bytes a :class:`TurnBatcher` holds before it writes without waiting."""


class TurnBatcher:
    """A connection's socket transport, written once per loop turn.

    asyncssh writes each SSH packet to its transport on its own, with an
    IGNORE packet before it: a 256 KiB WRITE request costs sixteen
    ``send`` calls, a READ two, and each wakes the server.  This stand-in
    keeps what one turn of the event loop writes and hands it on in one
    piece when the turn ends (or once :data:`BATCH_LIMIT` bytes wait),
    in order.  Everything else is the real transport's.
    """

    def __init__(self, transport: asyncio.Transport,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._queue: list[bytes] = []
        self._size = 0
        self._sending_now = False

    def write(self, data: bytes) -> None:
        """Queue *data*; it leaves at the end of this turn."""
        queue = self._queue
        if not queue and not self._sending_now:
            self._loop.call_soon(self.flush)
        queue.append(data)
        self._size += len(data)
        if self._size >= BATCH_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Hand what is queued to the real transport."""
        queue = self._queue
        if not queue:
            return
        self._queue, self._size = [], 0
        if not self._transport.is_closing():
            # One send: Python 3.12 gathers the pieces, 3.11 joins them.
            self._transport.writelines(queue)

    def send_now(self, write: Callable[[bytes], None], data: bytes) -> None:
        """Call ``write(data)`` and hand what it queued on at once (a
        writer whose data is already gathered): no end-of-turn flush is
        scheduled for it, so a request costs no idle turn of the loop."""
        if self._queue:             # a flush is scheduled already
            write(data)
            self.flush()
            return
        self._sending_now = True
        try:
            write(data)
        finally:
            self._sending_now = False
            self.flush()

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Write what is queued (the real one would try), then abort."""
        self.flush()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def batch_writes(conn: object) -> None:
    """Make *conn*'s writes leave once per loop turn (:class:`TurnBatcher`).

    asyncssh has no option for this; its connection keeps the socket
    transport in ``_transport``.  Anything else there (a tunnel through
    another connection) is left alone, as is a transport batched already.
    """
    transport = getattr(conn, "_transport", None)
    if isinstance(transport, asyncio.Transport):
        batcher = TurnBatcher(transport, asyncio.get_running_loop())
        conn._transport = batcher    # type: ignore[attr-defined]
