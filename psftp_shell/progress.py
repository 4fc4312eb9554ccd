"""Progress displays: sftp's one-line meter and a per-stream live view.

Both are :class:`~psftp_shell.observer.TransferObserver` implementations
that the front end hands to the engine before each command
(:func:`observing`).  :func:`choose_observer` decides as sftp does: only
with the progress setting on and stdout a terminal whose foreground
process group is ours; otherwise nothing is drawn at all.

With one stream, :class:`SftpMeter` reproduces OpenSSH 9.2's
``progressmeter.c`` byte for byte.  With several, :class:`LiveView`
draws one line per stream and a total line with rich, then a one-line
summary.  rich is imported only when that view is built, so batch runs
never load it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from psftp_shell.escape import (
    locale_is_utf8,
    to_bytes,
    vis_field,
    vis_name,
)
from psftp_shell.listing import (
    format_meter_eta,
    format_meter_rate,
    format_meter_size,
    meter_percent,
)
from psftp_shell.observer import NullObserver, TransferJob, TransferObserver
from psftp_shell.output import Output

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from psftp_shell.context import Shell

Clock = Callable[[], float]

DEFAULT_COLUMNS = 80
MAX_COLUMNS = 512
UPDATE_INTERVAL = 1.0   # sftp redraws its meter once a second
AGE_FACTOR = 0.9        # weight of the old rate in the running average
LIVE_INTERVAL = 0.25    # the live view redraws at most four times a second
_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})
_WIDTH_ESCAPED = frozenset("\t\n\r")


# -- the terminal -------------------------------------------------------------

def terminal_columns(fd: int) -> int:
    """sftp's ``setscreensize``: the width of *fd*, 80 if unknown, <= 512."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        cols = struct.unpack("HHHH", packed)[1]
    except OSError:
        return DEFAULT_COLUMNS
    if cols == 0:
        return DEFAULT_COLUMNS
    return min(cols, MAX_COLUMNS)


def is_foreground(fd: int) -> bool:
    """sftp's ``can_output``: our process group owns the terminal *fd*."""
    try:
        return os.getpgrp() == os.tcgetpgrp(fd)
    except OSError:
        return False


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


# -- sftp's meter line --------------------------------------------------------

def char_width(char: str) -> int:
    """Columns a printable character takes (glibc's wcwidth, roughly)."""
    if unicodedata.category(char) in _ZERO_WIDTH:
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def name_field(label: str, width: int, *, utf8: bool | None = None) -> str:
    """The meter's file name: ``%-*s`` padded in bytes, then escaped and
    cut to *width* columns (an escape is never split), as 9.2's
    ``snmprintf`` does.
    """
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


@dataclass(slots=True)
class Failures:
    """The files of one command, and those that failed with the reason.

    The views print the list at the end of a command of several files
    that had failures; sftp prints nothing of the kind, so batch mode
    and redirected output (no view) stay byte for byte sftp's.
    """

    seen: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)

    def started(self, path: str) -> None:
        """A file of the command began to move."""
        self.seen.add(path)

    def add(self, path: str, reason: str) -> None:
        """*path* failed: *reason* is the last error printed for it."""
        self.seen.add(path)
        self.failed[path] = reason

    def take_lines(self) -> list[str]:
        """The list, once; nothing unless several files and a failure."""
        failed, self.failed = self.failed, {}
        if not failed or len(self.seen) < 2:
            return []
        lines = [f"{len(failed)} of {len(self.seen)} files failed:"]
        lines += [f"  {vis_field(path)}: {vis_field(reason)}"
                  for path, reason in failed.items()]
        return lines


class SftpMeter:
    """sftp's one-line progress meter (``progressmeter.c``), one file at
    a time, written to *stream* (stdout).

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
        self._width = DEFAULT_COLUMNS
        self._start = self._last_update = self._next_alarm = 0.0
        self._start_pos = self._end_pos = self._cur_pos = 0
        self._stalled = 0
        self._bps = 0
        self._handle: asyncio.TimerHandle | None = None

    # ---- TransferObserver

    def command_started(self, *, streams: int) -> None:
        """Nothing to prepare: the meter is drawn per file."""

    def file_started(self, job: TransferJob) -> None:
        """Start a meter, as sftp does (downloads of unknown size: none)."""
        self.failures.started(job.source)
        if self.job is not None:
            self._stop()
        if not job.upload and job.size == 0:
            return
        self.job = job
        now = self.clock()
        self._start = self._last_update = now
        self._next_alarm = now + UPDATE_INTERVAL
        self._start_pos = job.transferred
        self._end_pos = job.size
        self._cur_pos = 0
        self._stalled = 0
        self._bps = 0
        self.refresh()
        self._arm()

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """Redraw if a second has passed since the last alarm."""
        if job is self.job:
            self.tick()

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        """Complete the line (one last drawing if not at 100%) and end it."""
        if job is self.job:
            self._stop()

    def command_finished(self) -> None:
        """End a meter still running."""
        self.close()

    def file_failed(self, path: str, reason: str) -> None:
        """Note a failed file for the list at the end."""
        self.failures.add(path, reason)

    def close(self) -> None:
        """End a meter still running; list the files that failed."""
        if self.job is not None:
            self._stop()
        lines = self.failures.take_lines()
        if lines and self.can_output():
            self._write("".join(line + "\n" for line in lines).encode(
                "utf-8", "surrogateescape"))

    # ---- drawing

    def tick(self) -> None:
        """Redraw if a second has passed since the last alarm."""
        now = self.clock()
        if now >= self._next_alarm:
            missed = int((now - self._next_alarm) // UPDATE_INTERVAL) + 1
            self._next_alarm += missed * UPDATE_INTERVAL
            self.refresh()

    def _arm(self) -> None:
        if not self.timer:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._handle = loop.call_later(UPDATE_INTERVAL, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        if self.job is not None:
            self.tick()
            self._arm()

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self.job is not None and self.can_output():
            if self._cur_pos != self._end_pos:
                self.refresh()
            self._write(b"\n")
        self.job = None

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except OSError:
            pass

    def refresh(self) -> None:
        """Draw the meter now: ``refresh_progress_meter(1)``."""
        job = self.job
        if job is None or not self.can_output():
            return
        self._width = self.columns()   # sftp re-reads it on SIGWINCH
        counter = job.transferred
        transferred = counter - (self._cur_pos or self._start_pos)
        self._cur_pos = counter
        now = self.clock()
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
        self._write(meter_line(
            job.label, columns=self._width,
            percent=meter_percent(counter, self._end_pos),
            current=counter, rate=self._bps, eta=eta, utf8=self.utf8))
        self._last_update = now


# -- the live view for several streams ----------------------------------------

def human_size(nbytes: int) -> str:
    """A compact size: ``512B``, ``9999B``, ``10KB``, ``5120KB``."""
    text = format_meter_size(nbytes).strip()
    return text if text[-1:] == "B" else text + "B"


def human_rate(bytes_per_second: int) -> str:
    """A compact rate: ``68.2KB/s``."""
    return format_meter_rate(bytes_per_second).strip() + "/s"


def clock_text(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from an hour on."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


@dataclass(slots=True)
class _Rate:
    """A rate sampled at each drawing, averaged as sftp does."""

    bytes_per_second: int = 0
    _last_bytes: int = 0
    _last_time: float | None = None

    def sample(self, total_bytes: int, now: float) -> None:
        """Fold the bytes moved since the last sample into the average."""
        if self._last_time is None:
            self._last_time = now
            self._last_bytes = total_bytes
            return
        elapsed = now - self._last_time
        if elapsed <= 0:
            return
        speed = int((total_bytes - self._last_bytes) / elapsed)
        if self.bytes_per_second:
            self.bytes_per_second = int(self.bytes_per_second * AGE_FACTOR
                                        + speed * (1.0 - AGE_FACTOR))
        else:
            self.bytes_per_second = speed
        self._last_time = now
        self._last_bytes = total_bytes


@dataclass(slots=True)
class _Stream:
    """What one stream is doing."""

    job: TransferJob | None = None
    moved: int = 0
    rate: _Rate = field(default_factory=_Rate)


class _ConsoleWriter:
    """A binary stream whose lines go through a rich console.

    While the live view is up, the shell's messages (``Fetching ...``,
    errors, ``Interrupt``) are printed above it instead of tearing it.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._pending = b""

    def write(self, data: bytes) -> int:
        """Print each complete line; keep the rest."""
        from rich.text import Text
        self._pending += bytes(data)
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            self.console.print(Text(text.rpartition("\r")[2]),
                               soft_wrap=True)
        return len(data)

    def flush(self) -> None:
        """Lines are printed as they complete."""

    def take_pending(self) -> bytes:
        """Return (and forget) an unfinished last line."""
        pending, self._pending = self._pending, b""
        return pending


class _BinaryText:
    """A text stream over the shell's binary stdout, for rich."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        """Encode and write *text* at once."""
        self.stream.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        """Flush the binary stream."""
        self.stream.flush()

    def isatty(self) -> bool:
        """Whether the stream is a terminal."""
        fd = _fileno(self.stream)
        return fd is not None and os.isatty(fd)

    def fileno(self) -> int:
        """The stream's descriptor."""
        return int(self.stream.fileno())


class LiveView:
    """A rich live display: one line per stream and a total line.

    At the end of the command it leaves one summary line (files, bytes,
    time, rate, streams and connections).  It works whether or not the
    engine brackets the command with ``command_started`` /
    ``command_finished``; :meth:`close` ends it in any case.

    :param out: the shell's output; its streams are routed through the
        console while the view is up
    :param console: where to draw (by default on ``out.stdout``)
    """

    def __init__(self, out: Output, *,
                 console: Console | None = None,
                 can_output: Callable[[], bool] = lambda: True,
                 clock: Clock = time.monotonic, timer: bool = True) -> None:
        self.out = out
        self.connections: dict[int, int] = {}   # stream -> its connection
        self.console = console if console is not None \
            else _make_console(out.stdout)
        self.can_output = can_output
        self.clock = clock
        self.timer = timer
        self.streams: list[_Stream] = []
        self.jobs: list[TransferJob] = []
        self.files_done = 0
        self.files_failed = 0
        self.verified: list[str] = []   # how files were checked
        self.failures = Failures()
        self.bytes_done = 0          # bytes moved by this command
        self.total = _Rate()
        self._started_at: float | None = None
        self._live: Live | None = None
        self._saved: tuple[BinaryIO, BinaryIO] | None = None
        self._writers: list[_ConsoleWriter] = []
        self._last_draw = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._finished = False

    # ---- TransferObserver

    def command_started(self, *, streams: int) -> None:
        """Prepare *streams* lines."""
        self._ensure_streams(streams)

    def file_started(self, job: TransferJob) -> None:
        """Count the file and put the view up if it is not yet."""
        self.jobs.append(job)
        self.failures.started(job.source)
        self._begin()
        self._redraw(force=True)

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """Account *nbytes* to *stream* and redraw now and then.

        The rates are sampled before the new bytes count: bytes that
        arrive at one instant belong to the interval that follows it.
        """
        self._ensure_streams(stream + 1)
        slot = self.streams[stream]
        slot.job = job
        self._redraw()
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
                slot.job = None
        self._redraw(force=True)

    def file_failed(self, path: str, reason: str) -> None:
        """Note a failed file for the list under the summary."""
        self.failures.add(path, reason)

    def links(self, connections: dict[int, int]) -> None:
        """Learn which connection each stream ran on (for the summary)."""
        self.connections.update(connections)

    def command_finished(self) -> None:
        """Take the view down and print the summary."""
        self.close()

    def close(self) -> None:
        """Take the view down, print the summary and failures (once)."""
        if self._finished:
            return
        self._finished = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        lines = self.failures.take_lines()
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._restore_output()
            lines.insert(0, self.summary())
        if lines and self.can_output():
            from rich.text import Text
            for line in lines:
                self.console.print(Text(line), soft_wrap=True)

    # ---- text

    def summary(self) -> str:
        """The line left behind: files, bytes, time, rate, streams."""
        assert self._started_at is not None
        elapsed = self.clock() - self._started_at
        rate = int(self.bytes_done / elapsed) if elapsed > 0 \
            else self.bytes_done
        files = self.files_done + self.files_failed
        text = f"{files} file{'s' if files != 1 else ''}"
        if self.files_failed:
            text += f" ({self.files_failed} failed)"
        # the streams that moved data, and the connections they ran on
        used = [n for n, slot in enumerate(self.streams) if slot.moved]
        streams = max(1, len(used))
        links = max(1, len({self.connections.get(n, -1 - n) for n in used}))
        text = (f"{text}, {human_size(self.bytes_done)} in "
                f"{clock_text(elapsed)} ({human_rate(rate)}), "
                f"{streams} stream{'s' if streams != 1 else ''}, "
                f"{links} connection{'s' if links != 1 else ''}")
        if self.verified:
            text += ", verified by " + " and ".join(self.verified)
        return text

    def render(self) -> RenderableType:
        """The live lines: one per stream, then the total."""
        from rich.table import Table
        from rich.text import Text
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for _ in range(3):
            grid.add_column(justify="right", no_wrap=True)
        for number, slot in enumerate(self.streams, start=1):
            job = slot.job
            if job is None:
                grid.add_row(str(number), Text("idle"), "", "", "")
                continue
            grid.add_row(str(number), Text(vis_field(job.label)),
                         f"{meter_percent(job.transferred, job.size)}%",
                         human_size(job.transferred),
                         human_rate(slot.rate.bytes_per_second))
        grid.add_row("", Text(self.total_line()),
                     f"{self._percent()}%", human_size(self.bytes_done),
                     human_rate(self.total.bytes_per_second))
        return grid

    def total_line(self) -> str:
        """The middle of the total line: files and the ETA."""
        started = len(self.jobs)
        finished = self.files_done + self.files_failed
        text = f"total: {finished}/{started} files"
        left = self._known_bytes() - self._moved_of_jobs()
        rate = self.total.bytes_per_second
        if left > 0 and rate > 0:
            text += f", ETA {clock_text(left / rate)}"
        return text

    def _known_bytes(self) -> int:
        return sum(max(job.size, job.transferred) for job in self.jobs)

    def _moved_of_jobs(self) -> int:
        return sum(job.transferred for job in self.jobs)

    def _percent(self) -> int:
        return meter_percent(self._moved_of_jobs(), self._known_bytes())

    # ---- drawing

    def _ensure_streams(self, count: int) -> None:
        while len(self.streams) < count:
            self.streams.append(_Stream())

    def _begin(self) -> None:
        if self._live is not None or self._finished:
            return
        from rich.live import Live
        self._ensure_streams(1)
        self._started_at = self.clock()
        self._sample(self._started_at)
        self._live = Live(console=self.console, auto_refresh=False,
                          transient=True, redirect_stdout=False,
                          redirect_stderr=False)
        self._route_output()
        if self.can_output():
            self._live.start()
        self._arm()

    def _sample(self, now: float) -> None:
        self.total.sample(self.bytes_done, now)
        for slot in self.streams:
            slot.rate.sample(slot.moved, now)

    def _redraw(self, force: bool = False) -> None:
        live = self._live
        if live is None:
            return
        now = self.clock()
        if not force and now - self._last_draw < LIVE_INTERVAL:
            return
        if now - self._last_draw >= LIVE_INTERVAL:
            self._sample(now)
        self._last_draw = now
        if self.can_output():
            if not live.is_started:
                live.start()
            live.update(self.render(), refresh=True)

    def _arm(self) -> None:
        if not self.timer or self._finished:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._handle = loop.call_later(UPDATE_INTERVAL, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self._redraw()
        self._arm()

    def _route_output(self) -> None:
        out = self.out
        self._saved = (out.stdout, out.stderr)
        self._writers = [_ConsoleWriter(self.console),
                         _ConsoleWriter(self.console)]
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


def _make_console(stream: BinaryIO) -> Console:
    from rich.console import Console
    return Console(file=_BinaryText(stream), force_terminal=True,  # type: ignore[arg-type]
                   highlight=False, markup=False, emoji=False,
                   soft_wrap=False)


# -- choosing a view ----------------------------------------------------------

def choose_observer(shell: Shell) -> TransferObserver:
    """The progress display for the next command, as sftp decides.

    Nothing unless the progress setting is on and stdout is a terminal
    in whose foreground process group we are; then sftp's meter for one
    stream, or the live view for several.
    """
    out = shell.out
    fd = _fileno(out.stdout)
    if not shell.settings.progress or fd is None or not os.isatty(fd) \
            or not is_foreground(fd):
        return NullObserver()

    def can_output() -> bool:
        return is_foreground(fd)

    if shell.settings.streams <= 1:
        return SftpMeter(out.stdout, columns=lambda: terminal_columns(fd),
                         can_output=can_output)
    return LiveView(out, can_output=can_output)


def close_observer(observer: Any) -> None:
    """End whatever a view still shows (the command is over)."""
    close = getattr(observer, "close", None)
    if callable(close):
        close()


@contextmanager
def observing(shell: Shell) -> Iterator[TransferObserver]:
    """Give the engine the right progress view for one command.

    The view is closed (summary printed, output streams restored) and
    the engine gets a :class:`NullObserver` back when the command ends,
    however it ends.
    """
    observer = choose_observer(shell)
    shell.engine.observer = observer
    try:
        yield observer
    finally:
        try:
            close_observer(observer)
        finally:
            shell.engine.observer = NullObserver()
