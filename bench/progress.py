"""A one-line progress indicator on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    """Format a duration as ``m:ss``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class Progress:
    """Redraws one status line on a terminal; prints lines otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self._shown = False

    def show(self, text: str) -> None:
        """Show *text* with the step count and the elapsed time."""
        pct = 100 * self.done // self.total
        width = len(str(self.total))
        line = (f"bench [{self.done:>{width}}/{self.total}] {pct:3d}% "
                f"{clock(time.monotonic() - self.start)}  {text}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line[:159])
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def step(self, count: int = 1) -> None:
        """Count *count* steps as done."""
        self.done = min(self.done + count, self.total)

    def note(self, text: str) -> None:
        """Print a message on a line of its own."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the status line, if one is shown."""
        if self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
