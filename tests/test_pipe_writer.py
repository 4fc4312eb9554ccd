"""The send side of a -S/-D pipe (:class:`psftp_shell.ssh.pipe_io.
PipeWriter`): order, backpressure, a full pipe, a gone reader, close."""

from __future__ import annotations

import asyncio
import fcntl
import os

import pytest

from psftp_shell.ssh import pipe_io
from psftp_shell.ssh.pipe_io import PipeWriter

PIPE = 64 << 10


def _pipe() -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE)     # the default, for sure
    return r, w


async def _read_all(r: int, until: int) -> bytes:
    """Read *until* bytes from *r* in small bites, yielding in between."""
    got = bytearray()
    os.set_blocking(r, False)
    while len(got) < until:
        try:
            chunk = os.read(r, 4096)
        except BlockingIOError:
            await asyncio.sleep(0.001)
            continue
        if not chunk:
            break
        got += chunk
    return bytes(got)


async def test_everything_arrives_in_order_through_a_full_pipe() -> None:
    r, w = _pipe()
    writer = PipeWriter(w)
    pieces = [os.urandom(n) for n in (5, 300_000, 13, 70_000, 1, 256_000)]
    writer.write(pieces[0])
    writer.write_two(pieces[1], pieces[2])      # more than the pipe holds
    assert writer.queued > 0                    # the rest waits...
    waiting = writer.queued
    writer.write(pieces[3])                     # ...and what comes after
    writer.write_two(pieces[4], pieces[5])
    assert writer.queued == waiting + 70_000 + 1 + 256_000
    reading = asyncio.ensure_future(_read_all(r, sum(map(len, pieces))))
    await asyncio.wait_for(writer.drain(), 10)
    assert writer.queued <= pipe_io.HIGH_WATER
    writer.close()
    got = await asyncio.wait_for(reading, 10)
    assert got == b"".join(pieces)
    assert os.read(r, 1) == b""                 # closed once all was out
    os.close(r)


async def test_what_waits_is_not_copied() -> None:
    r, w = _pipe()
    writer = PipeWriter(w)
    data = os.urandom(3 * PIPE)
    writer.write_two(b"head", data)
    assert writer._queue[-1].obj is data        # a view of the caller's
    writer.abort()
    os.close(r)


async def test_drain_waits_above_the_high_water_mark() -> None:
    r, w = _pipe()
    writer = PipeWriter(w)
    writer.write(os.urandom(PIPE + pipe_io.HIGH_WATER + 1))
    drained = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()                   # nobody reads
    reading = asyncio.ensure_future(_read_all(r, 2 * PIPE))
    await asyncio.wait_for(drained, 10)
    await reading
    writer.abort()
    os.close(r)


@pytest.mark.parametrize("queued", [False, True])
async def test_a_gone_reader_fails_writes_and_drains(queued: bool) -> None:
    r, w = _pipe()
    writer = PipeWriter(w)
    if queued:
        writer.write(os.urandom(PIPE + pipe_io.HIGH_WATER + 1))
        drained = asyncio.ensure_future(writer.drain())
        await asyncio.sleep(0.01)
    os.close(r)
    if queued:                  # woken by the failed write
        with pytest.raises(BrokenPipeError):
            await asyncio.wait_for(drained, 10)
    else:
        with pytest.raises(BrokenPipeError):
            writer.write(b"x")
    with pytest.raises(BrokenPipeError):
        writer.write(b"more")
    with pytest.raises(BrokenPipeError):
        await writer.drain()
    assert writer.queued == 0
    writer.close()                              # quietly, again


async def test_close_with_nothing_waiting_closes_at_once() -> None:
    r, w = _pipe()
    writer = PipeWriter(w)
    writer.write(b"bye")
    writer.close()
    assert os.read(r, 10) == b"bye"
    assert os.read(r, 10) == b""
    with pytest.raises(BrokenPipeError):
        writer.write(b"late")
    os.close(r)
