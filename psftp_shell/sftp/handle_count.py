"""The handles an SFTP session holds open, for the OPENs that wait.

:class:`HandleCount` follows each handle from its OPEN's or OPENDIR's
answer to its CLOSE's (a server may work on requests concurrently, and
hold a handle until it has answered its CLOSE), files apart from
directories (a server may count
either alone against its limit), and the most the session held at once.
:mod:`psftp_shell.sftp.few_handles` decides from it whether a refused
OPEN may be a handle limit, and waits on it for a close.
"""

from __future__ import annotations

import asyncio


class HandleCount:
    """Handles open on one session, the most held at once, the closes."""

    def __init__(self) -> None:
        self._open: dict[bytes, bool] = {}     # handle: is a directory
        self.files = 0
        """File handles open now."""
        self.most = 0
        """The most handles (files and directories) open at once."""
        self.most_files = 0
        """The most file handles open at once."""
        self.closed = 0
        """CLOSEs answered."""
        self.limited = False
        """Whether the server refused an OPEN as a handle limit would."""
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def open(self) -> int:
        """Handles open now, files and directories."""
        return len(self._open)

    def arrived(self, handle: bytes, directory: bool = False) -> None:
        """*handle* was given (an answered OPEN or OPENDIR)."""
        if handle in self._open:
            return
        self._open[handle] = directory
        if not directory:
            self.files += 1
            self.most_files = max(self.most_files, self.files)
        self.most = max(self.most, len(self._open))

    def closed_one(self, handle: bytes) -> None:
        """A CLOSE of *handle* was answered (or its session ended)."""
        directory = self._open.pop(handle, None)
        if directory is False:
            self.files -= 1
        self.closed += 1
        self.wake()

    def next_close(self) -> asyncio.Future[None]:
        """Done at the next CLOSE (or :meth:`wake`)."""
        waiter: asyncio.Future[None] = \
            asyncio.get_running_loop().create_future()
        self._waiters = [w for w in self._waiters if not w.done()]
        self._waiters.append(waiter)
        return waiter

    def wake(self) -> None:
        """Wake everyone waiting for a close."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
