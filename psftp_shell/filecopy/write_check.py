"""sftp's own OPEN of an upload's existing target, for its verdict.

An upload that replaces a file through a temporary still opens the
target for writing, as sftp would, to learn whether sftp's copy would
have been allowed; the rename waits for that answer.  That OPEN comes
while the temporary is open too, so a server allowing one handle at a
time refuses it with a plain failure where sftp's lone OPEN passes:
such a refusal is asked again once the copy's own handle is closed (and,
if the server's handles are taken by the session's other copies, once
one of those is closed too: :mod:`~psftp_shell.sftp.few_handles`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psftp_shell.sftp.client import (
    FX_FAILURE,
    FX_NO_SUCH_FILE,
    OPEN_WRITE,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.few_handles import open_with_room
from psftp_shell.sftp.request_core import retrieved


@dataclass(slots=True)
class WriteCheck:
    """sftp's own OPEN of an existing target for writing (no truncation),
    sent beside the copy to a temporary; its handle is closed unused.

    :param shown: the target as the copy names it, for sftp's message
    """

    client: SFTPClient
    shown: str
    ask: Callable[[], Awaitable[bytes]]
    opening: asyncio.Future[bytes]

    @classmethod
    def send(cls, client: SFTPClient, path: str, shown: str) -> WriteCheck:
        """OPEN *path* (known to be a regular file) for writing now."""
        return cls.asking(client, shown,
                          lambda: client.open(path, OPEN_WRITE))

    @classmethod
    def if_regular(cls, client: SFTPClient, path: str, shown: str
                   ) -> WriteCheck:
        """LSTAT *path*, then OPEN it for writing if it is a regular file
        (an OPEN of a FIFO would block the server)."""
        async def open_if_regular() -> bytes:
            there = await client.lstat(path)
            if not there.is_reg():
                raise StatusError(FX_NO_SUCH_FILE)     # nothing to keep
            return await client.open(path, OPEN_WRITE)
        return cls.asking(client, shown, open_if_regular)

    @classmethod
    def asking(cls, client: SFTPClient, shown: str,
               ask: Callable[[], Awaitable[bytes]]) -> WriteCheck:
        """Send *ask* (the OPEN) now."""
        return cls(client, shown, ask, _sent(ask))

    async def refusal(self, release: Callable[[], Awaitable[None]]
                      | None = None) -> StatusError | None:
        """The server's refusal of the OPEN; None if it was allowed, if
        the target is gone since, or if the answer was lost with its
        connection.  A plain failure is asked again after *release*
        (which closes the copy's own handle, if still open)."""
        refused = await self._answer()
        if refused is None or refused.code != FX_FAILURE:
            return refused
        if release is not None:
            await release()
        self.opening = _sent(lambda: open_with_room(self.client, self.ask))
        return await self._answer()

    async def _answer(self) -> StatusError | None:
        try:
            handle = await asyncio.shield(self.opening)
        except asyncio.CancelledError:
            self.drop()
            raise
        except StatusError as exc:
            return None if exc.code == FX_NO_SUCH_FILE else exc
        except SFTPError:
            return None
        self._close(handle)
        return None

    def drop(self) -> None:
        """Not needed after all: close the handle when it comes."""
        def done(opening: asyncio.Future[bytes]) -> None:
            if not opening.cancelled() and opening.exception() is None:
                self._close(opening.result())
        self.opening.add_done_callback(done)

    def _close(self, handle: bytes) -> None:
        if not self.client.closed:
            closing = asyncio.ensure_future(self.client.close_handle(handle))
            closing.add_done_callback(retrieved)


def _sent(ask: Callable[[], Awaitable[bytes]]) -> asyncio.Future[bytes]:
    opening = asyncio.ensure_future(ask())
    opening.add_done_callback(retrieved)
    return opening
