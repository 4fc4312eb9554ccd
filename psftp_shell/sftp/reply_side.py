"""The receive side of an SFTP session: replies handed to requests.

:class:`ReplySide` is a base of :class:`~psftp_shell.sftp.request_core.
SFTPCore`.  :meth:`~ReplySide._resolve` gives one reply to its request's
future; the core's receive loop calls it for every reply it reads.

A reader that buffers what arrives (the SSH channel's session) can also
call :meth:`~ReplySide._dispatch_buffered` when data comes in while the
loop waits between replies: every whole reply buffered is resolved there
and then, without waking the loop's task (a turn of the event loop and a
task step less per reply; with small files, three a file).  Anything
unusual - a bad length, an unknown id - is left in the buffer for the
loop, which reports it as before.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any, Protocol

from .replies import Handler
from .wire import (
    FXP_DATA,
    HEAD,
    INCOMPLETE,
    MAX_MSG_LENGTH,
    U32,
    ProtocolError,
    SFTPError,
    StatusError,
    lost_error,
)


class BufferedReplies(Protocol):
    """A reader whose buffer :meth:`ReplySide._dispatch_buffered` reads."""

    def buffered(self) -> int:
        """Bytes buffered."""

    def peek(self, n: int) -> bytes:
        """The first *n* buffered bytes (n <= buffered), left in place."""

    def take(self, n: int) -> bytes:
        """Remove and return the first *n* buffered bytes (0 < n)."""


class ReplySide:
    """Resolve an SFTP session's requests with their replies.

    The session (the subclass) keeps ``_pending`` (request id: future,
    handler, argument), ``_late`` (see ``on_late_reply``), ``_closed``
    and ``_idle`` (its loop waits for the next reply's length), and ends
    itself in ``_shutdown``.
    """

    _pending: dict[int, tuple[asyncio.Future[Any], Handler, Any]]
    _late: dict[asyncio.Future[Any], Callable[[Any], None]]
    _closed: bool
    _idle: bool

    def _shutdown(self, reason: SFTPError, lost: bool) -> None:
        """End the session with *reason* (the session defines it)."""
        raise NotImplementedError

    def _resolve(self, ptype: int, rid: int, body: bytes) -> None:
        """Give reply *rid* (type *ptype*, *body* after the id) to its
        request; raise ProtocolError for what breaks the protocol."""
        entry = self._pending.pop(rid, None)
        if entry is None:
            raise ProtocolError(f"Unexpected reply {rid}")
        fut, handler, arg = entry
        if fut.done():          # the caller cancelled
            late = self._late.pop(fut, None) if self._late else None
            if late is not None:
                try:
                    late(handler(ptype, body, arg))
                except StatusError:     # nothing was made
                    pass
                except (struct.error, IndexError) as exc:
                    raise ProtocolError(INCOMPLETE) from exc
            return
        try:
            fut.set_result(handler(ptype, body, arg))
        except StatusError as exc:
            fut.set_exception(exc)
        except ProtocolError as exc:
            fut.set_exception(exc)
            fut.exception()
            raise
        except (struct.error, IndexError) as exc:
            fut.set_exception(ProtocolError(INCOMPLETE))
            fut.exception()
            raise ProtocolError(INCOMPLETE) from exc

    def _dispatch_buffered(self, reader: BufferedReplies) -> None:
        """Resolve the whole replies in *reader*'s buffer, if the loop
        waits between replies (see the module docstring)."""
        pending = self._pending
        while self._idle and not self._closed:
            size = reader.buffered()
            if size < 9:
                return
            length, ptype, rid = HEAD.unpack(reader.peek(9))
            if length > MAX_MSG_LENGTH or length < 5 \
                    or size < 4 + length or rid not in pending:
                return              # the loop's to report, or to wait
            if ptype == FXP_DATA and length >= 9:
                (dlen,) = U32.unpack_from(reader.peek(13), 9)
                if dlen > length - 9:
                    return
                reader.take(13)
                body = reader.take(dlen) if dlen else b""
                if length - 9 - dlen:
                    reader.take(length - 9 - dlen)
            else:
                reader.take(9)
                body = reader.take(length - 5) if length > 5 else b""
            try:
                self._resolve(ptype, rid, body)
            except SFTPError as exc:
                self._shutdown(exc, lost=True)
            except Exception as exc:   # any failure is fatal
                self._shutdown(lost_error(exc), lost=True)
