"""The progress views: sftp's one-line meter and the rich live view.

The meter's drawings are compared with the real sftp's, captured in a
pseudo-terminal; its timing (one drawing a second, the running average
of the rate, ``- stalled -``) is driven by a fake clock.  The live view
is rendered into a string console with a fake clock.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from rich.console import Console

from psftp_shell import progress
from psftp_shell.context import Settings, Shell
from psftp_shell.devserver import SFTP_SERVER
from psftp_shell.observer import NullObserver, TransferJob
from psftp_shell.output import Output
from psftp_shell.progress import (
    LiveView,
    SftpMeter,
    choose_observer,
    meter_line,
    name_field,
    observing,
)
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

def _console() -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, width=100, force_terminal=True,
                   color_system=None, highlight=False, markup=False), sink


def _text(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=100, record=True,
                      highlight=False, markup=False)
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def live() -> Iterator[tuple[LiveView, FakeClock, io.StringIO, Output]]:
    clock = FakeClock()
    console, sink = _console()
    out = Output(io.BytesIO(), io.BytesIO())
    view = LiveView(out, console=console, clock=clock, timer=False)
    yield view, clock, sink, out
    view.close()


def test_live_view_lines(live: tuple[LiveView, FakeClock, io.StringIO,
                                     Output]) -> None:
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
    lines = [line.split() for line in _text(view.render()).splitlines()]
    assert lines[0] == ["1", "[red]x", "25%", "1024KB", "1.0MB/s"]
    assert lines[1] == ["2", "\\033[31mevil", "75%", "3072KB", "3.0MB/s"]
    assert lines[2] == ["3", "idle"]
    assert lines[3] == ["total:", "0/2", "files,", "ETA", "00:01",
                        "50%", "4096KB", "4.0MB/s"]
    view.file_finished(first, None)
    view.file_finished(second, OSError("lost"))
    # two channels of one connection moved the data; stream 3 (its own
    # connection) moved nothing
    view.links({0: 1, 1: 1, 2: 2})
    clock.now += 1
    view.close()
    shown = sink.getvalue()
    assert "\x1b[31m" not in shown and "[red]x" in shown
    plain = ANSI.sub("", shown)
    assert plain.rstrip().splitlines()[-1] == (
        "2 files (1 failed), 4096KB in 00:02 (2.0MB/s), 2 streams, "
        "1 connection")


def test_live_view_routes_messages_above_itself(
        live: tuple[LiveView, FakeClock, io.StringIO, Output]) -> None:
    view, clock, sink, out = live
    real_stdout = out.stdout
    view.file_started(TransferJob(True, "a", "/r/a", 10))
    out.info("Uploading a to /r/a")
    out.error("remote open: Permission denied")
    assert real_stdout.getvalue() == b""    # type: ignore[attr-defined]
    view.close()
    assert out.stdout is real_stdout
    shown = sink.getvalue()
    assert "Uploading a to /r/a\n" in shown
    assert "remote open: Permission denied\n" in shown   # no \r\n


def test_live_view_without_files_prints_nothing(
        live: tuple[LiveView, FakeClock, io.StringIO, Output]) -> None:
    view, clock, sink, out = live
    view.command_started(streams=3)
    view.command_finished()
    assert sink.getvalue() == ""


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
