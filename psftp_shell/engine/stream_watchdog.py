"""Once a command is stopping, a stream that answers nothing is given up.

An interrupted copy (Ctrl-C, or the control connection lost) sends no
new request and waits for the replies to those outstanding.  On a
connection that went silent with no ServerAliveInterval set, nothing
else would ever find it, and the command would wait for ever.  While a
command is stopping, :func:`watch` looks at each stream's oldest
outstanding request: one unanswered for :data:`STOP_GRACE` seconds gets
the stream given up, as if its connection were lost, which fails its
requests and lets the copy end with its journal kept.  A slow stream
still answers its oldest request in time, and keeps its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from psftp_shell.engine.pool import Stream

STOP_GRACE = 5.0
"""Seconds a stopping command waits for a stream's oldest reply."""
POLL = 0.25


async def watch(streams: Callable[[], list[Stream]],
                stopping: Callable[[], bool],
                grace: float = STOP_GRACE) -> None:
    """Give up the silent streams of a stopping command (runs until
    cancelled)."""
    loop = asyncio.get_running_loop()
    since: dict[int, tuple[int, float]] = {}     # id(client): oldest, when
    while True:
        await asyncio.sleep(POLL)
        if not stopping():
            since.clear()
            continue
        now = loop.time()
        for stream in streams():
            client = stream.client
            oldest = None if client.closed else client.oldest_pending()
            key = id(client)
            if oldest is None:
                since.pop(key, None)
            elif since.get(key, (None, 0.0))[0] != oldest:
                since[key] = (oldest, now)
            elif now - since[key][1] >= grace:
                client.give_up()
