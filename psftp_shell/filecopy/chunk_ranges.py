"""Byte ranges and the chunk queue that parallel streams share (pure).

A file copied on several streams is cut into chunks handed out from one
:class:`ChunkQueue` as streams free up.  When nothing is left to hand
out, an idle stream takes over the unrequested half of the chunk with
the most left to request (:meth:`ChunkQueue.steal`), so the slowest
stream does not set the finishing time.  What has arrived is kept in a
:class:`RangeSet`, which also gives the ranges still missing (for a
resume journal) and the contiguous prefix (sftp's "highwater").
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIB = 1 << 20
MIN_CHUNK = 2 * MIB
MAX_CHUNK = 64 * MIB
CHUNKS_PER_STREAM = 4


def chunk_size(size: int, streams: int, block: int) -> int:
    """The chunk size for *size* bytes on *streams* streams.

    About four chunks per stream (as mscp does), between 2 and 64 MiB,
    a whole number of *block*-sized requests.
    """
    want = size // max(1, streams * CHUNKS_PER_STREAM)
    want = min(max(want, MIN_CHUNK), MAX_CHUNK)
    return max(block, want - want % block)


class RangeSet:
    """Disjoint half-open byte ranges, merged as they are added."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Add [start, end); touching or overlapping ranges merge."""
        if end <= start:
            return
        lo = bisect.bisect_left(self._ends, start)
        hi = bisect.bisect_right(self._starts, end)
        if lo < hi:
            start = min(start, self._starts[lo])
            end = max(end, self._ends[hi - 1])
        self._starts[lo:hi] = [start]
        self._ends[lo:hi] = [end]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    @property
    def total(self) -> int:
        """The number of bytes covered."""
        return sum(e - s for s, e in self)

    def covers(self, start: int, end: int) -> bool:
        """Whether every byte of [start, end) is in the set."""
        if end <= start:
            return True
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def prefix(self, start: int = 0) -> int:
        """The end of the run of covered bytes that begins at *start*."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= start:
            return self._ends[i]
        return start

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) that are not in the set, in order."""
        gaps: list[tuple[int, int]] = []
        pos = start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while pos < end and i < len(self._starts):
            s, e = self._starts[i], self._ends[i]
            if s > pos:
                gaps.append((pos, min(s, end)))
            pos = max(pos, e)
            i += 1
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def clip(self, end: int) -> None:
        """Forget everything at or beyond *end*."""
        i = bisect.bisect_left(self._ends, end)
        del self._starts[i + 1:], self._ends[i + 1:]
        if i < len(self._starts):
            if self._starts[i] >= end:
                del self._starts[i], self._ends[i]
            else:
                self._ends[i] = end


@dataclass(eq=False, slots=True)
class Chunk:
    """A range one stream is working through.

    :param start: where the stream's work began (what a lost stream
        hands back starts here)
    :param pos: the next offset to request
    :param end: where to stop requesting; a thief may lower it
    :param follow: the file's last chunk: keep reading past *end*, one
        request at a time, until end of file (a growing source)
    """

    start: int
    pos: int
    end: int
    follow: bool = False

    @property
    def unrequested(self) -> int:
        """Bytes of the chunk not yet requested."""
        return max(0, self.end - self.pos)


class ChunkQueue:
    """Chunks of one file, handed out to streams as they free up.

    :param ranges: what is to be copied (all of the file, or what a
        journal says is missing)
    :param size: the expected end of the file: the chunk that reaches
        it follows the file to its real end of file
    :param chunk: bytes per chunk; *align* keeps steals on request
        boundaries; a steal leaves each side at least *steal_min* bytes
    """

    def __init__(self, ranges: Iterable[tuple[int, int]], size: int, *,
                 chunk: int, align: int, steal_min: int) -> None:
        self.chunk = max(1, chunk)
        self.align = max(1, align)
        self.steal_min = max(1, steal_min)
        self.pending: deque[Chunk] = deque()
        self.active: list[Chunk] = []
        self.put_back(list(ranges), size)

    def put_back(self, ranges: list[tuple[int, int]], size: int | None
                 ) -> None:
        """Queue *ranges* (in order); the one ending at *size* follows.

        With *size* set and no range ending there, an empty following
        chunk at *size* is queued, to find the real end of file.
        """
        follows = size is None
        for start, end in ranges:
            while start < end:
                stop = min(end, start + self.chunk)
                last = stop == end and end == size
                self.pending.append(Chunk(start, start, stop, last))
                follows = follows or last
                start = stop
        if not follows:
            assert size is not None
            self.pending.append(Chunk(size, size, size, True))

    def take(self) -> Chunk | None:
        """The next unassigned chunk, now active; None if there is none."""
        if not self.pending:
            return None
        chunk = self.pending.popleft()
        self.active.append(chunk)
        return chunk

    def stealable(self) -> Chunk | None:
        """The active chunk a thief would split, if any is worth it."""
        best = max(self.active, key=lambda c: c.unrequested, default=None)
        if best is None or best.unrequested < 2 * self.steal_min:
            return None
        return best

    def steal(self) -> Chunk | None:
        """Split the chunk with most left to request; return the new half.

        The victim keeps the first half (its stream stops requesting at
        the new end); the thief gets the rest and the follow duty.
        """
        victim = self.stealable()
        if victim is None:
            return None
        half = victim.unrequested // 2
        mid = victim.pos + max(half - half % self.align, self.steal_min)
        if not victim.pos < mid < victim.end:
            return None
        thief = Chunk(mid, mid, victim.end, victim.follow)
        victim.end, victim.follow = mid, False
        self.active.append(thief)
        return thief

    def release(self, chunk: Chunk) -> None:
        """The stream is done with *chunk* (finished or handed back)."""
        if chunk in self.active:
            self.active.remove(chunk)

    def drop(self) -> None:
        """Forget the unassigned chunks (the copy failed)."""
        self.pending.clear()

    @property
    def idle(self) -> bool:
        """Nothing left to hand out and nothing being worked on."""
        return not self.pending and not self.active
