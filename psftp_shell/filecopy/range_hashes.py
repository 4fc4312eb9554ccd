"""Ranges of a file and their digests, for delivery verification.

How a file is cut into ranges, hashing them locally, reading them
back over SFTP, and the sha256sum script and its output for the
remote-command check.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
from collections import deque
from collections.abc import AsyncIterator

from psftp_shell.filecopy.copy_context import (
    MIN_READ_SIZE,
)
from psftp_shell.sftp.client import (
    SFTPClient,
)

BLOCK = 4 << 20
"""Bytes per hashed range (at least): what is compared and copied again."""
MAX_BLOCKS = 2048
"""Most ranges per file: bigger files get bigger ranges, so that every
``check-file`` reply fits in one packet."""
LOCAL_PIECE = 1 << 20
"""Bytes per local read while hashing."""
Span = tuple[int, int]
"""A byte range [start, end)."""


def block_for(size: int) -> int:
    """The range size for a file of *size* bytes: :data:`BLOCK`, or a
    multiple of it that keeps the ranges to :data:`MAX_BLOCKS`."""
    return BLOCK * max(1, -(-size // (BLOCK * MAX_BLOCKS)))


def blocks_of(size: int, block: int = BLOCK) -> list[Span]:
    """Cut [0, size) into ranges of *block* bytes (the last shorter)."""
    return [(start, min(start + block, size))
            for start in range(0, size, block)]


def runs_of(spans: list[Span]) -> list[Span]:
    """Merge adjacent ranges into runs (for one request per run)."""
    runs: list[Span] = []
    for start, end in spans:
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def hash_local(fd: int, spans: list[Span], algorithm: str) -> list[bytes]:
    """Digest each range of *fd* (blocking: run it in a thread)."""
    digests = []
    for start, end in spans:
        digest = hashlib.new(algorithm)
        pos = start
        while pos < end:
            data = os.pread(fd, min(LOCAL_PIECE, end - pos), pos)
            if not data:
                break
            digest.update(data)
            pos += len(data)
        digests.append(digest.digest())
    return digests


async def read_range(client: SFTPClient, handle: bytes, start: int,
                     end: int, piece: int, depth: int
                     ) -> AsyncIterator[tuple[int, bytes]]:
    """Yield (offset, data) of [start, end) in order, *depth* READs out.

    A short reply is asked again for the rest; end of file ends early.
    """
    queue: deque[tuple[asyncio.Future[bytes], int, int]] = deque()
    pos = start
    try:
        while queue or pos < end:
            while pos < end and len(queue) < depth:
                length = min(piece, end - pos)
                queue.append((client.read_nowait(handle, pos, length),
                              pos, length))
                pos += length
            fut, offset, length = queue.popleft()
            data = await fut
            if not data:
                return
            if len(data) < length:
                rest = offset + len(data)
                queue.appendleft((client.read_nowait(
                    handle, rest, length - len(data)), rest,
                    length - len(data)))
                piece = max(MIN_READ_SIZE, min(piece, len(data)))
            yield offset, data
    finally:
        for fut, _, _ in queue:
            fut.cancel()


def exec_script(path: str, spans: list[Span], block: int) -> str:
    """A ``sh`` script printing one ``sha256sum`` line per range.

    Every range starts at a multiple of *block* and is at most *block*
    long; only the path, quoted, comes from outside.
    """
    lines = [f"f={shlex.quote(path)}", '[ -f "$f" ] && [ -r "$f" ] || exit 1']
    for start, end in spans:
        index, length = start // block, end - start
        cut = f" | head -c {length}" if length < block else ""
        lines.append(f'dd if="$f" bs={block} skip={index} count=1 '
                     f"2>/dev/null{cut} | sha256sum || exit 1")
    return "\n".join(lines) + "\n"


def parse_sums(output: bytes, count: int) -> list[bytes] | None:
    """The digests in ``sha256sum`` output, or None if malformed."""
    digests = []
    for line in output.splitlines():
        word = line.split(b" ", 1)[0]
        try:
            digest = bytes.fromhex(word.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return None
        if len(digest) != 32:
            return None
        digests.append(digest)
    return digests if len(digests) == count else None
