"""The live view on a real terminal: what stays on the screen.

psftp-shell runs in a pseudo-terminal against the private sshd, and
everything it writes is fed to a terminal emulator (pyte), so that the
tests look at the screen a user would see: after Ctrl-Z and ``fg``,
after a resize, with more streams than rows, and after Ctrl-C.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.devserver import HOST_ALIAS
from psftp_shell.filecopy import journal
from tests.conftest import require
from tests.test_pty import PROMPT, Session, environment

try:
    import pexpect
    import pyte
except ImportError:     # skipped outside CI, failed under CI=true
    pexpect = pyte = None  # type: ignore[assignment]

pytestmark = pytest.mark.usefixtures("emulator")


@pytest.fixture
def emulator() -> None:
    """pexpect and pyte (the test extras) are installed."""
    require(pexpect is not None and pyte is not None, "pexpect and pyte")


class Screen:
    """A terminal emulator fed with what the child writes."""

    def __init__(self, columns: int, rows: int) -> None:
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)

    def write(self, data: bytes) -> int:
        """Feed the emulator (pexpect's ``logfile_read``)."""
        self.stream.feed(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""

    def resize(self, columns: int, rows: int) -> None:
        """The terminal's new size."""
        self.screen.resize(rows, columns)

    def lines(self) -> list[str]:
        """The rows on the screen, trailing blanks dropped."""
        return [line.rstrip() for line in self.screen.display]

    def count(self, text: str) -> int:
        """Rows that contain *text*."""
        return sum(1 for line in self.lines() if text in line)


class Tee:
    """pexpect's read log, to the emulator and to a byte log."""

    def __init__(self, screen: Screen, log: io.BytesIO) -> None:
        self.screen = screen
        self.log = log

    def write(self, data: bytes) -> int:
        """Both."""
        self.log.write(data)
        return self.screen.write(data)

    def flush(self) -> None:
        """Nothing is buffered."""


REPO = Path(__file__).resolve().parents[1]


def spawn_screen(program: str, args: list[str], cwd: Path,
                 env: dict[str, str], rows: int, columns: int
                 ) -> Iterator[tuple[Session, Screen]]:
    """*program* in a *rows* x *columns* pty, watched by an emulator."""
    log = io.BytesIO()
    screen = Screen(columns, rows)
    env = {**env, "PYTHONPATH": str(REPO)}     # this tree's psftp_shell
    child = pexpect.spawn(program, args, cwd=str(cwd), env=env,
                          dimensions=(rows, columns), timeout=15)
    child.logfile_read = Tee(screen, log)
    yield Session(child, log), screen
    if child.isalive():
        os.killpg(child.pid, signal.SIGCONT)
        child.close(force=True)


def shell_args(sshd: Any, streams: int, *extra: str) -> list[str]:
    """psftp-shell's command line for the private sshd."""
    return ["-m", "psftp_shell", "-n", str(streams), *extra,
            "-F", str(sshd.ssh_config), HOST_ALIAS]


def quoted(path: Path) -> str:
    """*path* as a glob-free argument."""
    return str(path).replace("[", "\\[").replace("]", "\\]")


def settle(session: Session, screen: Screen, text: str | re.Pattern[str],
           timeout: float = 15) -> None:
    """Wait until *text* is on the screen, or a line matches it (the
    view redraws 4 times a second), reading what the child writes
    meanwhile."""
    def shown() -> bool:
        if isinstance(text, str):
            return screen.count(text) > 0
        return any(text.search(line) for line in screen.lines())

    deadline = time.monotonic() + timeout
    while not shown():
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} never shown; screen:\n"
                        + "\n".join(screen.lines()))
        try:
            session.child.read_nonblocking(65536, timeout=0.1)
        except pexpect.TIMEOUT:
            pass


def watch(session: Session, seconds: float) -> None:
    """Let the child draw for *seconds*."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            session.child.read_nonblocking(65536, timeout=0.1)
        except pexpect.TIMEOUT:
            pass


@pytest.fixture
def big_remote(remote_dir: Path) -> Path:
    """A 2 GiB sparse file on the sshd's side."""
    with open(remote_dir / "big.bin", "wb") as f:
        f.truncate(2 << 30)
    return remote_dir


SLOW = ["-l", "80000"]          # 10 MB/s: the view stays up a while


@contextmanager
def big_get(sshd: Any, remote: Path, tmp_path: Path, streams: int,
            rows: int, columns: int) -> Iterator[tuple[Session, Screen]]:
    """A slow ``get`` of *remote*/big.bin on its way, the view up; it
    is interrupted and the shell left at the end."""
    local = tmp_path / "here"
    local.mkdir()
    for session, screen in spawn_screen(
            sys.executable, shell_args(sshd, streams, *SLOW), local,
            environment(tmp_path), rows, columns):
        session.prompt()
        session.child.sendline(f"get {quoted(remote)}/big.bin")
        settle(session, screen, "total: 0/1 files")
        yield session, screen
        session.child.sendintr()
        session.expect(PROMPT, timeout=10)
        session.child.sendline("bye")
        session.expect(pexpect.EOF)
    shutil.rmtree(local)        # the kept temporary holds reserved blocks


def assert_drawn_once(screen: Screen) -> None:
    """One total line, and no stream's row twice."""
    shown = screen.lines()
    assert screen.count("total:") == 1, "\n".join(shown)
    numbers = [line.split()[0] for line in shown
               if line[:3].strip().isdigit()]
    assert len(numbers) == len(set(numbers)), "\n".join(shown)


def test_ctrl_z_and_fg_leave_the_shell_lines_alone(
        sshd: Any, big_remote: Path, tmp_path: Path) -> None:
    """Ctrl-Z during a transfer: the view is erased before the job stops
    (no stale rows), the shell's Stopped and fg lines stay, and after
    fg the view comes back below them, once."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    local = tmp_path / "here"
    local.mkdir()
    env = {**environment(tmp_path), "PS1": "shell$ "}
    command = " ".join(shlex.quote(a) for a in [sys.executable, *shell_args(
        sshd, 4, *SLOW)])
    for session, screen in spawn_screen(
            bash, ["--norc", "--noprofile", "--noediting", "-i"], local,
            env, 24, 100):
        session.expect(r"shell\$ ")
        session.child.sendline(command)
        session.prompt()
        session.child.sendline(f"get {quoted(big_remote)}/big.bin")
        settle(session, screen, "total: 0/1 files")
        session.child.sendcontrol("z")
        session.expect(r"Stopped")
        session.expect(r"shell\$ ")
        watch(session, 0.5)
        assert screen.count("total:") == 0, "\n".join(screen.lines())
        assert screen.count(" big.bin ") == 0, "\n".join(screen.lines())
        session.child.sendline("fg")
        settle(session, screen, "total: 0/1 files")
        watch(session, 1.0)                     # a few more refreshes
        shown = screen.lines()
        assert screen.count("Stopped") == 1, "\n".join(shown)
        assert screen.count("shell$ fg") == 1, "\n".join(shown)
        assert screen.count("total:") == 1, "\n".join(shown)
        stopped = next(n for n, line in enumerate(shown)
                       if "Stopped" in line)
        total = next(n for n, line in enumerate(shown) if "total:" in line)
        assert stopped < total
        session.child.sendintr()
        session.expect(PROMPT, timeout=10)
        session.child.sendline("bye")
        session.expect(r"shell\$ ")
        session.child.sendline("exit")
        session.expect(pexpect.EOF)
    shutil.rmtree(local)


def test_a_view_taller_than_the_terminal_fits(
        sshd: Any, big_remote: Path, tmp_path: Path) -> None:
    """-n 8 in 8 rows: the rows that fit and 'and K more', nothing left
    behind."""
    with big_get(sshd, big_remote, tmp_path, 8, 8, 100) as (session,
                                                           screen):
        # the streams log in one by one: wait until the hidden ones
        # are all busy (so no row may say idle), then a few redraws
        settle(session, screen,
               re.compile(r"and (\d) more streams \(\1 busy\)"))
        watch(session, 1.0)
        assert_drawn_once(screen)
        assert screen.count("more streams") == 1, screen.lines()
        assert screen.count("idle") == 0, screen.lines()


def test_a_resize_leaves_no_stale_rows(
        sshd: Any, big_remote: Path, tmp_path: Path) -> None:
    """The terminal shrinks under the view, to fewer rows than it has:
    it redraws in the rows and columns there are, once."""
    with big_get(sshd, big_remote, tmp_path, 8, 24, 100) as (session,
                                                            screen):
        screen.resize(60, 6)
        session.child.setwinsize(6, 60)
        watch(session, 1.5)
        assert_drawn_once(screen)
        assert screen.count("more streams") == 1, screen.lines()
        assert all(len(line) < 60 for line in screen.lines())


def test_an_interrupted_tree_says_what_it_kept(
        sshd: Any, big_remote: Path, tmp_path: Path) -> None:
    """Ctrl-C in get -r: the summary says what was copied (no 'failed',
    no 'verified by'), and the kept temporary and how to finish it."""
    for number in range(20):
        (big_remote / f"small{number:02d}.txt").write_bytes(b"x" * 300)
    local = tmp_path / "here"
    local.mkdir()
    for session, screen in spawn_screen(
            sys.executable, shell_args(sshd, 4, *SLOW), local,
            environment(tmp_path), 24, 120):
        session.prompt()
        session.child.sendline(f"get -r {quoted(big_remote)} tree")
        settle(session, screen, " big.bin ")
        watch(session, 1.0)
        session.child.sendintr()
        session.expect(r"interrupted: \d+ of 21 files copied, ")
        session.expect(r"kept \.big\.bin\.psftp-\S+ \(\d+(KB|MB)\): "
                       r"reget \S+/big\.bin tree/big\.bin to finish")
        session.prompt()
        session.child.sendline("bye")
        session.expect(pexpect.EOF)
    # sftp's own "Download of file ... failed" stays; the summary has
    # no "(N failed)" and no "verified by"
    shown = session.log.getvalue().decode("utf-8", "replace")
    assert " failed)" not in shown and "verified by" not in shown
    temps = [p.name for p in (local / "tree").iterdir()
             if p.name.startswith(".big.bin.psftp-")]
    assert len(temps) == 1, temps         # the temporary, and its journal
    assert os.path.isfile(journal.download_path(
        environment(tmp_path), str(local / "tree" / "big.bin")))
    shutil.rmtree(local)


def test_small_files_show_real_rates(sshd: Any, remote_dir: Path,
                                     tmp_path: Path) -> None:
    """get -r of small files: the streams' and the total's rates are
    what moves (they all read 0.0KB/s when every file start redrew), and
    while the tree is read the total says so instead of a percentage of
    a growing total."""
    for number in range(1000):
        sub = remote_dir / f"d{number // 100}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{number:04d}").write_bytes(b"y" * 2000)
    local = tmp_path / "here"
    local.mkdir()
    # -l 8000 (1 MB/s): the copy spans several refreshes however fast
    # the machine, so a rate has been measured at least once
    for session, _screen in spawn_screen(
            sys.executable, shell_args(sshd, 4, "-l", "8000"), local,
            environment(tmp_path), 24, 100):
        session.prompt()
        session.child.sendline(f"get -r {quoted(remote_dir)} tree")
        session.expect(r"1000 files, 1953KB in ", timeout=60)
        session.prompt()
        session.child.sendline("bye")
        session.expect(pexpect.EOF)
    text = session.log.getvalue().decode("utf-8", "replace")
    drawn = re.split(r"[\r\n]|\x1b\[2K|\x1b\[J", text)
    totals = [line.split()[-1] for line in drawn if "total: " in line]
    assert totals and any(rate != "0.0KB/s" for rate in totals), totals
    streams = [line.split()[-1] for line in drawn
               if " 100% " in line and "2000B" in line]
    assert streams and any(rate != "0.0KB/s" for rate in streams), streams
    for line in drawn:
        if "total: " in line and "%" in line:
            assert "/1000 files" in line, line
    assert len(list((local / "tree").rglob("f*"))) == 1000


def test_streams_of_one_file_show_their_own_part(
        sshd: Any, big_remote: Path, tmp_path: Path) -> None:
    """One big file on 4 streams: each line is what that stream moved
    (not the file's percent and bytes four times over)."""
    with big_get(sshd, big_remote, tmp_path, 4, 24, 100) as (session,
                                                            screen):
        settle(session, screen, "(1 of 4 streams)")
        watch(session, 1.0)
        parts = [line for line in screen.lines() if " big.bin " in line]
        assert len(parts) == 4, screen.lines()
        assert all("(1 of 4 streams)" in line and "%" not in line
                   for line in parts), screen.lines()


def test_sftps_meter_draws_each_file_of_a_tree_to_the_end(
        sshd: Any, remote_dir: Path, tmp_path: Path) -> None:
    """get -r at -n 1 on a terminal: sftp's meter draws every file, each
    to 100%, one after the other (the files of a batch run overlap on
    the connection; the meter's must not)."""
    for number in range(30):
        (remote_dir / f"f{number:04d}").write_bytes(b"z" * (3000 + number))
    local = tmp_path / "here"
    local.mkdir()
    for session, _screen in spawn_screen(
            sys.executable, shell_args(sshd, 1), local,
            environment(tmp_path), 24, 100):
        session.prompt()
        session.child.sendline(f"get -r {quoted(remote_dir)} tree")
        session.prompt()
        session.child.sendline("bye")
        session.expect(pexpect.EOF)
    text = session.log.getvalue().decode("utf-8", "replace")
    drawn = [line for line in re.split(r"[\r\n]", text)
             if re.match(r"f00\d\d ", line)]
    last: dict[str, str] = {}
    for line in drawn:
        last[line.split()[0]] = line
    assert sorted(last) == [f"f{n:04d}" for n in range(30)]
    assert all(" 100% " in line for line in last.values()), last
    assert len(list((local / "tree").iterdir())) == 30
