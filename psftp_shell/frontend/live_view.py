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
``reput``.  The counters and the text of those lines are
:class:`~psftp_shell.frontend.live_tally.LiveTally`, which this view
extends with the observer's events, drawing, and Ctrl-Z.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import BinaryIO

from psftp_shell.core.observer import TransferJob
from psftp_shell.core.output import Output
from psftp_shell.frontend.live_region import AboveWriter, Region
from psftp_shell.frontend.live_tally import Clock, LiveTally

TermSize = Callable[[], tuple[int, int]]

LIVE_INTERVAL = 0.25    # the live view redraws at most four times a second


class LiveView(LiveTally):
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
        super().__init__(clock=clock, interrupted=interrupted)
        self.out = out
        self.stream = stream if stream is not None else out.stdout
        self.size = size
        self.can_output = can_output
        self.timer = timer
        self.region = Region(self._write_text)
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

    # ---- drawing

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
