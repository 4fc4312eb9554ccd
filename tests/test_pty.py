"""psftp-shell typed into through a real pseudo-terminal (pexpect).

The program runs as a user would start it, ``psftp-shell -D sftp-server``
in a scratch directory, with its own HOME and XDG directories; the test
types commands, completes a remote name with Tab, recalls history,
interrupts a long download with Ctrl-C, suspends with Ctrl-Z and leaves
with Ctrl-D.  On a timeout the whole session log is shown.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.engine.transfer_engine import TEMP_MARK
from psftp_shell.filecopy import journal

pexpect = pytest.importorskip("pexpect")

PROMPT = r"sftp>"
UP = "\x1b[A"


class Session:
    """A spawned psftp-shell and its log."""

    def __init__(self, child: Any, log: io.BytesIO) -> None:
        self.child = child
        self.log = log

    def expect(self, pattern: object, timeout: float = 15) -> None:
        """Wait for *pattern*; on failure show what came instead."""
        try:
            self.child.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            pytest.fail(
                f"expected {pattern!r}, got {type(exc).__name__}\n"
                f"last output: {self.child.before!r}\n"
                f"whole log:\n{self.log.getvalue()!r}")

    def prompt(self) -> None:
        """Wait for the next prompt."""
        self.expect(PROMPT)

    def state(self) -> str:
        """The process state letter from /proc (``T`` when stopped)."""
        with open(f"/proc/{self.child.pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The working directory: the remote files live in ``srv``."""
    root = tmp_path / "scratch"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "alpha.txt").write_text("alpha\n")
    (root / "srv" / "beta.txt").write_text("beta\n")
    with open(root / "srv" / "big.bin", "wb") as f:
        f.truncate(2 << 30)             # 2 GiB, sparse
    return root


def environment(tmp_path: Path) -> dict[str, str]:
    """A private HOME and XDG directories; no CPR query answers."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "LANG": "C.UTF-8",
        "TERM": "xterm",
        # pexpect does not answer prompt_toolkit's cursor position query
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


def spawn(program: str, args: list[str], cwd: Path, env: dict[str, str]
          ) -> Iterator[Session]:
    """Run *program* in a 24x100 pty; kill it at the end if needed."""
    log = io.BytesIO()
    child = pexpect.spawn(program, args, cwd=str(cwd), env=env,
                          dimensions=(24, 100), timeout=15)
    child.logfile_read = log
    yield Session(child, log)
    if child.isalive():
        os.killpg(child.pid, signal.SIGCONT)
        child.close(force=True)


@pytest.fixture
def session(scratch: Path, tmp_path: Path, sftp_server_bin: str
            ) -> Iterator[Session]:
    """psftp-shell run directly in the pty."""
    yield from spawn(sys.executable,
                     ["-m", "psftp_shell", "-D", sftp_server_bin],
                     scratch, environment(tmp_path))


def test_interactive_session(session: Session, scratch: Path,
                             tmp_path: Path) -> None:
    session.prompt()
    session.child.sendline("ls srv")
    session.expect(r"alpha\.txt")
    session.prompt()

    # Tab completes a remote name, fetched from the server.
    session.child.sendline("cd srv")
    session.prompt()
    session.child.send("get alp")
    session.expect(r"get alp")
    session.child.send("\t")           # the screen is updated by the diff
    session.expect(r"ha\.txt")
    session.child.send("\r")
    session.expect(r"Fetching .*/srv/alpha\.txt to alpha\.txt")
    session.prompt()
    assert (scratch / "alpha.txt").read_text() == "alpha\n"

    # History: Up recalls the last line.
    session.child.sendline("pwd")
    session.expect(r"Remote working directory: .*/srv\r\n")
    session.prompt()
    session.child.send(UP)
    session.expect(r"pwd")
    session.child.send("\r")
    session.expect(r"Remote working directory: .*/srv\r\n")
    session.prompt()

    # Ctrl-C during a long download: sftp's message, the prompt back,
    # nothing under the final name; the temporary stays with its journal
    # for reget.
    session.child.sendline("get big.bin")
    session.expect(r"big\.bin +\d+% ")
    session.child.sendintr()
    session.expect(r"\rInterrupt  \r\n")
    session.prompt()
    left = sorted(n for n in os.listdir(scratch) if n != "srv")
    assert "big.bin" not in left
    assert "alpha.txt" in left, left
    assert len([n for n in left if TEMP_MARK in n]) == 1, left
    assert os.path.isfile(journal.download_path(
        environment(tmp_path), str(scratch / "big.bin")))

    # Ctrl-D leaves with status 0.
    session.child.sendcontrol("d")
    session.expect(pexpect.EOF)
    session.child.close()
    assert session.child.exitstatus == 0, session.log.getvalue()
    assert b"Traceback" not in session.log.getvalue()
    history = tmp_path / "state" / "psftp-shell" / "history"
    assert "\n+pwd\n" in history.read_text()


def test_a_terminal_that_never_answers_is_not_waited_for(
        scratch: Path, tmp_path: Path, sftp_server_bin: str) -> None:
    """pexpect, like expect and sftp's other drivers, answers no cursor
    position request: psftp-shell sends none (prompt_toolkit's would
    hold the first command a second and the next prompt two more)."""
    env = dict(environment(tmp_path))
    del env["PROMPT_TOOLKIT_NO_CPR"]
    for session in spawn(sys.executable, ["-m", "psftp_shell", "-D",
                                          sftp_server_bin], scratch, env):
        session.prompt()
        typed = time.monotonic()
        session.child.sendline("pwd")
        session.expect(r"Remote working directory: ")
        waited = time.monotonic() - typed       # 1 s or more, if it asked
        session.prompt()
        session.child.sendline("lpwd")
        session.expect(r"Local working directory: ")
        session.prompt()
        assert waited < 0.9, session.log.getvalue()
        session.child.sendline("quit")
        session.expect(pexpect.EOF)
        assert b"\x1b[6n" not in session.log.getvalue()


def test_ctrl_z_and_fg_under_a_job_control_shell(
        scratch: Path, tmp_path: Path, sftp_server_bin: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    env = {**environment(tmp_path), "PS1": "shell$ "}
    for session in spawn(bash, ["--norc", "--noprofile", "--noediting",
                                "-i"], scratch, env):
        session.expect(r"shell\$ ")
        session.child.sendline(
            f"{shlex.quote(sys.executable)} -m psftp_shell "
            f"-D {shlex.quote(sftp_server_bin)}")
        session.prompt()
        session.child.sendline("cd srv")
        session.prompt()
        session.child.sendcontrol("z")
        session.expect(r"Stopped")
        session.expect(r"shell\$ ")
        session.child.sendline("fg")
        session.prompt()
        # The terminal is back in prompt_toolkit's hands: Tab completes.
        session.child.send("get alp")
        session.expect(r"get alp")
        session.child.send("\t")
        session.expect(r"ha\.txt")
        session.child.sendcontrol("c")
        # The aborted line is drawn once more, prompt included, while
        # the terminal is still in raw mode; between that and the next
        # prompt it is briefly cooked, and a Ctrl-D typed then reaches
        # the next prompt as a NUL (the kernel's end-of-file marker), as
        # type-ahead does with sftp too.  So wait for the new prompt.
        session.expect(r"\n")
        session.prompt()
        session.child.sendcontrol("d")
        session.expect(r"shell\$ ")
        session.child.sendline("echo status=$?")
        session.expect(r"status=0")
        session.child.sendline("exit")
        session.expect(pexpect.EOF)
        assert b"Traceback" not in session.log.getvalue()


@pytest.mark.parametrize("where", ["option", "config"])
def test_live_view_over_channels_of_fewer_connections(
        sshd: Any, remote_dir: Path, tmp_path: Path, where: str) -> None:
    """``-n 4 -X channels=2`` (or ``channels = 2`` in the config file)
    over the private sshd: a big get moves on all four streams, and the
    summary counts the two connections they share (the setting reaches
    the pool).  Then Ctrl-C in the middle of
    a bigger one: sftp's message and the prompt come back at once, and
    nothing is left under the final name."""
    from psftp_shell.devserver import HOST_ALIAS
    with open(remote_dir / "big.bin", "wb") as f:
        f.truncate(64 << 20)
    with open(remote_dir / "huge.bin", "wb") as f:
        f.truncate(2 << 30)
    local = tmp_path / "here"
    local.mkdir()
    channels = ["-X", "channels=2"]
    if where == "config":
        config = tmp_path / "config" / "psftp-shell" / "config"
        config.parent.mkdir(parents=True)
        config.write_text("channels = 2\n")
        channels = []
    for session in spawn(sys.executable, [
            "-m", "psftp_shell", "-n", "4", *channels,
            # about four seconds a get: every stream has logged in and
            # helped before it ends, even on a busy machine
            "-l", "128000",
            "-F", str(sshd.ssh_config), HOST_ALIAS], local,
            environment(tmp_path)):
        session.prompt()
        there = str(remote_dir).replace("[", "\\[").replace("]", "\\]")
        session.child.sendline(f"get {there}/big.bin")
        session.expect(r"1 file, 64MB in [0-9:]+ \([^)]*\), 4 streams, "
                       r"2 connections", timeout=60)
        session.prompt()
        session.child.sendline(f"get {there}/huge.bin")
        session.expect(r"total: 0/1 files")     # the live view is up
        session.expect(r"total: 0/1 files")     # and drawn again
        session.child.sendintr()
        session.expect(r"Interrupt", timeout=5)
        session.expect(PROMPT, timeout=5)
        session.child.sendline("bye")
        session.expect(pexpect.EOF)
    assert (local / "big.bin").stat().st_size == 64 << 20
    assert not (local / "huge.bin").exists()
    shutil.rmtree(local)        # the kept temporary holds reserved blocks
