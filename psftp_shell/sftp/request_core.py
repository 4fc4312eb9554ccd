"""The request/response machinery of an SFTP v3 client session.

:class:`SFTPCore` runs over any pair of byte streams: an SSH channel
(asyncssh's ``SSHReader``/``SSHWriter``), a subprocess's pipes (``-D``,
``-S``) or a socket.  It sends INIT, pipelines requests by id and sends
the hot-path READ and WRITE requests itself.

Every request gets a future; the receive loop parses each reply as the
request expects and resolves the future with the result, a
:class:`StatusError`, or - for anything that breaks the protocol - a
:class:`ProtocolError`.  Protocol errors and a lost transport are fatal:
the client closes and every pending request fails.

The send side (coalescing packets into writes, backpressure) is the base
class in :mod:`.outbox`; reading and parsing VERSION is :mod:`.version`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any, Protocol, Self, cast

from .outbox import ByteWriter, SendSide
from .replies import Handler, on_data, on_raw, on_status
from .reply_side import ReplySide
from .version import has_extension, parse_version, read_version
from .wire import (
    FXP_DATA,
    FXP_EXTENDED,
    FXP_INIT,
    FXP_READ,
    FXP_WRITE,
    HEAD,
    HEAD_STR,
    INCOMPLETE,
    MAX_MSG_LENGTH,
    OFF_LEN,
    PROTOCOL_VERSION,
    U32,
    ConnectionLost,
    ProtocolError,
    SFTPError,
    copy_error,
    lost_error,
    pack_path,
    too_long,
)

_TYPE_ID = struct.Struct(">BI")     # a reply's type and request id
SPARE_BUFFERS = 4       # given-back DATA buffers kept for reuse


class ByteReader(Protocol):
    """The receive side of a transport.

    One that also has ``async read_into(dest: bytearray)`` (fill *dest*,
    IncompleteReadError at EOF; :class:`psftp_shell.ssh.pipe_io.
    PipeReader`) gets a DATA reply's data read into a buffer of its own.
    """

    async def readexactly(self, n: int) -> bytes:
        """Read *n* bytes; raise IncompleteReadError at EOF."""


def retrieved(fut: asyncio.Future[Any]) -> None:
    """Mark a future's outcome seen (a done callback), whoever awaits
    it: an unused failure is then never logged as unretrieved."""
    if not fut.cancelled():
        fut.exception()


class SFTPCore(SendSide, ReplySide):
    """An SFTP v3 session over a reader/writer pair: the machinery.

    :class:`psftp_shell.sftp.client.SFTPClient` adds the typed requests.

    :param on_lost: called with the error when the session ends for any
        reason other than :meth:`close` (transport died, protocol error)
    """

    def __init__(self, reader: ByteReader, writer: ByteWriter, *,
                 on_lost: Callable[[SFTPError], None] | None = None
                 ) -> None:
        super().__init__(writer)
        self._reader = reader
        self._read_into = getattr(reader, "read_into", None)
        self._spare: list[bytearray] = []     # see give_back()
        self.on_lost = on_lost
        self.version = 0
        self.extensions: dict[str, str] = {}
        self._ext_pairs: set[tuple[str, str]] = set()
        self._next_id = 1
        self._pending: dict[int, tuple[asyncio.Future[Any], Handler,
                                       Any]] = {}
        self._late: dict[asyncio.Future[Any], Callable[[Any], None]] = {}
        self._idle = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = False
        self._closed = False
        self._reason: SFTPError | None = None
        self._done = asyncio.Event()

    # ---- session

    @property
    def closed(self) -> bool:
        """Return whether the session has ended."""
        return self._closed

    @property
    def lost_reason(self) -> SFTPError | None:
        """Return why the session ended (None while open)."""
        return self._reason

    def oldest_pending(self) -> int | None:
        """The id of the oldest request still unanswered, if any."""
        return next(iter(self._pending), None)

    def give_up(self) -> None:
        """The peer is taken for gone: fail every pending request, as
        a lost connection does (tells :attr:`on_lost`)."""
        self._shutdown(ConnectionLost("Connection closed"), lost=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def begin(self) -> None:
        """Send INIT now; :meth:`start` then only waits for VERSION.

        Requests made between the two go out right behind INIT, so their
        answers come back with VERSION instead of a round trip later (a
        server answers requests in order, INIT first).  Their replies are
        read once VERSION has been.
        """
        if self._loop is not None:
            raise RuntimeError("SFTPClient.begin() called twice")
        self._loop = asyncio.get_running_loop()
        self._send(U32.pack(5) + bytes([FXP_INIT])
                   + U32.pack(PROTOCOL_VERSION))

    async def start(self) -> None:
        """Send INIT (unless :meth:`begin` did), read VERSION and start
        the receive loop."""
        if self._starting:
            raise RuntimeError("SFTPClient.start() called twice")
        self._starting = True
        if self._loop is None:
            self.begin()
        try:
            body = await self._read_version()
            self._parse_version(body)
        except SFTPError as exc:
            self._shutdown(exc, lost=False)
            raise
        self._task = asyncio.get_running_loop().create_task(
            self._receive_loop())
        dispatch_with = getattr(self._reader, "dispatch_with", None)
        if dispatch_with is not None:
            reader: Any = self._reader
            dispatch_with(lambda: self._dispatch_buffered(reader))

    async def _read_version(self) -> bytes:
        if self._closed:
            assert self._reason is not None
            raise copy_error(self._reason)
        return await read_version(self._reader.readexactly)

    def _parse_version(self, body: bytes) -> None:
        self.version = parse_version(body, self.extensions, self._ext_pairs)

    def has_extension(self, name: str) -> bool:
        """Return whether the server offers *name* in a usable version.

        The extensions sftp knows count only with the version sftp
        requires; any other name counts when it is advertised at all.
        """
        return has_extension(self.extensions, self._ext_pairs, name)

    async def close(self) -> None:
        """End the session: close the writer, fail pending requests."""
        self._shutdown(ConnectionLost("Connection closed"), lost=False)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])

    async def wait_closed(self) -> SFTPError:
        """Wait until the session ends; return why it ended."""
        await self._done.wait()
        assert self._reason is not None
        return self._reason

    def _shutdown(self, reason: SFTPError, lost: bool) -> None:
        """Mark the session closed and fail everything still pending."""
        if self._closed:
            return
        self._closed = True
        self._reason = reason
        pending, self._pending = self._pending, {}
        self._late.clear()
        for fut, _, _ in pending.values():
            if not fut.done():
                fut.set_exception(copy_error(reason))
                fut.exception()     # reported once, via on_lost
        self._close_writer()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._done.set()
        if lost and self.on_lost is not None:
            self.on_lost(reason)

    async def _receive_loop(self) -> None:
        try:
            await self._receive()
        except asyncio.CancelledError:
            self._shutdown(ConnectionLost("Connection closed"), lost=False)
            raise
        except SFTPError as exc:
            self._shutdown(exc, lost=True)
        except Exception as exc:   # any failure is fatal
            self._shutdown(lost_error(exc), lost=True)

    async def _receive(self) -> None:
        """Read replies forever, resolving each request's future."""
        readexactly = self._reader.readexactly
        unpack_u32 = U32.unpack
        unpack_type_id = _TYPE_ID.unpack_from
        while True:
            # The length is checked before anything else is awaited, as
            # sftp does: a bad length followed by silence must not hang.
            self._idle = True       # (see ReplySide._dispatch_buffered)
            (length,) = unpack_u32(await readexactly(4))
            self._idle = False
            if length > MAX_MSG_LENGTH:
                raise too_long(length)
            if length < 5:
                raise ProtocolError(INCOMPLETE)
            # Type, id and - for DATA - the data's length in one read.
            head = await readexactly(min(length, 9))
            ptype, rid = unpack_type_id(head, 0)
            if ptype == FXP_DATA and length >= 9:
                body = await self._read_data(head, length - 9)
            elif length > 9:
                body = head[5:] + await readexactly(length - 9)
            else:
                body = head[5:]
            self._resolve(ptype, rid, body)

    async def _read_data(self, head: bytes, rest: int) -> bytes:
        """Read a DATA reply's data straight into one buffer (with a
        reader's ``read_into``, one of its own: no copy on the way).

        *head* holds the type, id and data length; *rest* bytes follow.
        With ``read_into`` the data is a bytearray, typed as the bytes
        that READ's callers take: they only read it, and a caller that
        is done with it may :meth:`give_back` it.
        """
        readexactly = self._reader.readexactly
        (dlen,) = U32.unpack_from(head, 5)
        if dlen > rest:
            raise ProtocolError(INCOMPLETE)
        data = b""
        if dlen and self._read_into is not None:
            spare = self._spare
            buf = spare.pop() if spare and len(spare[-1]) == dlen \
                else bytearray(dlen)
            await self._read_into(buf)
            data = cast(bytes, buf)     # (see above)
        elif dlen:
            data = await readexactly(dlen)
        if rest - dlen:
            await readexactly(rest - dlen)
        return data

    def give_back(self, data: bytes) -> None:
        """*data*, a READ's result, is written out and dropped: its
        buffer may take a later reply's data.  A fresh buffer costs a
        page fault per 4 KiB; reused ones keep a download's memory warm.
        """
        if type(data) is bytearray and len(self._spare) < SPARE_BUFFERS:
            self._spare.append(data)

    # ---- requests

    def on_late_reply(self, fut: asyncio.Future[Any],
                      late: Callable[[Any], None] | None) -> None:
        """Should *fut* be cancelled before its reply, *late* gets what
        the reply brings (an OPEN's handle, to close); None: forget it."""
        if late is None:
            self._late.pop(fut, None)
        else:
            self._late[fut] = late

    def _new_future(self) -> asyncio.Future[Any]:
        if self._loop is None:
            raise RuntimeError("SFTPClient.start() has not been called")
        fut = self._loop.create_future()
        if self._closed:
            assert self._reason is not None
            fut.set_exception(copy_error(self._reason))
            fut.exception()
        return fut

    def _submit(self, ptype: int, payload: bytes, handler: Handler,
                arg: Any = None) -> asyncio.Future[Any]:
        fut = self._new_future()
        if fut.done():
            return fut
        length = 5 + len(payload)
        if length > MAX_MSG_LENGTH:
            raise ProtocolError(f"Outbound message too long {length}")
        rid = self._next_id
        self._next_id = (rid + 1) & 0xFFFFFFFF
        self._pending[rid] = (fut, handler, arg)
        self._send(HEAD.pack(length, ptype, rid) + payload)
        return fut

    def request(self, ptype: int, payload: bytes
                ) -> asyncio.Future[tuple[int, bytes]]:
        """Send a request now; the future gets (reply type, reply body).

        The body is what follows the request id.  Status replies are not
        interpreted: this is the escape hatch for callers that parse.
        """
        return self._submit(ptype, payload, on_raw)

    def read_nowait(self, handle: bytes, offset: int, length: int
                    ) -> asyncio.Future[bytes]:
        """Send a READ now; the future gets the data (b"" at EOF)."""
        fut = self._new_future()
        if fut.done():
            return fut
        rid = self._next_id
        self._next_id = (rid + 1) & 0xFFFFFFFF
        self._pending[rid] = (fut, on_data, length)
        hlen = len(handle)
        self._send(HEAD_STR.pack(21 + hlen, FXP_READ, rid, hlen) + handle
                   + OFF_LEN.pack(offset, length))
        return fut

    def write_nowait(self, handle: bytes, offset: int,
                     data: bytes | bytearray | memoryview
                     ) -> asyncio.Future[None]:
        """Send a WRITE now; the future completes when it is acknowledged.

        The header and the data go to the writer as one piece.
        """
        fut = self._new_future()
        if fut.done():
            return fut
        hlen = len(handle)
        dlen = len(data)
        length = 21 + hlen + dlen
        if length > MAX_MSG_LENGTH:
            raise ProtocolError(f"Outbound message too long {length}")
        rid = self._next_id
        self._next_id = (rid + 1) & 0xFFFFFFFF
        self._pending[rid] = (fut, on_status, None)
        # One write: a separate header would cost its own SSH packet
        # (and asyncssh's IGNORE packet before it) and syscalls.
        self._send_two(b"".join((HEAD_STR.pack(length, FXP_WRITE, rid, hlen),
                                 handle, OFF_LEN.pack(offset, dlen))), data)
        return fut

    async def _call(self, ptype: int, payload: bytes, handler: Handler,
                    arg: Any = None) -> Any:
        return await self._submit(ptype, payload, handler, arg)

    async def _extended_call(self, name: str, payload: bytes,
                             handler: Handler, arg: Any = None) -> Any:
        return await self._call(FXP_EXTENDED, pack_path(name) + payload,
                                handler, arg)

