"""Lines drawn under the cursor and redrawn in place (a pure helper).

The live view keeps a block of lines at the bottom of what the shell
printed.  :class:`Region` remembers how many rows it drew, so that the
next drawing starts at its first row and erases what is left below; it
never draws more rows than the terminal has minus one, so moving up
never reaches above the screen (into the shell's own lines, which a
terminal cannot give back).  Each line is cut to one column less than
the width: no line wraps, so the count of rows is exact.
:class:`AboveWriter` stands in for the shell's output streams meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

ERASE_LINE = "\x1b[2K"
ERASE_BELOW = "\x1b[J"


def up(rows: int) -> str:
    """The cursor to the start of the line *rows* rows higher."""
    return "\r" + (f"\x1b[{rows}A" if rows > 0 else "")


class Region:
    """A block of lines at the bottom of the terminal.

    :param write: writes text to the terminal at once
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.rows = 0           # rows on screen; the cursor is on the last

    def _home(self, height: int) -> str:
        return up(min(self.rows, max(height, 1)) - 1) if self.rows else ""

    def draw(self, lines: list[str], height: int) -> None:
        """Replace the block with *lines* (at most *height* - 1 rows)."""
        lines = lines[:max(height - 1, 1)]
        text = self._home(height) + "\r\n".join(
            ERASE_LINE + line for line in lines) + ERASE_BELOW
        self.rows = len(lines)
        self.write(text)

    def clear(self, height: int) -> None:
        """Erase the block; the cursor stays where it began."""
        if self.rows:
            self.write(self._home(height) + ERASE_BELOW)
        self.rows = 0

    def forget(self) -> None:
        """The screen changed under us (the job was stopped and resumed):
        the next drawing starts where the cursor is."""
        self.rows = 0


class AboveWriter:
    """A binary stream whose lines are printed above the live block.

    While the view is up, the shell's messages (``Retrieving ...``,
    errors, ``Interrupt``) go to *above* with the stream they were meant
    for, whole lines at a time: the view erases its block, prints them
    and draws the block again at its next refresh.
    """

    def __init__(self, above: Callable[[BinaryIO, bytes], None],
                 stream: BinaryIO) -> None:
        self.above = above
        self.stream = stream
        self._pending = b""

    def write(self, data: bytes) -> int:
        """Print each complete line; keep the rest."""
        self._pending += bytes(data)
        head, sep, self._pending = self._pending.rpartition(b"\n")
        if sep:
            self.above(self.stream, head + sep)
        return len(data)

    def flush(self) -> None:
        """Lines are printed as they complete."""

    def take_pending(self) -> bytes:
        """Return (and forget) an unfinished last line."""
        pending, self._pending = self._pending, b""
        return pending
