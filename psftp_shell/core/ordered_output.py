"""Messages of concurrent file copies, printed in sftp's order (pure).

sftp copies one file after another, so its messages come in the order
of its loop: ``Fetching a``, a's errors, ``Fetching b``...  When files
are copied concurrently, each gets a :class:`Slot`, a place in that
order; a slot's lines are held back until every earlier slot is closed,
and the first open slot writes straight through.  The batch output of a
parallel command is therefore the same bytes as sftp's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from psftp_shell.core.output import Output


class Printer(Protocol):
    """What copy code prints through: an Output, or a slot of one."""

    def line(self, text: str) -> None:
        """A stdout line (``Retrieving``, ``Entering``)."""

    def info(self, text: str) -> None:
        """An informational stdout line, dropped when quiet."""

    def error(self, text: str) -> None:
        """An error message on stderr."""

    def logit(self, text: str) -> None:
        """A stderr message dropped with ``-q``."""

    def call(self, action: Callable[[], None]) -> None:
        """Run *action* (a view's drawing) at this point of the output."""


_Pending = tuple[Callable[[str], None], str]


class Slot:
    """One place in the output order; see :class:`Sequencer`."""

    __slots__ = ("_seq", "_held", "closed")

    def __init__(self, seq: Sequencer) -> None:
        self._seq = seq
        self._held: list[_Pending] = []
        self.closed = False

    def _emit(self, method: Callable[[str], None], text: str) -> None:
        if self._seq.is_head(self):
            method(text)
        else:
            self._held.append((method, text))

    def line(self, text: str) -> None:
        """A stdout line, now or when this slot's turn comes."""
        self._emit(self._seq.out.line, text)

    def info(self, text: str) -> None:
        """An informational line, now or in turn."""
        self._emit(self._seq.out.info, text)

    def error(self, text: str) -> None:
        """An error message, now or in turn."""
        self._emit(self._seq.out.error, text)

    def logit(self, text: str) -> None:
        """A ``logit`` message, now or in turn."""
        self._emit(self._seq.out.logit, text)

    def call(self, action: Callable[[], None]) -> None:
        """Run *action* now or in turn (a progress meter's drawing of this
        file comes between the messages of the files around it)."""
        self._emit(lambda _text: action(), "")

    def flush(self) -> None:
        """Write what was held back (this slot's turn has come)."""
        held, self._held = self._held, []
        for method, text in held:
            method(text)

    def close(self) -> None:
        """Nothing more will be written here; later slots may go on."""
        if not self.closed:
            self.closed = True
            self._seq.advance()


class Sequencer:
    """Hands out slots in output order and flushes them in turn."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self._slots: deque[Slot] = deque()

    def slot(self) -> Slot:
        """A new slot after every slot handed out so far."""
        slot = Slot(self)
        self._slots.append(slot)
        return slot

    def is_head(self, slot: Slot) -> bool:
        """Whether *slot* is the first one still open (writes through)."""
        return bool(self._slots) and self._slots[0] is slot

    def advance(self) -> None:
        """Drop closed slots from the front, flushing the next ones."""
        while self._slots and self._slots[0].closed:
            self._slots.popleft()
            if self._slots:
                self._slots[0].flush()

    def close_all(self) -> None:
        """Close every slot, writing everything held (the command ends)."""
        for slot in list(self._slots):
            slot.close()

    @property
    def done(self) -> bool:
        """Whether every slot handed out has been closed and written."""
        return not self._slots
