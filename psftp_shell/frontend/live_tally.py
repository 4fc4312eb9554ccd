"""What the live view counts, and the lines it makes of the counts.

:class:`LiveTally` holds the counters of one command (files and bytes
queued, started, done; each stream's file, bytes and rate) and turns
them into text: a line per stream, the total line with its ETA, the
``and K more`` line when the terminal is too short, and the summary
left behind.  :class:`~psftp_shell.frontend.live_view.LiveView` (the
observer that fills the counters and draws the lines) is built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psftp_shell.core.escape import vis_field
from psftp_shell.core.observer import TransferJob
from psftp_shell.frontend.view_text import (
    Failures,
    Kept,
    Rate,
    clock_text,
    fit,
    human_rate,
    human_size,
)
from psftp_shell.shell.listing import meter_percent

Clock = Callable[[], float]


@dataclass(slots=True)
class _Stream:
    """What one stream is doing: its file, and what it moved."""

    job: TransferJob | None = None
    of_job: int = 0             # bytes of the current file it moved
    moved: int = 0              # bytes it moved in this command
    rate: Rate = field(default_factory=Rate)
    ended: bool = False         # its file is done; shown until a refresh
                                # finds the stream moved nothing since


class LiveTally:
    """The counters of one command's live view, and their text.

    :param clock: the time, for the rates and the summary's duration
    :param interrupted: whether the user interrupted the command
    """

    def __init__(self, *, clock: Clock = time.monotonic,
                 interrupted: Callable[[], bool] = lambda: False) -> None:
        self.clock = clock
        self.interrupted = interrupted
        self.connections: dict[int, int] = {}   # stream -> its connection
        self.streams: list[_Stream] = []
        self.failures = Failures()
        self.kept = Kept()
        self.verified: list[str] = []   # how files were checked
        self.files_started = self.files_done = self.files_failed = 0
        self.files_queued = 0
        self.bytes_queued = 0       # sizes known when files were queued
        self.bytes_started = 0      # sizes of the files started
        self.bytes_before = 0       # already in place at their start
        self.bytes_done = 0         # bytes moved by this command
        self.walks = 0              # trees still being read
        self.total = Rate()
        self._started_at: float | None = None

    def _ensure_streams(self, count: int) -> None:
        while len(self.streams) < count:
            self.streams.append(_Stream())

    def summary(self) -> str:
        """The line left behind: files, bytes, time, rate, streams."""
        assert self._started_at is not None
        elapsed = self.clock() - self._started_at
        rate = int(self.bytes_done / elapsed) if elapsed > 0 \
            else self.bytes_done
        used = [n for n, slot in enumerate(self.streams) if slot.moved]
        streams = max(1, len(used))
        links = max(1, len({self.connections.get(n, -1 - n) for n in used}))
        moved = (f"{human_size(self.bytes_done)} in {clock_text(elapsed)} "
                 f"({human_rate(rate)}), "
                 f"{streams} stream{'s' if streams != 1 else ''}, "
                 f"{links} connection{'s' if links != 1 else ''}")
        if self.interrupted():
            total = max(self.files_queued, self.files_started)
            return (f"interrupted: {self.files_done} of {total} "
                    f"file{'s' if total != 1 else ''} copied, {moved}")
        files = self.files_done + self.files_failed
        text = f"{files} file{'s' if files != 1 else ''}"
        if self.files_failed:
            text += f" ({self.files_failed} failed)"
        text += ", " + moved
        if self.verified and self.files_done:
            text += ", verified by " + " and ".join(self.verified)
        return text

    def total_line(self) -> str:
        """The middle of the total line: files, bytes, the ETA."""
        finished = self.files_done + self.files_failed
        if self.walks > 0:
            return (f"total: {finished}/{self.files_queued}+ files, "
                    f"{human_size(self.bytes_done)} so far "
                    "(reading the tree)")
        files = max(self.files_queued, self.files_started)
        total = self._total_bytes()
        text = (f"total: {finished}/{files} files, "
                f"{human_size(self._in_place())} of {human_size(total)}")
        left = total - self._in_place()
        rate = self.total.bytes_per_second
        if left > 0 and rate > 0:
            text += f", ETA {clock_text(left / rate)}"
        return text

    def _total_bytes(self) -> int:
        return max(self.bytes_queued, self.bytes_started, self._in_place())

    def _in_place(self) -> int:
        return self.bytes_before + self.bytes_done

    def _percent(self) -> str:
        if self.walks > 0:
            return ""
        return f"{meter_percent(self._in_place(), self._total_bytes())}%"

    def _stream_cells(self, number: int, slot: _Stream
                      ) -> tuple[str, str, str, str, str]:
        job = slot.job
        if job is None:
            return str(number), "idle", "", "", ""
        label = vis_field(job.label)
        sharers = sum(1 for s in self.streams if s.job is job)
        if sharers > 1:         # a chunk of a shared file: its own bytes
            percent = ""
            label += f" (1 of {sharers} streams)"
        else:
            percent = f"{meter_percent(job.transferred, job.size)}%"
        return (str(number), label, percent, human_size(slot.of_job),
                human_rate(slot.rate.bytes_per_second))

    def rows(self, height: int) -> list[tuple[str, str, str, str, str]]:
        """The cells of the lines that fit in *height* rows, total last.

        Streams that do not fit are summed up in one ``and K more`` row
        (busy streams are shown first).
        """
        room = max(height - 1, 1) - 1       # rows left above the total
        streams = list(enumerate(self.streams, start=1))
        if len(streams) > room:
            streams.sort(key=lambda item: item[1].job is None)
            shown, hidden = streams[:max(room - 1, 0)], \
                streams[max(room - 1, 0):]
            shown.sort()
        else:
            shown, hidden = streams, []
        rows = [self._stream_cells(n, slot) for n, slot in shown]
        if hidden and room > 0:
            busy = sum(1 for _, slot in hidden
                       if slot.job is not None and not slot.ended)
            rate = sum(slot.rate.bytes_per_second for _, slot in hidden)
            rows.append(("", f"and {len(hidden)} more streams "
                         f"({busy} busy)", "", "",
                         human_rate(rate) if busy else ""))
        rows.append(("", self.total_line(), self._percent(),
                     human_size(self.bytes_done),
                     human_rate(self.total.bytes_per_second)))
        return rows

    def lines(self, columns: int, height: int) -> list[str]:
        """The block as plain lines, each shorter than *columns*: the
        number, the name (cut to what is left), the percent, the bytes
        and the rate, in columns."""
        rows = self.rows(height)
        numbers = max(len(row[0]) for row in rows)
        widths = [max(least, *(len(row[n]) for row in rows))
                  for n, least in ((2, 4), (3, 6), (4, 9))]
        fixed = numbers + sum(w + 1 for w in widths) + 1
        name = max(columns - 1 - fixed, 8)
        lines = []
        for number, label, *rest in rows:
            cells = [number.rjust(numbers), fit(label, name)]
            cells += [cell.rjust(w) for cell, w in zip(rest, widths,
                                                       strict=True)]
            lines.append(" ".join(cells).rstrip()[:columns - 1])
        return lines
