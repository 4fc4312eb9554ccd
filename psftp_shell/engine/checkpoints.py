"""A chunked copy's checkpoints: its progress saved in its journal.

Every :data:`CHECKPOINT_SECONDS` while data moves, a
:class:`Checkpoints` hands the ranges done so far to the job's saver,
in the background, so a crash loses at most a few seconds of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from psftp_shell.filecopy.chunk_ranges import RangeSet

CHECKPOINT_SECONDS = 5.0
"""How often a chunked copy records its progress in its journal."""


class Checkpoints:
    """The checkpoints of one chunked copy (its file's
    :attr:`~psftp_shell.engine.chunked_file.ChunkedFile.checkpoints`).

    :attr saver: records the ranges done (set by the job); None: none
    """

    def __init__(self) -> None:
        self.saver: Callable[[RangeSet], Awaitable[None]] | None = None
        self._saving: asyncio.Future[None] | None = None
        self._saved_at = time.monotonic()

    def tick(self, done: RangeSet) -> None:
        """Start a checkpoint if one is due (called as data moves).

        The ranges *done* so far are saved in the background by
        :attr:`saver` (it syncs the data first), so a crash loses at
        most a few seconds of work.
        """
        now = time.monotonic()
        busy = self._saving is not None and not self._saving.done()
        if self.saver is None or busy \
                or now - self._saved_at < CHECKPOINT_SECONDS:
            return
        self._saved_at = now
        snapshot = RangeSet(done)
        self._saving = asyncio.ensure_future(self.saver(snapshot))

    async def settle(self) -> None:
        """Wait for a checkpoint under way; no new one starts after."""
        self.saver = None
        task, self._saving = self._saving, None
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
