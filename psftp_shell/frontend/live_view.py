"""The per-stream live view: one line per stream and a total line.

A :class:`~psftp_shell.core.observer.TransferObserver` for ``-n N`` on a
terminal.  Its cost is bounded per screen refresh, not per file: events
only update counters, and the lines are formatted and drawn
at most :data:`LIVE_INTERVAL` apart, from a timer, with work bounded by
the lines shown.  The block is drawn by
:class:`~psftp_shell.frontend.live_region.Region`: never taller than the
terminal (extra streams are summed up in an ``and K more`` line), erased
before the job is stopped (Ctrl-Z) and drawn afresh when it continues.

What it shows: each stream's line is what that stream moved of its
current file and its own rate; the total line counts files and bytes
against the command's totals, or says that the tree is still being
read while it is.  At the end one summary line stays, then the failed
files and, after an interrupt, the temporaries kept for ``reget`` and
``reput``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from psftp_shell.core.escape import vis_field
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.output import Output
from psftp_shell.frontend.live_region import AboveWriter, Region
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
TermSize = Callable[[], tuple[int, int]]

LIVE_INTERVAL = 0.25    # the live view redraws at most four times a second


@dataclass(slots=True)
class _Stream:
    """What one stream is doing: its file, and what it moved."""

    job: TransferJob | None = None
    of_job: int = 0             # bytes of the current file it moved
    moved: int = 0              # bytes it moved in this command
    rate: Rate = field(default_factory=Rate)
    ended: bool = False         # its file is done; shown until a refresh
                                # finds the stream moved nothing since


class LiveView:
    """The live view of one command (see the module docstring).

    :param out: the shell's output; its streams print above the block
        while it is up
    :param stream: the terminal drawn on (``out.stdout`` by default)
    :param size: the terminal's (columns, rows), read at each refresh
    :param can_output: whether drawing is allowed now (foreground)
    :param interrupted: whether the user interrupted the command
    :param timer: refresh from a timer (off in tests: every event that
        may redraw then redraws at once, throttled by *clock*)
    """

    def __init__(self, out: Output, *, stream: BinaryIO | None = None,
                 size: TermSize = lambda: (80, 24),
                 can_output: Callable[[], bool] = lambda: True,
                 interrupted: Callable[[], bool] = lambda: False,
                 clock: Clock = time.monotonic, timer: bool = True) -> None:
        self.out = out
        self.stream = stream if stream is not None else out.stdout
        self.size = size
        self.can_output = can_output
        self.interrupted = interrupted
        self.clock = clock
        self.timer = timer
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
        self.region = Region(self._write_text)
        self._started_at: float | None = None
        self._up = False
        self._saved: tuple[BinaryIO, BinaryIO] | None = None
        self._writers: list[AboveWriter] = []
        self._last_draw = -LIVE_INTERVAL
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finished = False

    # ---- TransferObserver: counters only

    def command_started(self, *, streams: int) -> None:
        """Prepare *streams* lines."""
        self._ensure_streams(streams)

    def queued(self, size: int | None) -> None:
        """A file was handed to the streams (*size* if known)."""
        self.files_queued += 1
        self.bytes_queued += size or 0

    def walking(self, active: bool) -> None:
        """A tree walk began (or ended)."""
        self.walks += 1 if active else -1

    def file_started(self, job: TransferJob) -> None:
        """Count the file; put the view up if it is not yet."""
        self.files_started += 1
        self.bytes_started += job.size
        self.bytes_before += job.transferred
        self.failures.started(job.source)
        if not self._up:
            self._begin()

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """Account *nbytes* to *stream*.

        Without a timer (tests), the view is drawn first: bytes that
        arrive at one instant belong to the interval that follows it.
        """
        if not self.timer:
            self._redraw()
        if stream >= len(self.streams):
            self._ensure_streams(stream + 1)
        slot = self.streams[stream]
        if slot.job is not job:
            slot.job = job
            slot.of_job = 0
            slot.ended = False
        slot.of_job += nbytes
        slot.moved += nbytes
        self.bytes_done += nbytes

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        """Count the file done (or failed); free its streams."""
        if error is None:
            self.files_done += 1
            if job.verified and job.verified not in self.verified:
                self.verified.append(job.verified)
        else:
            self.files_failed += 1
        for slot in self.streams:
            if slot.job is job:
                slot.ended = True

    def file_failed(self, path: str, reason: str) -> None:
        """Note a failed file for the list under the summary."""
        self.failures.add(path, reason)

    def kept_temp(self, temp: str, nbytes: int, finish: str) -> None:
        """A partial copy was kept in *temp*; *finish* completes it."""
        self.kept.add(temp, nbytes, finish)

    def links(self, connections: dict[int, int]) -> None:
        """Learn which connection each stream ran on (for the summary)."""
        self.connections.update(connections)

    def command_finished(self) -> None:
        """Take the view down and print the summary."""
        self.close()

    def close(self) -> None:
        """Take the view down, print the summary and lists (once)."""
        if self._finished:
            return
        self._finished = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._signals(False)
        lines = self.failures.take_lines() + self.kept.take_lines()
        if self._up:
            self._up = False
            if self.can_output():
                self.region.clear(self.size()[1])
            self._restore_output()
            lines.insert(0, self.summary())
        if lines and self.can_output():
            self._write_text("".join(line + "\r\n" for line in lines))

    # ---- text

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

    # ---- drawing

    def _ensure_streams(self, count: int) -> None:
        while len(self.streams) < count:
            self.streams.append(_Stream())

    def _begin(self) -> None:
        if self._finished:
            return
        self._up = True
        self._ensure_streams(1)
        self._started_at = self.clock()
        self._sample(self._started_at)
        self._route_output()
        self._signals(True)
        self._redraw()
        self._arm()

    def _sample(self, now: float) -> None:
        self.total.sample(self.bytes_done, now)
        for slot in self.streams:
            if slot.ended and slot.moved == slot.rate.last_bytes:
                slot.job, slot.ended = None, False      # idle since
            slot.rate.sample(slot.moved, now)

    def _redraw(self, force: bool = False) -> None:
        """Sample the rates and draw, at most every LIVE_INTERVAL."""
        if not self._up:
            return
        now = self.clock()
        if not force and now - self._last_draw < LIVE_INTERVAL:
            return
        self._sample(now)
        self._last_draw = now
        if self.can_output():
            columns, height = self.size()
            self.region.draw(self.lines(columns, height), height)

    def above(self, stream: BinaryIO, data: bytes) -> None:
        """Print *data* (whole lines) above the block."""
        if self.can_output():
            self.region.clear(self.size()[1])
        self._flush_text()
        try:
            stream.write(data)
            stream.flush()
        except OSError:
            pass
        if not self.timer:
            self._redraw(force=True)

    def _write_text(self, text: str) -> None:
        try:
            self.stream.write(text.encode("utf-8", "replace"))
            self.stream.flush()
        except OSError:
            pass

    def _flush_text(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            pass

    def _arm(self) -> None:
        if not self.timer or self._finished:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._handle = loop.call_later(LIVE_INTERVAL, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self._redraw(force=True)
        self._arm()

    # ---- Ctrl-Z and fg

    def _signals(self, on: bool) -> None:
        """Catch SIGTSTP while the block is up, to erase it first."""
        try:
            if on:
                loop = asyncio.get_running_loop()
                loop.add_signal_handler(signal.SIGTSTP, self._suspend)
                self._loop = loop
            elif self._loop is not None:
                self._loop.remove_signal_handler(signal.SIGTSTP)
                self._loop = None
        except (RuntimeError, ValueError, OSError):
            self._loop = None

    def _suspend(self) -> None:
        """Erase the block, stop as the default action would, and draw
        afresh where the cursor is when the job continues."""
        if self.can_output():
            self.region.clear(self.size()[1])
        self._signals(False)
        os.kill(os.getpid(), signal.SIGTSTP)   # stops here until SIGCONT
        self.region.forget()
        if not self._finished:
            self._signals(True)
            self._redraw(force=True)

    # ---- the shell's output, above the block

    def _route_output(self) -> None:
        out = self.out
        self._saved = (out.stdout, out.stderr)
        self._writers = [AboveWriter(self.above, out.stdout),
                         AboveWriter(self.above, out.stderr)]
        out.stdout = self._writers[0]  # type: ignore[assignment]
        out.stderr = self._writers[1]  # type: ignore[assignment]

    def _restore_output(self) -> None:
        if self._saved is None:
            return
        self.out.stdout, self.out.stderr = self._saved
        self._saved = None
        for writer, stream in zip(self._writers, (self.out.stdout,
                                                  self.out.stderr),
                                  strict=True):
            pending = writer.take_pending()
            if pending:
                stream.write(pending)
                stream.flush()
