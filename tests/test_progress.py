"""The progress views: sftp's one-line meter and the per-stream live view.

The meter's drawings are compared with the real sftp's, captured in a
pseudo-terminal; its timing (one drawing a second, the running average
of the rate, ``- stalled -``) is driven by a fake clock.  The live view
is rendered into a string console with a fake clock.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from psftp_shell.core.observer import NullObserver, TransferJob
from psftp_shell.core.output import Output
from psftp_shell.devserver import SFTP_SERVER
from psftp_shell.frontend import progress
from psftp_shell.frontend.progress import (
    LiveView,
    SftpMeter,
    choose_observer,
    meter_line,
    name_field,
    observing,
)
from psftp_shell.shell.context import Settings, Shell
from tests.conftest import require

pexpect = pytest.importorskip("pexpect")

WIDTH = 100
AWKWARD_NAMES = ["plain.bin", "a\x1bb", "bad\udcff", "n" * 70, "t\tab",
                 "caf\u00e9.bin", "\u00e9" * 40, "\u65e5" * 40]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the real sftp's drawings -------------------------------------------------

def _meter_parts(data: bytes) -> list[bytes]:
    """The meter drawings in a pty capture of one ``get``.

    The meter's line starts with ``\\r``, each drawing too, and the
    line ends with the newline the terminal turned into ``\\r\\n``.
    """
    for line in data.split(b"\r\n"):
        if line.startswith(b"\r"):
            return [b"\r" + part for part in line.split(b"\r")[1:]]
    return []


def _sftp_drawings(sftp_bin: str, server: str, root: Path, lang: str
                   ) -> dict[str, list[bytes]]:
    """Download each awkward name with the real sftp in a 100-column pty;
    return its meter drawings by name.
    """
    drawings: dict[str, list[bytes]] = {}
    env = {"LC_ALL": lang, "TERM": "dumb", "HOME": str(root),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    child = pexpect.spawn(sftp_bin, ["-D", server], cwd=str(root / "local"),
                          dimensions=(24, WIDTH), env=env, timeout=20)
    try:
        child.expect_exact("sftp> ")
        for index, name in enumerate(AWKWARD_NAMES):
            child.sendline(f"get {root}/remote/f{index}-*")
            child.expect_exact("sftp> ")
            drawings[name] = _meter_parts(child.before)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return drawings


@pytest.fixture(scope="module")
def real_drawings(tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, dict[str, list[bytes]]]:
    """The real sftp's meter lines, per locale and name."""
    sftp_bin = shutil.which("sftp") or "/usr/bin/sftp"
    require(os.access(sftp_bin, os.X_OK), "OpenSSH sftp")
    require(os.access(SFTP_SERVER, os.X_OK), SFTP_SERVER)
    server = SFTP_SERVER
    root = tmp_path_factory.mktemp("meter")
    (root / "remote").mkdir()
    (root / "local").mkdir()
    for index, name in enumerate(AWKWARD_NAMES):
        raw = os.fsencode(f"f{index}-{name}")
        with open(os.path.join(os.fsencode(root / "remote"), raw),
                  "wb") as f:
            f.write(b"x" * 3000)
    return {lang: _sftp_drawings(sftp_bin, server, root, lang)
            for lang in ("C.UTF-8", "C")}


@pytest.mark.parametrize("lang", ["C.UTF-8", "C"])
@pytest.mark.parametrize("index", range(len(AWKWARD_NAMES)))
def test_first_drawing_matches_sftp(
        real_drawings: dict[str, dict[str, list[bytes]]], lang: str,
        index: int) -> None:
    name = AWKWARD_NAMES[index]
    theirs = real_drawings[lang][name]
    label = f"f{index}-{name}"
    ours = meter_line(label, columns=WIDTH, percent=0, current=0, rate=0,
                      eta="  --:-- ETA", utf8=lang == "C.UTF-8")
    assert theirs, f"no meter seen for {name!r}"
    assert ours == theirs[0]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RATE = re.compile(rb"[ 0-9]{3}\.[0-9][KMGT]B/s")


@pytest.mark.parametrize("index", [0, 1, 5])
def test_last_drawing_matches_sftp_but_rate(
        real_drawings: dict[str, dict[str, list[bytes]]], index: int
        ) -> None:
    name = AWKWARD_NAMES[index]
    theirs = real_drawings["C.UTF-8"][name][-1]
    clock = FakeClock()
    stream = io.BytesIO()
    meter = SftpMeter(stream, columns=lambda: WIDTH, clock=clock,
                      timer=False, utf8=True)
    job = TransferJob(False, f"/r/f{index}-{name}", "x", 3000)
    meter.file_started(job)
    clock.now += 0.001
    job.transferred = 3000
    meter.advanced(job, 3000)
    meter.file_finished(job, None)
    ours = stream.getvalue().split(b"\n")[0].split(b"\r")[-1]
    assert RATE.sub(b"RATE", b"\r" + ours) == RATE.sub(b"RATE", theirs)


# -- the meter's arithmetic ---------------------------------------------------

def _drawings(stream: io.BytesIO) -> list[bytes]:
    return [b"\r" + part for part in stream.getvalue().split(b"\r")[1:]]


def _meter(clock: FakeClock, **kwargs: Any) -> tuple[SftpMeter, io.BytesIO]:
    stream = io.BytesIO()
    meter = SftpMeter(stream, columns=lambda: WIDTH, clock=clock,
                      timer=False, utf8=True, **kwargs)
    return meter, stream


def test_spec_examples() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    job = TransferJob(False, "/srv/big.bin", "big.bin", 5 * 1024 * 1024)
    meter.file_started(job)
    clock.now += 1 / 128            # 5 MiB in 1/128 s: 640 MiB/s
    job.transferred = job.size
    meter.advanced(job, job.size)   # no alarm yet: not drawn
    meter.file_finished(job, None)  # forced: not at 100% on screen
    assert _drawings(stream) == [
        b"\rbig.bin" + b" " * 58 + b"   0%    0     0.0KB/s   --:-- ETA",
        # (the spec's example says 57 spaces; sftp 9.2 pads to 58 here too)
        b"\rbig.bin" + b" " * 58 + b" 100% 5120KB 640.0MB/s   00:00    \n",
    ]


def test_redrawn_once_a_second_with_running_average() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    job = TransferJob(False, "/d/f", "f", 100 * 1024 * 1024)
    meter.file_started(job)
    for step in range(1, 5):        # 10 MiB in the first second, then 20
        clock.now += 0.5
        job.transferred += (5 if step <= 2 else 10) * 1024 * 1024
        meter.advanced(job, 0)
    lines = _drawings(stream)
    assert len(lines) == 3          # the start, then t=1 and t=2
    # 10 MiB/s, then 0.9 * 10 MiB + 0.1 * 20 MiB = 11 MiB/s (less a
    # rounding error: 11534335 bytes/s); 70 MiB left at that rate: 6 s.
    assert lines[1].endswith(b"  10%   10MB  10.0MB/s   00:09 ETA")
    assert lines[2].endswith(b"  30%   30MB  11.0MB/s   00:06 ETA")


def test_stalled_after_five_seconds_without_data() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    job = TransferJob(True, "up.bin", "/r/up.bin", 4096)
    meter.file_started(job)
    clock.now += 1
    job.transferred = 1024
    meter.tick()
    for _ in range(5):
        clock.now += 1
        meter.tick()
    ends = [line[-11:] for line in _drawings(stream)]
    assert ends[-2] != b"- stalled -"
    assert ends[-1] == b"- stalled -"


def test_one_timer_redraws_whichever_file_runs() -> None:
    """The timer set at the first file's start redraws the second, still
    without data a second after its own start, and nothing after the
    command."""
    async def main() -> tuple[list[bytes], list[bytes]]:
        stream = io.BytesIO()
        meter = SftpMeter(stream, columns=lambda: WIDTH, utf8=True)
        first = TransferJob(True, "a.txt", "/r/a.txt", 10)
        meter.file_started(first)
        await asyncio.sleep(0.3)
        first.transferred = 10
        meter.file_finished(first, None)
        second = TransferJob(True, "b.txt", "/r/b.txt", 10)
        meter.file_started(second)
        await asyncio.sleep(0.8)    # the first's alarm: b's is not due
        early = _drawings(stream)
        await asyncio.sleep(0.5)    # b's alarm
        late = _drawings(stream)
        second.transferred = 10
        meter.file_finished(second, None)
        meter.close()
        ended = stream.getvalue()
        await asyncio.sleep(1.2)
        assert stream.getvalue() == ended
        return early, late

    early, late = asyncio.run(main())
    names = [line.split()[0] for line in late]
    assert names == [b"a.txt"] * 2 + [b"b.txt"] * 2
    assert len(early) == 3          # b's second drawing came at its alarm


def test_zero_byte_upload_draws_and_download_does_not() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    meter.file_started(TransferJob(False, "/r/empty", "empty", 0))
    assert stream.getvalue() == b""
    job = TransferJob(True, "empty", "/r/empty", 0)
    meter.file_started(job)
    meter.file_finished(job, None)
    assert stream.getvalue() == (
        b"\rempty" + b" " * 60 + b" 100%    0     0.0KB/s   00:00    \n")


class Turns:
    """Files' turns in the output, handed out by the test."""

    def __init__(self) -> None:
        self.held: dict[str, list[Callable[[], None]]] = {}
        self.open: set[str] = set()

    def job(self, name: str, size: int, upload: bool = False
            ) -> TransferJob:
        self.held[name] = []
        return TransferJob(upload, f"/r/{name}", name, size,
                           in_turn=lambda act: self._run(name, act))

    def _run(self, name: str, action: Callable[[], None]) -> None:
        if name in self.open:
            action()
        else:
            self.held[name].append(action)

    def come(self, name: str) -> None:
        self.open.add(name)
        for action in self.held.pop(name):
            action()


def test_files_together_are_drawn_in_turn_with_their_own_times() -> None:
    """At -n 1 files overlap: a file that ended before its turn gets its
    final line only, timed from its own start to its own end; one still
    going when its turn comes is drawn live from there."""
    clock, turns = FakeClock(), Turns()
    meter, stream = _meter(clock)
    a, b = turns.job("a", 2048), turns.job("b", 1024)
    c = turns.job("c", 0, upload=True)
    turns.come("a")
    meter.file_started(a)
    meter.file_started(b)
    meter.file_started(c)
    clock.now += 1
    b.transferred = 1024
    meter.file_finished(b, None)    # b ends first, after 1 s
    meter.file_finished(c, None)
    clock.now += 1
    a.transferred = 2048
    meter.file_finished(a, None)    # a after 2 s
    assert len(_drawings(stream)) == 2          # a: its start and end
    turns.come("b")
    turns.come("c")
    lines = _drawings(stream)
    assert lines[1].startswith(b"\ra ") and lines[1].endswith(
        b" 100% 2048     1.0KB/s   00:02    \n")
    assert lines[2:] == [
        b"\rb" + b" " * 64 + b" 100% 1024     1.0KB/s   00:01    \n",
        b"\rc" + b" " * 64 + b" 100%    0     0.0KB/s   00:01    \n"]


def test_interrupted_file_gets_a_last_drawing() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    job = TransferJob(False, "/r/x", "x", 1000)
    meter.file_started(job)
    job.transferred = 360
    meter.file_finished(job, KeyboardInterrupt())
    last = _drawings(stream)[-1]
    assert b"  36%  360  " in last and last.endswith(b"\n")


def test_resume_counts_from_the_offset() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock)
    job = TransferJob(False, "/r/x", "x", 20000, offset=10000,
                      transferred=10000)
    meter.file_started(job)
    clock.now += 2
    job.transferred = 20000
    meter.file_finished(job, None)
    # the rate is over the 10000 bytes moved, not the 20000 in place
    assert _drawings(stream)[-1].endswith(
        b" 100%   20KB   4.9KB/s   00:02    \n")


def test_not_drawn_when_not_in_the_foreground() -> None:
    clock = FakeClock()
    meter, stream = _meter(clock, can_output=lambda: False)
    job = TransferJob(False, "/r/x", "x", 1000)
    meter.file_started(job)
    job.transferred = 1000
    meter.file_finished(job, None)
    assert stream.getvalue() == b""


def test_narrow_terminal_keeps_sftp_92_length() -> None:
    line = meter_line("name", columns=30, percent=5, current=10, rate=0,
                      eta="  --:-- ETA", utf8=True)
    assert line == b"   5%   10     0.0KB/s   --:--"


def test_name_field_is_cut_by_columns() -> None:
    assert name_field("\u65e5" * 3, 5, utf8=True) == "\u65e5\u65e5"
    assert name_field("ab", 5, utf8=True) == "ab   "


# -- the live view ------------------------------------------------------------

def _text(view: LiveView) -> str:
    return "\n".join(view.lines(100, 24))


LiveFixture = tuple[LiveView, FakeClock, io.BytesIO, Output]


@pytest.fixture
def live() -> Iterator[LiveFixture]:
    clock = FakeClock()
    sink = io.BytesIO()
    out = Output(io.BytesIO(), io.BytesIO())
    view = LiveView(out, stream=sink, size=lambda: (100, 24), clock=clock,
                    timer=False)
    yield view, clock, sink, out
    view.close()


def _shown(sink: io.BytesIO) -> str:
    return ANSI.sub("", sink.getvalue().decode())


def test_live_view_lines(live: LiveFixture) -> None:
    view, clock, sink, out = live
    view.command_started(streams=3)
    first = TransferJob(False, "/r/[red]x", "a", 4 * 1024 * 1024)
    second = TransferJob(False, "/r/\x1b[31mevil", "b", 4 * 1024 * 1024)
    view.file_started(first)
    view.file_started(second)
    for _ in range(4):              # 1 MiB/s and 3 MiB/s for a second
        clock.now += 0.25
        first.transferred += 256 * 1024
        view.advanced(first, 256 * 1024, 0)
        second.transferred += 768 * 1024
        view.advanced(second, 768 * 1024, 1)
    lines = [line.split() for line in _text(view).splitlines()]
    assert lines[0] == ["1", "[red]x", "25%", "1024KB", "1.0MB/s"]
    assert lines[1] == ["2", "\\033[31mevil", "75%", "3072KB", "3.0MB/s"]
    assert lines[2] == ["3", "idle"]
    assert lines[3] == ["total:", "0/2", "files,", "4096KB", "of", "8192KB,",
                        "ETA", "00:01", "50%", "4096KB", "4.0MB/s"]
    view.file_finished(first, None)
    view.file_finished(second, OSError("lost"))
    # two channels of one connection moved the data; stream 3 (its own
    # connection) moved nothing
    view.links({0: 1, 1: 1, 2: 2})
    clock.now += 1
    view.close()
    shown = sink.getvalue().decode()
    assert "\x1b[31m" not in shown and "[red]x" in shown
    assert _shown(sink).rstrip().splitlines()[-1] == (
        "2 files (1 failed), 4096KB in 00:02 (2.0MB/s), 2 streams, "
        "1 connection")


def test_live_view_stream_lines_show_their_own_part(
        live: LiveFixture) -> None:
    """Streams sharing one file show what each moved, not the file's
    whole percent and bytes each."""
    view, clock, sink, out = live
    view.command_started(streams=2)
    job = TransferJob(False, "/r/big", "big", 8 << 20)
    view.file_started(job)
    clock.now += 0.5
    job.transferred += 3 << 20
    view.advanced(job, 1 << 20, 0)
    view.advanced(job, 2 << 20, 1)
    lines = [line.split() for line in _text(view).splitlines()]
    assert lines[0][:3] == ["1", "big", "(1"] and "1024KB" in lines[0]
    assert lines[1][:3] == ["2", "big", "(1"] and "2048KB" in lines[1]
    assert not any("%" in cell for cell in lines[0] + lines[1])
    assert lines[2][-3:-1] == ["37%", "3072KB"]


def test_live_view_shows_a_small_file_until_the_stream_rests(
        live: LiveFixture) -> None:
    """A file that came and went between two refreshes is shown at the
    next one, with the stream's rate; a refresh later, with nothing
    moved since, the stream is idle."""
    view, clock, sink, out = live
    view.command_started(streams=2)
    job = TransferJob(False, "/r/small", "small", 2000)
    view.file_started(job)
    clock.now += 0.5
    job.transferred = 2000
    view.advanced(job, 2000, 0)
    view.file_finished(job, None)
    clock.now += 0.25               # the next refresh
    view._redraw(force=True)
    first = _text(view).splitlines()[0].split()
    assert first[:3] == ["1", "small", "100%"] and first[-1] == "7.8KB/s"
    clock.now += 0.5
    view._redraw(force=True)
    assert _text(view).splitlines()[0].split() == ["1", "idle"]


def test_live_view_says_the_tree_is_still_read(live: LiveFixture) -> None:
    view, clock, sink, out = live
    view.command_started(streams=2)
    view.walking(True)
    for size in (100, 200, 300):
        view.queued(size)
    job = TransferJob(False, "/r/a", "a", 100)
    view.file_started(job)
    job.transferred = 100
    view.advanced(job, 100, 0)
    view.file_finished(job, None)
    total = _text(view).splitlines()[-1]
    assert "total: 1/3+ files, 100B so far (reading the tree)" in total
    assert "%" not in total
    view.walking(False)
    total = _text(view).splitlines()[-1]
    assert "total: 1/3 files, 100B of 600B" in total and "16%" in total


def test_live_view_events_only_count(monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    """Without a refresh timer tick, 2,000 files draw nothing more: per
    file events only update counters."""
    sink = io.BytesIO()
    view = LiveView(Output(io.BytesIO(), io.BytesIO()), stream=sink,
                    timer=True)           # no running loop: no ticks
    renders: list[int] = []
    real = view.lines
    monkeypatch.setattr(view, "lines",
                        lambda c, h: renders.append(1) or real(c, h))
    view.command_started(streams=8)
    for number in range(2000):
        job = TransferJob(False, f"/r/f{number}", f"f{number}", 100)
        view.queued(100)
        view.file_started(job)
        job.transferred = 100
        view.advanced(job, 100, number % 8)
        view.file_finished(job, None)
    assert len(renders) == 1            # the first drawing only
    view.close()
    assert _shown(sink).splitlines()[-1].startswith(
        "2000 files, 195KB in ")


def test_live_view_fits_the_terminal() -> None:
    """A view taller than the terminal shows the rows that fit (one row
    stays the shell's) and sums up the others."""
    sink = io.BytesIO()
    view = LiveView(Output(io.BytesIO(), io.BytesIO()), stream=sink,
                    size=lambda: (80, 8), timer=False)
    view.command_started(streams=64)
    jobs = [TransferJob(False, f"/r/f{n}", f"f{n}", 1000) for n in range(3)]
    for number, job in enumerate(jobs):
        view.file_started(job)
        view.advanced(job, 10, number * 20)
    lines = view.lines(80, 8)
    assert len(lines) == 7
    numbers = [line.split()[0] for line in lines[:5]]
    assert numbers == ["1", "2", "3", "21", "41"]     # the busy ones shown
    assert "and 59 more streams (0 busy)" in lines[5]
    assert lines[6].split()[0] == "total:"
    view.close()


def test_live_view_after_an_interrupt(live: LiveFixture) -> None:
    """No "(N failed) ..., verified by size" after Ctrl-C: what was
    copied, and the temporaries kept with the command that ends each."""
    view, clock, sink, out = live
    stop = [False]
    view.interrupted = lambda: stop[0]
    view.command_started(streams=2)
    done = TransferJob(False, "/r/a", "a", 10, verified="size")
    view.queued(10)
    view.queued(1 << 30)
    view.file_started(done)
    view.advanced(done, 10, 0)
    done.verified = "size"
    view.file_finished(done, None)
    big = TransferJob(False, "/r/big.bin", "big.bin", 1 << 30)
    view.file_started(big)
    view.advanced(big, 750 << 20, 1)
    stop[0] = True
    view.kept_temp("/l/.big.bin.psftp-x1", 750 << 20, "reget /r/big.bin "
                   "big.bin")
    view.file_finished(big, OSError())
    view.close()
    tail = _shown(sink).splitlines()[-2:]
    assert tail[0].startswith("interrupted: 1 of 2 files copied, ")
    assert "failed" not in tail[0] and "verified" not in tail[0]
    assert tail[1] == ("kept .big.bin.psftp-x1 (750MB): "
                       "reget /r/big.bin big.bin to finish")


def test_live_view_routes_messages_above_itself(live: LiveFixture) -> None:
    view, clock, sink, out = live
    real_stdout, real_stderr = out.stdout, out.stderr
    view.file_started(TransferJob(True, "a", "/r/a", 10))
    out.info("Uploading a to /r/a")
    out.error("remote open: Permission denied")
    assert real_stdout.getvalue() == b"Uploading a to /r/a\n"  # type: ignore[attr-defined]
    assert real_stderr.getvalue() == (    # type: ignore[attr-defined]
        b"remote open: Permission denied\r\n")
    view.close()
    assert out.stdout is real_stdout


def test_live_view_without_files_prints_nothing(live: LiveFixture) -> None:
    view, clock, sink, out = live
    view.command_started(streams=3)
    view.command_finished()
    assert sink.getvalue() == b""


# -- choosing -----------------------------------------------------------------

def _shell(stdout: Any, **settings: Any) -> Shell:
    engine = type("Engine", (), {"observer": NullObserver()})()
    return Shell(out=Output(stdout, io.BytesIO()),
                 remote=cast(Any, None), engine=cast(Any, engine),
                 local_cwd="/", settings=Settings(**settings))


def test_nothing_when_stdout_is_not_a_terminal() -> None:
    shell = _shell(io.BytesIO(), progress=True)
    assert isinstance(choose_observer(shell), NullObserver)


@pytest.fixture
def pty_stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A pseudo-terminal as stdout, counted as our foreground terminal."""
    master, slave = os.openpty()
    monkeypatch.setattr(progress, "is_foreground", lambda fd: True)
    with os.fdopen(slave, "wb", buffering=0) as stream:
        yield stream
    os.close(master)


def test_meter_for_one_stream_live_view_for_more(pty_stdout: Any) -> None:
    one = _shell(pty_stdout, progress=True, streams=1)
    assert isinstance(choose_observer(one), SftpMeter)
    many = _shell(pty_stdout, progress=True, streams=4)
    assert isinstance(choose_observer(many), LiveView)
    off = _shell(pty_stdout, progress=False, streams=4)
    assert isinstance(choose_observer(off), NullObserver)


def test_observing_sets_and_resets_the_engine_observer(
        pty_stdout: Any) -> None:
    shell = _shell(pty_stdout, progress=True, streams=1)
    with observing(shell) as observer:
        assert shell.engine.observer is observer
        assert isinstance(observer, SftpMeter)
        observer.file_started(TransferJob(True, "a", "/a", 0))
    assert observer.job is None     # closed
    assert isinstance(shell.engine.observer, NullObserver)
