"""The first questions of a session, sent right behind INIT.

sftp asks for the server's limits and then for the start directory once
VERSION has come back.  Sent right behind INIT instead (the server
answers in order, INIT first), their answers arrive with VERSION: one
round trip less before the first prompt or the first transfer.

The limits may be asked before the server says it offers them only of a
server known to: an SSH server that names itself OpenSSH 8.5 or later
(its ``internal-sftp`` and ``sftp-server`` answer ``limits@openssh.com``).
Otherwise nothing is sent early and the session starts as sftp's does,
which also keeps the request ids sftp would use.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

from psftp_shell.sftp.client import Limits, SFTPClient
from psftp_shell.sftp.request_core import retrieved

T = TypeVar("T")

_OPENSSH = re.compile(r"SSH-2\.0-OpenSSH_(\d+)\.(\d+)")
LIMITS_SINCE = (8, 5)
"""The first OpenSSH release whose SFTP server answers limits."""


def has_limits(server: str) -> bool:
    """Whether the SSH identification string *server* promises limits."""
    found = _OPENSSH.match(server)
    return found is not None and \
        (int(found.group(1)), int(found.group(2))) >= LIMITS_SINCE


def _quietly(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task whose failure is reported only to whoever awaits it."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(retrieved)
    return task


class FirstQuestions:
    """The server's limits and the start directory, asked early."""

    def __init__(self) -> None:
        self.limits: asyncio.Task[Limits] | None = None
        self.cwd: asyncio.Task[str] | None = None

    def ask(self, client: SFTPClient, server: str) -> None:
        """Send both requests on *client* (INIT is out), in sftp's order,
        if *server* (the SSH identification string) answers both."""
        if has_limits(server):
            self.limits = _quietly(client.limits())
            self.cwd = _quietly(client.realpath("."))

    def drop(self) -> None:
        """Cancel what was not awaited (the session did not start)."""
        for task in (self.limits, self.cwd):
            if task is not None:
                task.cancel()
