"""What the progress views print when a command ends (a pure leaf).

:class:`Failures` lists the files that failed; :class:`Kept` names the
temporaries an interrupted command left, and the command that finishes
each.  sftp prints nothing of the kind, so only the views print them:
batch mode and redirected output (no view) stay byte for byte sftp's.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from psftp_shell.escape import vis_field
from psftp_shell.listing import format_meter_size

_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})


def char_width(char: str) -> int:
    """Columns a printable character takes (glibc's wcwidth, roughly)."""
    if unicodedata.category(char) in _ZERO_WIDTH:
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def fit(text: str, width: int) -> str:
    """*text* (printable) padded or cut to *width* columns; a cut ends
    in an ellipsis."""
    used = 0
    for index, char in enumerate(text):
        used += char_width(char)
        if used > width:
            cut = text[:index]
            while cut and sum(map(char_width, cut)) > width - 1:
                cut = cut[:-1]
            return cut + "\u2026" + " " * (width - 1 - sum(
                map(char_width, cut)))
    return text + " " * (width - used)


@dataclass(slots=True)
class Failures:
    """The files of one command, and those that failed with the reason."""

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


@dataclass(slots=True)
class Kept:
    """Temporaries kept by partial copies: ``(name, bytes, finish)``."""

    items: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, temp: str, nbytes: int, finish: str) -> None:
        """*temp* holds *nbytes* of a copy that *finish* completes."""
        self.items.append((temp, nbytes, finish))

    def take_lines(self) -> list[str]:
        """One line per temporary, once."""
        items, self.items = self.items, []
        lines = []
        for temp, nbytes, finish in items:
            name = vis_field(temp.rpartition("/")[2] or temp)
            size = format_meter_size(nbytes).strip()
            size += "" if size.endswith("B") else "B"
            lines.append(f"kept {name} ({size}): {vis_field(finish)} "
                         "to finish")
        return lines
