"""sftp's own request pipelines, for a whole file on one stream.

:func:`pull` is ``do_download``'s loop and :func:`push` is
``do_upload``'s, request for request: at ``-n 1`` psftp-shell moves
bytes exactly as sftp does.  The chunked pipelines of parallel copies
are in :mod:`psftp_shell.engine.chunk_pipeline`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from psftp_shell.core.errors import FatalError
from psftp_shell.core.observer import TransferJob
from psftp_shell.filecopy.copy_context import MIN_READ_SIZE, CopyContext
from psftp_shell.filecopy.localdest import pwrite_all
from psftp_shell.sftp.client import SFTPClient, StatusError


@dataclass(slots=True)
class Pulled:
    """What a download pipeline achieved."""

    highwater: int
    modified: bool = False
    reordered: bool = False
    read_error: StatusError | None = None
    write_error: OSError | None = None


@dataclass(slots=True)
class Pushed:
    """What an upload pipeline achieved."""

    highwater: int
    write_error: StatusError | None = None


def read_local(ctx: CopyContext, fd: int, offset: int, length: int,
               path: str) -> bytes:
    """pread, or sftp's fatal ``read local`` error."""
    try:
        return os.pread(fd, length, offset)
    except OSError as exc:
        raise FatalError(f'read local "{path}": {exc.strerror}') from None


def _store(result: Pulled, fd: int, data: bytes, start: int) -> None:
    result.modified = True
    if result.write_error is not None:
        return
    try:
        pwrite_all(fd, data, start)
    except OSError as exc:
        result.write_error = exc
        return
    if result.reordered:
        return
    if start <= result.highwater:
        result.highwater = max(result.highwater, start + len(data))
    else:
        result.reordered = True


def _expected(start: int, length: int, size: int) -> int:
    """The bytes a READ of *length* at *start* is expected to bring back
    from a file of *size*: what ``-l`` charges it.  Charging the whole
    request made a small file wait for a block's worth of time (a quarter
    of a second per file at ``-l 8000``)."""
    return max(0, min(length, size - start))


async def pull(ctx: CopyContext, client: SFTPClient, handle: bytes,
               fd: int, offset: int, size: int, job: TransferJob,
               stream: int = 0, result: Pulled | None = None) -> Pulled:
    """Read from *offset* to EOF into *fd*, sftp's download loop.

    Requests ramp up from 1 by one per reply to ``max_requests``; past
    the expected *size* one at a time, so a growing file is followed to
    its EOF.  A short read re-requests the rest and shrinks the block
    size.  Replies are taken in request order.  *result*, if given, is
    filled in as the data arrives, so that it tells how far a copy got
    even when the connection is lost or the task cancelled.

    One difference from sftp: when what is left of the expected size
    fits one block, the first request asks for exactly that and the
    read at the expected end goes with it, so a small file costs one
    round trip for its data and its EOF instead of two.  Data a reply
    brings from past an end of file already met is dropped (sftp writes
    it, leaving a hole of zeros the server never sent; with one request
    at a time at first, it rarely has such a reply in flight).
    """
    buflen = ctx.read_size
    if result is None:
        result = Pulled(offset)
    queue: deque[tuple[asyncio.Future[bytes], int, int]] = deque()
    max_req = 1
    end: int | None = None          # the end of file met, if any
    observer, tuner = ctx.observer, ctx.tuner
    sent = time.monotonic()
    try:
        if 0 < size - offset < buflen and ctx.max_requests > 1 \
                and not ctx.is_interrupted():
            for start, length in ((offset, size - offset), (size, buflen)):
                await ctx.throttle(_expected(start, length, size))
                queue.append((client.read_nowait(handle, start, length),
                              start, length))
            offset = size + buflen
        while queue or max_req > 0:
            if ctx.is_interrupted():
                if not queue:
                    break
                max_req = 0
            while len(queue) < max_req:
                await ctx.throttle(_expected(offset, buflen, size))
                queue.append((client.read_nowait(handle, offset, buflen),
                              offset, buflen))
                offset += buflen
            fut, start, length = queue.popleft()
            try:
                data = await fut
            except StatusError as exc:
                result.read_error = result.read_error or exc
                max_req = 0
                continue
            if not data:        # EOF
                max_req = 0
                end = start if end is None else min(end, start)
                continue
            if end is not None and start >= end:
                client.give_back(data)
                continue
            got = len(data)
            if tuner is not None:
                if sent:            # the first reply: a round trip
                    tuner.round_trip(client, time.monotonic() - sent)
                    sent = 0.0
                tuner.received(client, got)
            _store(result, fd, data, start)
            client.give_back(data)
            if result.write_error is not None:
                max_req = 0
            job.transferred += got
            observer.advanced(job, got, stream)
            if got < length:
                rest = start + got
                queue.appendleft((client.read_nowait(
                    handle, rest, length - got), rest, length - got))
                if got < buflen:
                    buflen = max(MIN_READ_SIZE, got)
            if max_req > 0:
                if 0 < size < offset:
                    max_req = 1
                elif max_req < ctx.max_requests:
                    max_req += 1
    finally:
        for fut, _, _ in queue:
            fut.cancel()
    return result


async def push(ctx: CopyContext, client: SFTPClient, handle: bytes,
               fd: int, offset: int, job: TransferJob,
               stream: int = 0, result: Pushed | None = None,
               at_eof: Callable[[], None] | None = None) -> Pushed:
    """Send *fd* from *offset* to its EOF, sftp's upload loop.

    The first WRITE waits for its ACK; then up to ``max_requests`` are
    in flight.  A failed ACK stops reading; the rest drain.  *result*,
    if given, is filled in as ACKs arrive (see :func:`pull`).  *at_eof*
    is called once the last WRITE is out, before its ACKs are awaited
    (a request sent then costs no round trip of its own).
    """
    if result is None:
        result = Pushed(offset)
    queue: deque[tuple[asyncio.Future[None], int, int]] = deque()
    first = True
    ended = False
    ahead: bytes | None = None

    def read_next() -> bytes:
        nonlocal ended
        data = read_local(ctx, fd, offset, ctx.write_size, job.source)
        if not data and not ended:
            ended = True
            if at_eof is not None:
                at_eof()
        return data

    try:
        while True:
            data = b""
            if not ctx.is_interrupted() and result.write_error is None:
                data = read_next() if ahead is None else ahead
            ahead = None
            if data:
                await ctx.throttle(len(data))
                queue.append((client.write_nowait(handle, offset, data),
                              offset, len(data)))
                offset += len(data)
                if first:   # read on before the wait: EOF is known then,
                    ahead = read_next()     # and at_eof's request leaves
                await client.drain()        # with this WRITE
            elif not queue:
                break
            if first or not data or len(queue) > ctx.max_requests:
                first = False
                await _ack(ctx, queue.popleft(), result, job, stream)
    finally:
        for fut, _, _ in queue:
            fut.cancel()
    return result


async def _ack(ctx: CopyContext,
               request: tuple[asyncio.Future[None], int, int],
               result: Pushed, job: TransferJob, stream: int) -> None:
    fut, start, length = request
    try:
        await fut
    except StatusError as exc:
        result.write_error = result.write_error or exc
    else:
        if start <= result.highwater:
            result.highwater = max(result.highwater, start + length)
    job.transferred += length
    ctx.observer.advanced(job, length, stream)
