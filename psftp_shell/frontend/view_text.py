"""The progress views' text: sizes, rates, times, names cut to a width
(by rich's cell widths), and what the views print when a command ends.

:class:`Failures` lists the files that failed; :class:`Kept` names the
temporaries an interrupted command left, and the command that finishes
each.  sftp prints nothing of the kind, so only the views print them:
batch mode and redirected output (no view) stay byte for byte sftp's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psftp_shell.core.escape import vis_field
from psftp_shell.shell.listing import format_meter_rate, format_meter_size

AGE_FACTOR = 0.9        # weight of the old rate in the running average


def human_size(nbytes: int) -> str:
    """A compact size: ``512B``, ``9999B``, ``10KB``, ``5120KB``."""
    text = format_meter_size(nbytes).strip()
    return text if text[-1:] == "B" else text + "B"


def human_rate(bytes_per_second: int) -> str:
    """A compact rate: ``68.2KB/s``."""
    return format_meter_rate(bytes_per_second).strip() + "/s"


def clock_text(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from an hour on."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


@dataclass(slots=True)
class Rate:
    """A rate sampled at each refresh, averaged as sftp does."""

    bytes_per_second: int = 0
    last_bytes: int = 0
    _last_time: float | None = None

    def sample(self, total_bytes: int, now: float) -> None:
        """Fold the bytes moved since the last sample into the average."""
        if self._last_time is None:
            self._last_time = now
            self.last_bytes = total_bytes
            return
        elapsed = now - self._last_time
        if elapsed <= 0:
            return
        speed = int((total_bytes - self.last_bytes) / elapsed)
        if self.bytes_per_second:
            self.bytes_per_second = int(self.bytes_per_second * AGE_FACTOR
                                        + speed * (1.0 - AGE_FACTOR))
        else:
            self.bytes_per_second = speed
        self._last_time = now
        self.last_bytes = total_bytes


def char_width(char: str) -> int:
    """Columns a printable character takes on the terminal (rich's
    cell widths; imported here, since batch runs never load rich)."""
    from rich.cells import cell_len
    return cell_len(char)


def fit(text: str, width: int) -> str:
    """*text* (printable) padded or cut to *width* columns; a cut ends
    in an ellipsis, as rich's ``Text.truncate`` cuts (with rich's cell
    functions alone: ``rich.text`` costs an interactive start 10 ms of
    CPU to import)."""
    from rich.cells import cell_len, set_cell_size
    if width <= 0:
        return ""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "\u2026"
    return text + " " * (width - length)


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
