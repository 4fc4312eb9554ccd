"""The benchmark's typed runs: a pause at the prompt is left out.

``run_typed(..., pause=P)`` waits P seconds after the first prompt
before it types, as a user does, and reports the time without them.  A
stand-in shell notes when the line came, so the test sees both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.terminal import run_typed

SHELL = """
import sys, time
start = time.monotonic()
out = open("{log}", "w")
for _ in range(2):
    sys.stdout.write("\\nsftp> "); sys.stdout.flush()
    line = sys.stdin.readline()
    out.write(f"{{time.monotonic() - start:.3f}} {{line.strip()}}\\n")
    if line.strip() == "quit":
        break
"""


def _typed(tmp_path: Path, pause: float) -> tuple[float, list[str]]:
    log = tmp_path / f"lines-{pause}"
    script = tmp_path / "shell.py"
    script.write_text(SHELL.format(log=log))
    result = run_typed([sys.executable, str(script)], "pwd", tmp_path, 20,
                       pause=pause)
    assert result.ok, result.error
    return result.seconds, log.read_text().splitlines()


def test_the_pause_comes_before_the_line_and_is_not_timed(
        tmp_path: Path) -> None:
    seconds, lines = _typed(tmp_path, 1.0)
    came, typed = lines[0].split()
    assert typed == "pwd" and float(came) >= 1.0     # typed after it
    assert lines[1].endswith(" quit")
    assert seconds < float(came)                     # and not counted


def test_without_a_pause_the_line_comes_at_once(tmp_path: Path) -> None:
    seconds, lines = _typed(tmp_path, 0.0)
    came, typed = lines[0].split()
    assert typed == "pwd" and float(came) < 1.0
    assert seconds >= float(came)
