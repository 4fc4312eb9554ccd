"""OPENs of a chunked copy's file sent on idle streams with the lead's.

A download opens its source on the idle streams at the same time as on
its own stream, and an upload opens its new temporary there with its
own OPEN (:class:`EarlyOpens`), so helpers start without a round trip
of their own.  :func:`close_quietly` closes a handle nobody reports on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine
from typing import Any

from psftp_shell.engine.pool import Stream
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.sftp.client import SFTPError
from psftp_shell.sftp.request_core import retrieved


async def close_quietly(stream: Stream, handle: bytes) -> None:
    """CLOSE a handle nobody reports on; a failure does not matter."""
    with contextlib.suppress(SFTPError):
        await stream.client.close_handle(handle)


class EarlyOpens:
    """OPENs sent on idle streams together with the lead stream's own.

    A stream that comes to help takes its handle here instead of opening
    the file then, which saves a round trip before its first request;
    handles nobody took (or whose taker was cancelled before the reply)
    are closed quietly once the copy is over (or when their OPEN
    completes, if it still has not).
    """

    def __init__(self, ctx: CopyContext) -> None:
        self.ctx = ctx
        self._opens: dict[Stream, asyncio.Future[bytes]] = {}
        self._given: list[tuple[Stream, asyncio.Future[bytes],
                                asyncio.Future[bytes]]] = []

    @staticmethod
    def idle(streams: list[Stream], lead: Stream) -> list[Stream]:
        """The streams besides *lead* that could help right away; not
        those whose server refused an OPEN as a handle limit would (an
        early handle nobody takes yet would keep their own files'
        OPENs waiting)."""
        return [s for s in streams if s is not lead and not s.control
                and s.runs == 0 and s.usable()
                and not s.client.handles.limited]

    def send(self, stream: Stream,
             opening: Coroutine[Any, Any, bytes]) -> None:
        """Start *opening* (an OPEN on *stream*) now."""
        task = asyncio.ensure_future(opening)
        task.add_done_callback(retrieved)
        self._opens[stream] = task

    def take(self, stream: Stream) -> asyncio.Future[bytes] | None:
        """*stream*'s OPEN sent early, if any (it is given out once)."""
        task = self._opens.pop(stream, None)
        if task is None:
            return None
        given = asyncio.shield(task)    # a cancelled taker: we close it
        given.add_done_callback(retrieved)
        self._given.append((stream, task, given))
        return given

    def opened(self) -> list[tuple[Stream, bytes]]:
        """Take out the handles already opened on usable streams."""
        found = [(s, t.result()) for s, t in self._opens.items()
                 if _opened(s, t)]
        for stream, _ in found:
            del self._opens[stream]
        return found

    def _unowned(self) -> list[tuple[Stream, asyncio.Future[bytes]]]:
        """The OPENs nobody will close: not taken, or the taker gave
        up; they are forgotten here."""
        left = list(self._opens.items())
        left += [(s, t) for s, t, g in self._given if g.cancelled()]
        self._opens = {}
        self._given = [x for x in self._given if not x[2].cancelled()]
        return left

    def drop(self) -> None:
        """Close every handle not taken, as soon as its OPEN is done."""
        for stream, task in self._unowned():
            task.add_done_callback(functools.partial(self._close, stream))

    async def settle(self) -> bool:
        """Wait until every OPEN sent is answered, and close the handles
        nobody took; True if any OPEN gave a handle."""
        tasks = list(self._opens.values()) + [t for _, t, _ in self._given]
        if tasks:
            await asyncio.wait(tasks)
        any_open = any(not t.cancelled() and t.exception() is None
                       for t in tasks)
        spare = [(s, t.result()) for s, t in self._unowned()
                 if _opened(s, t)]
        await asyncio.gather(*(close_quietly(s, h) for s, h in spare))
        return any_open

    def _close(self, stream: Stream, task: asyncio.Future[bytes]) -> None:
        if _opened(stream, task):
            self.ctx.background(close_quietly(stream, task.result()))


def _opened(stream: Stream, task: asyncio.Future[bytes]) -> bool:
    """Whether *task* gave a handle that *stream* can still close."""
    return task.done() and not task.cancelled() \
        and task.exception() is None and stream.usable()
