"""Run one command interactively, on a terminal, as a user types it.

The batch runs of :mod:`bench.runner` have no terminal, so psftp-shell
draws no progress; these runs give the client a pseudo-terminal, wait
for ``sftp>``, type the command, wait for the next prompt and type
``quit``, so the live view (or sftp's meter) really renders.  Times are
whole-process wall-clock times, login included, like the batch runs';
CPU seconds come from ``wait4``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.runner import (
    CURSOR_QUERY,
    PROMPT,
    RunResult,
    _first_line,
    _kill_group,
    _read_some,
    _reap,
    start_on_pty,
)

# prompt_toolkit turns bracketed paste on for each prompt and off after
PASTE_ON, PASTE_OFF = b"\x1b[?2004h", b"\x1b[?2004l"


def _read_into(master: int, seen: bytearray, wait: float) -> bool:
    """Add what the child draws within *wait* seconds to *seen*,
    answering cursor position queries as a terminal would; False once
    the child has ended."""
    data = _read_some(master, wait)
    if data is None:
        return False
    seen += data
    if CURSOR_QUERY in data:
        os.write(master, b"\x1b[24;1R")
    return True


def _until(master: int, seen: bytearray, start: int, deadline: float
           ) -> bool:
    """Read until a prompt shows at the start of a line after *start*
    (the shell redraws its prompt as keys are typed)."""
    while True:
        line = seen.find(b"\n", start)
        if line >= 0 and PASTE_ON in seen[:start]:
            line = seen.find(PASTE_ON, seen.find(PASTE_OFF, start))
        if line >= 0 and seen.find(PROMPT, line) >= 0:
            return True
        left = deadline - time.perf_counter()
        if left <= 0 or not _read_into(master, seen, left):
            return False


def _linger(master: int, seen: bytearray, seconds: float) -> None:
    """Wait *seconds* at the prompt, as a user does before typing,
    reading what the child draws meanwhile."""
    until = time.perf_counter() + seconds
    while (left := until - time.perf_counter()) > 0 and \
            _read_into(master, seen, left):
        pass


def run_typed(cmd: list[str], line: str, logdir: Path, timeout: float,
              env: dict[str, str] | None = None, pause: float = 0.0
              ) -> RunResult:
    """Start *cmd* on a terminal, type *line* at its prompt (several
    lines one by one, each after the prompt is back), then ``quit``.

    With *pause*, the first line is typed that many seconds after the
    first prompt shows (a user's moment to type it), and the pause is
    left out of the time.  Everything the terminal showed goes to
    ``tty.log`` in *logdir*.
    """
    started = start_on_pty(cmd, env, timeout)
    if isinstance(started, RunResult):
        return started
    proc, master, memory, timer, start = started
    seen = bytearray()
    deadline = start + timeout
    done = False
    try:
        ready = _until(master, seen, 0, deadline)
        if ready and pause:
            _linger(master, seen, pause)
        for text in line.split("\n"):
            if not ready:
                break
            typed = len(seen)
            os.write(master, text.encode() + b"\r")
            ready = _until(master, seen, typed, deadline)
        if ready:
            os.write(master, b"quit\r")
            while _read_some(master, deadline - time.perf_counter()):
                pass
            done = True
    finally:
        if not done:
            _kill_group(proc.pid)
        code, cpu, rss, own = _reap(proc.pid, memory)
        timer.cancel()
        os.close(master)
        (logdir / "tty.log").write_bytes(bytes(seen))
    seconds = time.perf_counter() - start - pause
    if not done:
        why = _first_line(logdir / "tty.log") or "nothing shown"
        return RunResult(False, seconds, cpu, rss, f"no prompt: {why}", own)
    if code != 0:
        return RunResult(False, seconds, cpu, rss, f"exit {code} on quit",
                         own)
    return RunResult(True, seconds, cpu, rss, own_cpu=own)
