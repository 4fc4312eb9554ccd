"""OPENs on a server that holds few open handles per session.

Some servers allow each session only a few open files (one, for some),
and refuse one more with a plain ``Failure``.  sftp never meets the
limit: it copies one file at a time, and reads a directory whole before
it copies what is in it.  psftp-shell keeps several files in flight on
each stream, and at ``-n 1`` walks a tree on the session its copies
use.  :func:`open_with_room` makes such an OPEN wait, when it is refused
while others of its session are open, until one of them is closed, then
sends it again.

The refusal is final, and reported as sftp reports it:

- when none of the session's handles is open, or, for a file, fewer
  than the session has held at once before, counting files alone and
  counting files and directories (the server took more then: this is
  no limit, but a refusal of this file, such as a directory's);
- after :data:`IDLE_LIMIT` seconds in which the session sent nothing
  and waited for nothing (the handles open then are nobody's work in
  progress, and may never be closed); not under ``-l``, whose pauses
  look like that.

The session lost meanwhile raises its loss instead: the copy goes on
elsewhere.  An interrupted command's copies close their handles as they
stop, and a waiting OPEN goes out then like one in flight at Ctrl-C
(the copy that follows it stops at once).

Only OPENs whose caller holds no other handle of the session wait here
(a file's own source or temporary, a directory to list): a caller
waiting for its own handle to close would wait in vain, and a stream
joining a copy in chunks does better to leave it to the others.  An
upload's check under ``-X verify=hash`` reopens its temporary instead
(:func:`~psftp_shell.filecopy.verify.verify_upload`).  A
session whose server refused an OPEN as a limit would is marked
(:attr:`~psftp_shell.sftp.handle_count.HandleCount.limited`): no OPEN
is sent there ahead of a helper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from psftp_shell.sftp.client import FX_FAILURE, SFTPClient, StatusError
from psftp_shell.sftp.wire import copy_error

T = TypeVar("T")

IDLE_LIMIT = 10.0
"""Seconds a refused OPEN waits for a handle to close while its session
neither sends nor waits for anything."""
POLL = 0.5


async def open_with_room(client: SFTPClient,
                         opening: Callable[[], Awaitable[T]], *,
                         directory: bool = False,
                         idle_limit: float | None = IDLE_LIMIT) -> T:
    """Run *opening* (an OPEN, or with *directory* an OPENDIR, on
    *client*); while the server refuses it as a handle limit would, run
    it again once one of the session's other handles has been closed
    (see the module docstring; *idle_limit* None: no idle bound)."""
    count = client.handles
    while True:
        closes, held, files = count.closed, count.open, count.files
        try:
            return await opening()
        except StatusError as exc:
            limit = refused_as_limit(client, exc, directory=directory,
                                     held=held, files=files)
            if limit:
                count.limited = True
            if not limit or not await handle_closed(client, closes,
                                                    idle_limit):
                lost = client.lost_reason
                if lost is not None:    # the stream's loss, not the file's
                    raise copy_error(lost) from None
                raise


def refused_as_limit(client: SFTPClient, exc: StatusError, *,
                     directory: bool = False, held: int = 0, files: int = 0
                     ) -> bool:
    """Whether *exc*, the answer to an OPEN (an OPENDIR with *directory*)
    on *client*, is a refusal as a handle limit makes one: a plain
    failure while the session holds a handle, and for a file as many
    as it ever held at once (see the module docstring).  *held* and
    *files*: the session's open handles and files when the OPEN was
    sent, if known (the counts now are taken as well)."""
    count = client.handles
    held, files = max(held, count.open), max(files, count.files)
    return exc.code == FX_FAILURE and held > 0 and (
        directory or files >= count.most_files or held >= count.most)


async def handle_closed(client: SFTPClient, since: int,
                        idle_limit: float | None = IDLE_LIMIT) -> bool:
    """Wait until one of *client*'s handles has been closed after its
    *since* closes (at once if one was); False if none is open to be
    closed, if the session ends, or after *idle_limit* seconds in which
    the session sent no request and had none outstanding."""
    loop = asyncio.get_running_loop()
    quiet_from = loop.time()
    sent = client.requests_sent
    while client.handles.closed == since:
        if client.handles.open == 0 or client.closed:
            return False
        if client.requests_sent != sent or \
                client.oldest_pending() is not None:
            sent, quiet_from = client.requests_sent, loop.time()
        elif idle_limit is not None and \
                loop.time() - quiet_from >= idle_limit:
            return False
        closed = client.handles.next_close()    # (woken at its end too)
        try:
            await asyncio.wait([closed], timeout=POLL)
        finally:
            closed.cancel()
    return not client.closed
