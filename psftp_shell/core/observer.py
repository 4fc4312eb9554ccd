"""What the transfer engine reports, and to whom (a pure leaf module).

The engine calls a :class:`TransferObserver`; it never draws anything
itself.  Progress views (sftp's one-line meter, the per-stream rich view)
implement this interface in the presentation layer; :class:`NullObserver`
serves batch mode, non-terminal output and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class TransferJob:
    """One file copy, as observers see it.

    :param upload: True for put, False for get
    :param source: the path read from, as sftp names it in messages
    :param destination: the path written to
    :param size: the expected size: the remote size for downloads (0
        when unknown; sftp then shows no meter), the local one for uploads
    :param offset: bytes already in place at the start (resume)
    :param transferred: bytes moved so far, kept up to date
    :param verified: how the copy was checked before it was renamed into
        place, set before :meth:`TransferObserver.file_finished`:
        ``"size"``, ``"sha256 (server check-file)"``, ``"sha256
        (remote command)"``, ``"sha256 (read-back)"``; empty when not
        checked (``-X verify=none``, copies written in place)
    :param in_turn: runs a view's drawing of this file at the file's
        place in the command's output, after the messages and drawings
        of the files before it (files copied together finish in any
        order); None runs it at once
    """

    upload: bool
    source: str
    destination: str
    size: int
    offset: int = 0
    transferred: int = 0
    verified: str = ""
    in_turn: Callable[[Callable[[], None]], None] | None = None

    @property
    def label(self) -> str:
        """The name sftp's progress meter shows (the source's last part)."""
        return self.source.rpartition("/")[2] or self.source


class TransferObserver(Protocol):
    """What the engine tells a progress display.

    One command (``get``, ``put -r`` ...) is bracketed by
    :meth:`command_started` and :meth:`command_finished`; in between,
    files start, advance on numbered streams (0 .. streams-1) and finish,
    possibly several at once.
    """

    def command_started(self, *, streams: int) -> None:
        """A transfer command begins, running on *streams* streams."""

    def file_started(self, job: TransferJob) -> None:
        """A file's data starts to move (after both ends are open)."""

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """*nbytes* more bytes of *job* were moved by *stream*."""

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        """The copy ended: *error* is None on success."""

    def command_finished(self) -> None:
        """The command's transfers are over (success or not)."""


class NullObserver:
    """An observer that shows nothing (batch mode, tests)."""

    def command_started(self, *, streams: int) -> None:
        """Ignore the start of a command."""

    def file_started(self, job: TransferJob) -> None:
        """Ignore the start."""

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        """Ignore progress."""

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        """Ignore the end."""

    def command_finished(self) -> None:
        """Ignore the end of a command."""


class FailureListener(Protocol):
    """An observer that also collects the files a command failed on.

    An optional extension of :class:`TransferObserver`: progress views
    implement it to end a multi-file command with one list of failures.
    """

    def file_failed(self, path: str, reason: str) -> None:
        """*path* (the source, as typed) failed; *reason* is its error."""


def report_failure(observer: Any, path: str, reason: str) -> None:
    """Tell *observer* that *path* failed, if it listens for that."""
    listener = getattr(observer, "file_failed", None)
    if callable(listener):
        listener(path, reason)


class LinkListener(Protocol):
    """An observer that also learns which SSH connection each stream runs
    on (an optional extension, for a summary of the command)."""

    def links(self, connections: dict[int, int]) -> None:
        """Stream number -> connection number, for the command's streams."""


def report_links(observer: Any, connections: dict[int, int]) -> None:
    """Tell *observer* the streams' connections, if it listens for that."""
    listener = getattr(observer, "links", None)
    if callable(listener):
        listener(connections)


class PlanListener(Protocol):
    """An observer that also learns what a command will copy, before
    the files start (an optional extension, for totals)."""

    def queued(self, size: int | None) -> None:
        """A file was handed to the streams; *size* if known."""

    def walking(self, active: bool) -> None:
        """A tree walk began (True) or ended (False)."""


def report_queued(observer: Any, size: int | None) -> None:
    """Tell *observer* a file was queued, if it listens for that."""
    listener = getattr(observer, "queued", None)
    if listener is not None:
        listener(size)


def report_walking(observer: Any, active: bool) -> None:
    """Tell *observer* a tree walk began or ended, if it listens."""
    listener = getattr(observer, "walking", None)
    if listener is not None:
        listener(active)


class KeptListener(Protocol):
    """An observer that also learns which temporaries a stopped copy
    kept, and the command that finishes each (an optional extension)."""

    def kept_temp(self, temp: str, nbytes: int, finish: str) -> None:
        """*temp* holds *nbytes*; the command *finish* completes it."""


def report_kept(observer: Any, temp: str, nbytes: int, finish: str
                ) -> None:
    """Tell *observer* a temporary was kept, if it listens for that."""
    listener = getattr(observer, "kept_temp", None)
    if listener is not None:
        listener(temp, nbytes, finish)
