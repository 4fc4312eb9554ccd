"""A stream: one SFTP client that carries a session's transfer data.

The pool (:mod:`psftp_shell.engine.pool`) opens them; the copies share
each one's budget of requests in flight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psftp_shell.sftp.client import SFTPClient


@dataclass(eq=False)
class Stream:
    """One SFTP client that carries transfer data.

    :param index: the stream's number for progress views (0 .. N-1)
    :param budget: requests in flight on this stream, shared by every
        copy running on it
    :param runs: chunk runs going on (at most one is started per stream)
    :param control: this is the shell's control client (``-n 1``, or the
        last resort when every pool stream is lost)
    :param connection: the number of the SSH connection it runs on
        (channels of one connection share it; the control's is 0)
    """

    index: int
    client: SFTPClient
    budget: asyncio.Semaphore
    control: bool = False
    connection: int = 0
    alive: bool = True
    runs: int = 0

    @classmethod
    def make(cls, index: int, client: SFTPClient, requests: int, *,
             control: bool = False, connection: int = 0) -> Stream:
        """A live stream allowing *requests* requests in flight."""
        return cls(index, client, asyncio.Semaphore(max(1, requests)),
                   control, connection)

    def usable(self) -> bool:
        """Whether the stream can carry more requests."""
        return self.alive and not self.client.closed
