"""sftp's own OPEN of an upload's existing target, for its verdict.

An upload that replaces a file through a temporary still opens the
target for writing, as sftp would, to learn whether sftp's copy would
have been allowed; the rename waits for that answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psftp_shell.sftp.client import (
    FX_NO_SUCH_FILE,
    OPEN_WRITE,
    SFTPClient,
    SFTPError,
    StatusError,
)
from psftp_shell.sftp.request_core import retrieved


@dataclass(slots=True)
class WriteCheck:
    """sftp's own OPEN of an existing target for writing (no truncation),
    sent beside the copy to a temporary; its handle is closed unused.

    :param shown: the target as the copy names it, for sftp's message
    """

    client: SFTPClient
    shown: str
    opening: asyncio.Future[bytes]

    @classmethod
    def send(cls, client: SFTPClient, path: str, shown: str) -> WriteCheck:
        """OPEN *path* (known to be a regular file) for writing now."""
        opening = asyncio.ensure_future(client.open(path, OPEN_WRITE))
        opening.add_done_callback(retrieved)
        return cls(client, shown, opening)

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
        opening = asyncio.ensure_future(open_if_regular())
        opening.add_done_callback(retrieved)
        return cls(client, shown, opening)

    async def refusal(self) -> StatusError | None:
        """The server's refusal of the OPEN; None if it was allowed, if
        the target is gone since, or if the answer was lost with its
        connection."""
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
