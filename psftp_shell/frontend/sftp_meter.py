"""sftp's one-line progress meter, for one stream.

:class:`SftpMeter` reproduces OpenSSH 9.2's ``progressmeter.c`` byte
for byte: the file's name, percent, size, rate and ETA on one line,
redrawn once a second and as data moves, ended by a newline when the
file is done.  :func:`~psftp_shell.frontend.progress.choose_observer`
picks it for ``-n 1`` on a terminal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import BinaryIO

from psftp_shell.core.escape import locale_is_utf8, to_bytes, vis_name
from psftp_shell.core.observer import TransferJob
from psftp_shell.frontend.view_text import Failures, Kept, char_width
from psftp_shell.shell.listing import (
    format_meter_eta,
    format_meter_rate,
    format_meter_size,
    meter_percent,
)

Clock = Callable[[], float]

DEFAULT_COLUMNS = 80
UPDATE_INTERVAL = 1.0   # sftp redraws its meter once a second
AGE_FACTOR = 0.9        # weight of the old rate in the running average
_WIDTH_ESCAPED = frozenset("\t\n\r")


def name_field(label: str, width: int, *, utf8: bool | None = None) -> str:
    """The meter's file name: ``%-*s`` padded in bytes, then escaped and
    cut to *width* columns (an escape is never split), as 9.2's
    ``snmprintf`` does.
    """
    if label.isascii() and label.isprintable():     # one column a byte
        return label.ljust(width)[:width]
    raw = to_bytes(label)
    raw += b" " * max(0, width - len(raw))
    if utf8 is None:
        utf8 = locale_is_utf8()
    if utf8:
        units = list(raw.decode("utf-8", "surrogateescape"))
    else:       # the C locale: every byte on its own
        units = [bytes([b]).decode("utf-8", "surrogateescape")
                 for b in raw]
    out: list[str] = []
    used = 0
    for char in units:
        if char in _WIDTH_ESCAPED:
            piece = f"\\{ord(char):03o}"
        else:
            piece = vis_name(char, utf8=utf8)
        cols = sum(char_width(c) for c in piece)
        if used + cols > width:
            break
        out.append(piece)
        used += cols
    return "".join(out)


def meter_line(label: str, *, columns: int, percent: int, current: int,
               rate: int, eta: str, utf8: bool | None = None) -> bytes:
    """One drawing of sftp's meter: exactly *columns* bytes.

    ``\\r``, the name in ``columns - 35`` columns, then `` %3d%% ``, the
    size, the rate with ``/s`` and the ETA field.  Like 9.2, the line is
    cut (or NUL-filled) to *columns* bytes, whatever the name's width.
    """
    head = ""
    name_cols = columns - 35
    if name_cols > 0:
        head = "\r" + name_field(label, name_cols, utf8=utf8)
    tail = (f" {percent:3d}% {format_meter_size(current)} "
            f"{format_meter_rate(rate)}/s {eta}")
    data = to_bytes(head + tail)
    return data[:columns].ljust(columns, b"\0")


class SftpMeter:
    """sftp's one-line progress meter (``progressmeter.c``), written to
    *stream* (stdout).

    Files copied together (several in flight at ``-n 1``) are drawn one
    after the other, each in its turn among the command's messages
    (:attr:`TransferJob.in_turn`), as sftp's order has them; a file that
    ended before its turn gets its final line only, from its own times.

    :param columns: returns the terminal width (read at each drawing)
    :param can_output: returns whether drawing is allowed now (we are in
        the terminal's foreground process group)
    :param clock: a monotonic clock
    :param timer: also redraw once a second while no data arrives (sftp
        redraws only on I/O; this lets ``- stalled -`` appear)
    """

    def __init__(self, stream: BinaryIO, *,
                 columns: Callable[[], int] = lambda: DEFAULT_COLUMNS,
                 can_output: Callable[[], bool] = lambda: True,
                 clock: Clock = time.monotonic, timer: bool = True,
                 utf8: bool | None = None) -> None:
        self.stream = stream
        self.columns = columns
        self.can_output = can_output
        self.clock = clock
        self.timer = timer
        self.utf8 = utf8
        self.job: TransferJob | None = None
        self.failures = Failures()
        self.kept = Kept()
        self._width = DEFAULT_COLUMNS
        self._start = self._last_update = self._next_alarm = 0.0
        self._start_pos = self._end_pos = self._cur_pos = 0
        self._stalled = 0
        self._bps = 0
        self._drawn = False
        self._ended: dict[int, float] = {}     # id(job): when it ended
        self._handle: asyncio.TimerHandle | None = None

    # ---- TransferObserver

    def command_started(self, *, streams: int) -> None:
        """Nothing to prepare: the meter is drawn per file."""

    def file_started(self, job: TransferJob) -> None:
        """Start a meter in the file's turn, as sftp does (downloads of
        unknown size: none)."""
        self.failures.started(job.source)
        if not job.upload and job.size == 0:
            return
        began, at = self.clock(), job.transferred
        _in_turn(job, lambda: self._begin(job, began, at))

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """Redraw if a second has passed since the last alarm."""
        if job is self.job:
            self.tick()

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        """Complete the line (one last drawing if not at 100%) and end
        it, in the file's turn."""
        self._ended[id(job)] = self.clock()
        _in_turn(job, lambda: self._end(job))

    def command_finished(self) -> None:
        """End a meter still running."""
        self.close()

    def file_failed(self, path: str, reason: str) -> None:
        """Note a failed file for the list at the end."""
        self.failures.add(path, reason)

    def kept_temp(self, temp: str, nbytes: int, finish: str) -> None:
        """A partial copy was kept in *temp*; *finish* completes it."""
        self.kept.add(temp, nbytes, finish)

    def close(self) -> None:
        """End a meter still running; list the files that failed and
        the temporaries kept."""
        if self.job is not None:
            self._stop()
        self._disarm()
        self._ended.clear()
        lines = self.failures.take_lines() + self.kept.take_lines()
        if lines and self.can_output():
            self._write("".join(line + "\n" for line in lines).encode(
                "utf-8", "surrogateescape"))

    # ---- drawing

    def _begin(self, job: TransferJob, began: float, at: int) -> None:
        """*job*'s turn: its line starts (drawn now if it still runs)."""
        if self.job is not None:
            self._stop()
        self.job = job
        self._start = self._last_update = began
        self._next_alarm = began + UPDATE_INTERVAL
        self._start_pos = at
        self._end_pos = job.size
        self._cur_pos = 0
        self._stalled = 0
        self._bps = 0
        self._drawn = False
        if id(job) not in self._ended:
            self.refresh()
            self._arm()

    def _end(self, job: TransferJob) -> None:
        ended = self._ended.pop(id(job), None)
        if job is self.job:
            self._stop(ended)

    def tick(self) -> None:
        """Redraw if a second has passed since the last alarm."""
        now = self.clock()
        if now >= self._next_alarm:
            missed = int((now - self._next_alarm) // UPDATE_INTERVAL) + 1
            self._next_alarm += missed * UPDATE_INTERVAL
            self.refresh()

    def _arm(self) -> None:
        """Wake at the running line's next alarm.  One timer serves the
        files one after another (a tree's small files would otherwise
        each set and cancel one); it lapses once no line runs."""
        if not self.timer or self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._handle = loop.call_later(
            max(0.0, self._next_alarm - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        if self.job is not None:
            self.tick()
            self._arm()

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _stop(self, now: float | None = None) -> None:
        """End the line (its last drawing and newline in one write);
        *now*: when the file ended, if not just now."""
        if self.job is not None and self.can_output():
            last = b""
            if self._cur_pos != self._end_pos or not self._drawn:
                last = self._drawing(now)
            self._write(last + b"\n")
        self.job = None

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except OSError:
            pass

    def refresh(self, now: float | None = None) -> None:
        """Draw the meter: ``refresh_progress_meter(1)`` (as of *now*)."""
        if self.job is not None and self.can_output():
            self._write(self._drawing(now))

    def _drawing(self, now: float | None) -> bytes:
        """The running line's next drawing, its rate and ETA updated."""
        job = self.job
        assert job is not None
        self._drawn = True
        self._width = self.columns()   # sftp re-reads it on SIGWINCH
        counter = job.transferred
        transferred = counter - (self._cur_pos or self._start_pos)
        self._cur_pos = counter
        now = self.clock() if now is None else now
        bytes_left = self._end_pos - counter
        if bytes_left > 0:
            elapsed = now - self._last_update
        else:
            elapsed = now - self._start
            transferred = self._end_pos - self._start_pos
            self._bps = 0
        speed = int(transferred / elapsed) if elapsed != 0 else transferred
        if self._bps != 0:
            self._bps = int(self._bps * AGE_FACTOR
                            + speed * (1.0 - AGE_FACTOR))
        else:
            self._bps = speed
        if transferred:
            self._stalled = 0
        else:
            self._stalled = int(self._stalled + elapsed)
        eta = format_meter_eta(bytes_left=bytes_left,
                               bytes_per_second=self._bps,
                               elapsed=elapsed, stalled=self._stalled)
        self._last_update = now
        return meter_line(
            job.label, columns=self._width,
            percent=meter_percent(counter, self._end_pos),
            current=counter, rate=self._bps, eta=eta, utf8=self.utf8)


def _in_turn(job: TransferJob, action: Callable[[], None]) -> None:
    """Run *action* in *job*'s turn (:attr:`TransferJob.in_turn`)."""
    if job.in_turn is None:
        action()
    else:
        job.in_turn(action)
