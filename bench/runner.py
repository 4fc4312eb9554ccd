"""Run one client process and measure it as a user would experience it.

Times are whole-process wall-clock times, from just before the process is
started to its exit.  CPU seconds come from ``wait4``: on Linux its
rusage covers the process and the descendants it waited for, so ``sftp``
is counted together with its ``ssh``.  The process's own share (sftp
without its ssh, psftp-shell ``-S ssh`` without its ssh processes) is
read from ``/proc/PID/stat`` once it has exited, before it is reaped.

Peak memory cannot come from the same rusage: a child's ``ru_maxrss``
starts from the size of the process that forked it (here, the benchmark).
:class:`MemorySampler` reads each descendant's own high-water mark
(``VmHWM`` in ``/proc/PID/status``) a few times a second instead, and
reports their sum: ``sftp`` plus ``ssh``, or one psftp-shell.  A child
still running its parent's program is left out: between ``fork`` (or
``vfork``) and ``exec`` its high-water mark is its parent's, so a
sample caught there (psftp-shell starting ``ldconfig -p`` through
``ctypes.util``, for one) counted the client twice.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROMPT = b"sftp>"
CURSOR_QUERY = b"\x1b[6n"


@dataclass
class RunResult:
    """One run of one client: its time, its cost, and whether it worked."""

    ok: bool
    seconds: float
    cpu: float = 0.0
    maxrss_kib: int = 0
    error: str = ""
    own_cpu: float | None = None


class MemorySampler:
    """Follow a process tree's peak resident memory in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        """The processes of the tree whose memory is their own: the
        root, and descendants that run another program than their
        parent (see the module docstring)."""
        pids, todo = [], [(self.pid, "")]
        while todo:
            pid, parent_exe = todo.pop()
            exe = _exe(pid)
            if exe != parent_exe:
                pids.append(pid)
            try:
                text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
            except OSError:
                continue
            todo.extend((int(child), exe) for child in text.split())
        return pids

    def sample(self) -> None:
        """Note the current high-water mark of every process in the tree."""
        for pid in self._tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    kib = int(line.split()[1])
                    self.peaks[pid] = max(self.peaks.get(pid, 0), kib)

    def _run(self) -> None:
        self._stop.wait(0.01)
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> int:
        """Stop sampling; return the sum of the peaks seen, in KiB."""
        self._stop.set()
        self._thread.join()
        return sum(self.peaks.values())


def _exe(pid: int) -> str:
    """The program *pid* runs ("?" where /proc does not say)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "?"


def _first_line(path: Path) -> str:
    """Return the first non-empty line of a log, shortened.

    For a Python traceback that is the last line, the exception itself.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback"):
        return lines[-1][:200]
    return lines[0][:200]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _killer(pid: int, timeout: float) -> threading.Timer:
    """Start a timer that kills *pid*'s process group after *timeout*."""
    timer = threading.Timer(timeout, _kill_group, (pid,))
    timer.daemon = True
    timer.start()
    return timer


def own_cpu(pid: int) -> float | None:
    """User + system seconds of *pid* alone, children not included
    (None where ``/proc`` does not say)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])   # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _reap(pid: int, memory: MemorySampler
          ) -> tuple[int, float, int, float | None]:
    """Wait for *pid*; return its exit code, CPU seconds (with its
    children), peak RSS and its own CPU seconds."""
    # A last look while the process may still be a zombie with children.
    memory.sample()
    # Exited but not reaped: /proc still has its own times.
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    own = own_cpu(pid)
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return os.waitstatus_to_exitcode(status), cpu, memory.stop(), own


def run_timed(cmd: list[str], logdir: Path, timeout: float,
              env: dict[str, str] | None = None) -> RunResult:
    """Run *cmd* to completion with no terminal; stdout and stderr go to
    *logdir*.  It is killed (with its process group) after *timeout*."""
    out, err = logdir / "stdout.log", logdir / "stderr.log"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=stdout, stderr=stderr, env=env,
                                    start_new_session=True)
        except OSError as exc:
            return RunResult(False, 0.0, error=f"cannot start: {exc}")
        memory = MemorySampler(proc.pid)
        timer = _killer(proc.pid, timeout)
        try:
            code, cpu, rss, own = _reap(proc.pid, memory)
        except BaseException:
            _kill_group(proc.pid)
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = code
    if seconds >= timeout:
        return RunResult(False, seconds, cpu, rss,
                         f"timed out after {timeout:.0f} s", own)
    if code != 0:
        why = _first_line(err) or _first_line(out) or "no message"
        return RunResult(False, seconds, cpu, rss, f"exit {code}: {why}",
                         own)
    return RunResult(True, seconds, cpu, rss, own_cpu=own)


def _set_controlling_tty() -> None:
    """In the child: become a session leader with stdin as its tty."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _open_pty() -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", 24, 80, 0, 0))
    return master, slave


def _read_some(master: int, wait: float) -> bytes | None:
    """Read what the child wrote within *wait* seconds; None at its end."""
    ready, _, _ = select.select([master], [], [], max(wait, 0.0))
    if not ready:
        return b""
    try:
        data = os.read(master, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:
            return None
        raise
    return data if data else None


def start_on_pty(cmd: list[str], env: dict[str, str] | None,
                 timeout: float
                 ) -> tuple[subprocess.Popen[bytes], int, MemorySampler,
                            threading.Timer, float] | RunResult:
    """Start *cmd* on a new terminal, as its session leader: the process,
    the terminal's master side, its memory sampler, the timer that kills
    it after *timeout*, and when it started; or why it could not start."""
    master, slave = _open_pty()
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, stdin=slave, stdout=slave,
                                stderr=slave, env=env,
                                preexec_fn=_set_controlling_tty)
    except OSError as exc:
        os.close(master)
        os.close(slave)
        return RunResult(False, 0.0, error=f"cannot start: {exc}")
    os.close(slave)
    return (proc, master, MemorySampler(proc.pid),
            _killer(proc.pid, timeout), start)


def time_to_prompt(cmd: list[str], logdir: Path, timeout: float,
                   env: dict[str, str] | None = None) -> RunResult:
    """Start *cmd* on a terminal and time it until ``sftp>`` shows.

    Then it is sent ``quit`` and waited for; a terminal cursor-position
    query is answered, as a terminal would.  The rusage is that of the
    whole session.
    """
    started = start_on_pty(cmd, env, timeout)
    if isinstance(started, RunResult):
        return started
    proc, master, memory, timer, start = started
    seen = b""
    prompt_at = 0.0
    finished = False
    deadline = start + timeout
    try:
        while prompt_at == 0.0:
            data = _read_some(master, deadline - time.perf_counter())
            if data is None or time.perf_counter() >= deadline:
                break
            seen += data
            if CURSOR_QUERY in data:
                os.write(master, b"\x1b[1;1R")
            if PROMPT in seen:
                prompt_at = time.perf_counter() - start
        if prompt_at:
            os.write(master, b"quit\r")
            while time.perf_counter() < deadline:
                data = _read_some(master, deadline - time.perf_counter())
                if data is None:
                    break
                seen += data
        finished = True
    finally:
        if not prompt_at or not finished:
            _kill_group(proc.pid)
        code, cpu, rss, _ = _reap(proc.pid, memory)
        timer.cancel()
        proc.returncode = code
        os.close(master)
        (logdir / "tty.log").write_bytes(seen)
    if not prompt_at:
        why = _first_line(logdir / "tty.log") or "nothing shown"
        return RunResult(False, time.perf_counter() - start, cpu, rss,
                         f"no prompt: {why}")
    if code != 0:
        return RunResult(False, prompt_at, cpu, rss, f"exit {code} on quit")
    return RunResult(True, prompt_at, cpu, rss)
