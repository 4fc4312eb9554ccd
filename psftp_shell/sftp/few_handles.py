"""OPENs on a server that holds few open handles per session.

Some servers allow each session only a few open files (one, for some),
and refuse one more with a plain ``Failure``.  sftp never meets the
limit: it copies one file at a time, and reads a directory whole before
it copies what is in it.  psftp-shell keeps several files in flight on
each stream, and at ``-n 1`` walks a tree on the session its copies
use.  :func:`open_with_room` makes such an OPEN wait, when it is refused
while others of its session are open, until one of them is closed, then
sends it again.  Refused with none open, it is a real failure, reported
as sftp reports it; so is one whose session has had nothing outstanding
for :data:`IDLE_LIMIT` seconds while it waited (the handles open then
are nobody's work in progress, and may never be closed).

Only OPENs whose caller holds no other handle of the session wait here
(a file's source or temporary, a directory to list): a caller waiting
for its own handle to close would wait in vain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from psftp_shell.sftp.client import FX_FAILURE, SFTPClient, StatusError
from psftp_shell.sftp.wire import copy_error

T = TypeVar("T")

IDLE_LIMIT = 10.0
"""Seconds a refused OPEN waits for a handle to close while its session
has no request outstanding."""
POLL = 0.5


async def open_with_room(client: SFTPClient,
                         opening: Callable[[], Awaitable[T]], *,
                         idle_limit: float = IDLE_LIMIT) -> T:
    """Run *opening* (an OPEN or OPENDIR on *client*); while it fails
    with a plain failure and another handle of *client* is open, run it
    again once one has been closed.  The session lost meanwhile raises
    its loss (the copy goes on elsewhere), not the refusal."""
    while True:
        closes = client.handles_closed
        try:
            return await opening()
        except StatusError as exc:
            if exc.code != FX_FAILURE or \
                    not await handle_closed(client, closes, idle_limit):
                lost = client.lost_reason
                if lost is not None:    # the stream's loss, not the file's
                    raise copy_error(lost) from None
                raise


async def handle_closed(client: SFTPClient, since: int,
                        idle_limit: float = IDLE_LIMIT) -> bool:
    """Wait until one of *client*'s handles has been closed after its
    *since* closes (at once if one was); False if none is open to be
    closed, if the session ends, or after *idle_limit* seconds without a
    request outstanding."""
    loop = asyncio.get_running_loop()
    quiet_from: float | None = None
    while client.handles_closed == since:
        if client.handles_open == 0 or client.closed:
            return False
        if client.oldest_pending() is not None:
            quiet_from = None
        elif quiet_from is None:
            quiet_from = loop.time()
        elif loop.time() - quiet_from >= idle_limit:
            return False
        closed = client.next_close()
        try:
            await asyncio.wait([closed], timeout=POLL)
        finally:
            closed.cancel()
    return not client.closed
