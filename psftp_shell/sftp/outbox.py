"""The send side of an SFTP session: coalescing packets into writes.

:class:`SendSide` is a base of :class:`~psftp_shell.sftp.request_core.
SFTPCore`: it queues the small packets of one event-loop turn and writes
them as one piece, writes big packets at once, and waits for the
writer's buffer to drain (backpressure).  A failed write ends the
session through the core's ``_shutdown``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .wire import ConnectionLost, SFTPError, copy_error

_COALESCE = 16 * 1024   # smaller packets wait for the end of the turn


class ByteWriter(Protocol):
    """The send side of a transport."""

    def write(self, data: bytes) -> None:
        """Queue *data* for sending."""

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark."""

    def close(self) -> None:
        """Close the transport."""


class SendSide:
    """Queue, coalesce and write an SFTP session's packets.

    The session (the subclass) sets ``_loop`` before the first packet,
    keeps ``_closed`` and ``_reason``, and ends itself in ``_shutdown``.
    """

    _loop: asyncio.AbstractEventLoop | None
    _closed: bool
    _reason: SFTPError | None

    def __init__(self, writer: ByteWriter) -> None:
        self._writer = writer
        self._outbox: list[bytes] = []
        self._outbox_size = 0

    def _shutdown(self, reason: SFTPError, lost: bool) -> None:
        """End the session with *reason* (the session defines it)."""
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        """Queue one packet; the queue goes out at the end of this turn.

        Small requests made in one turn of the event loop (READs as
        replies come in) leave in one write: over SSH that is one packet
        and one syscall instead of several.  Big packets go at once.
        """
        if len(data) >= _COALESCE:
            self._flush()
            self._write(data)
            return
        outbox = self._outbox
        if not outbox:
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        outbox.append(data)
        self._outbox_size += len(data)
        if self._outbox_size >= _COALESCE:
            self._flush()

    def _send_two(self, head: bytes, data: bytes | bytearray | memoryview
                  ) -> None:
        """Send one packet of *head* and then *data*: a writer with a
        ``write_two`` takes the two (no copy of a big WRITE's data: it
        may wait for the window, so only immutable ``bytes``), others get
        one piece, as :meth:`_send`."""
        two = getattr(self._writer, "write_two", None)
        if two is None or type(data) is not bytes or len(data) < _COALESCE:
            self._send(b"".join((head, data)))
            return
        self._flush()
        try:
            two(head, data)
        except ConnectionError:     # the channel closed: it is lost
            self._shutdown(ConnectionLost("Connection closed"), lost=True)
        except Exception as exc:   # any failure is fatal
            self._shutdown(ConnectionLost(f"Couldn't send packet: {exc}"),
                           lost=True)

    def _take_outbox(self) -> bytes:
        """Empty the queue of small packets; return them as one piece."""
        outbox = self._outbox
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        outbox.clear()
        self._outbox_size = 0
        return data

    def _flush(self) -> None:
        """Write the queued packets, as one piece."""
        if self._outbox:
            data = self._take_outbox()
            if not self._closed:
                self._write(data)

    def _flush_on_close(self) -> None:
        """Send what is queued before the writer closes, if it can."""
        if self._outbox:
            data = self._take_outbox()
            try:
                self._writer.write(data)
            except Exception:   # closing anyway
                pass

    def _write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
        except ConnectionError:     # the channel closed: it is lost
            self._shutdown(ConnectionLost("Connection closed"), lost=True)
        except Exception as exc:   # any failure is fatal
            self._shutdown(ConnectionLost(f"Couldn't send packet: {exc}"),
                           lost=True)

    def _close_writer(self) -> None:
        """Close the writer, sending EOF first where the stream can."""
        self._flush_on_close()
        writer: Any = self._writer
        try:
            can_eof = getattr(writer, "can_write_eof", None)
            if can_eof is not None and can_eof():
                writer.write_eof()
        except Exception:   # closing anyway
            pass
        try:
            writer.close()
        except Exception:   # already closed or broken
            pass

    async def drain(self) -> None:
        """Wait for the writer's buffer to drain (backpressure)."""
        self._flush()
        if self._closed:
            assert self._reason is not None
            raise copy_error(self._reason)
        try:
            await self._writer.drain()
        except Exception as exc:   # any failure is fatal
            self._shutdown(ConnectionLost("Connection closed"), lost=True)
            assert self._reason is not None
            raise copy_error(self._reason) from exc
