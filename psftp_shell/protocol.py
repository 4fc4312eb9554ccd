"""An SFTP version 3 client over any pair of byte streams.

The same :class:`SFTPClient` runs over an SSH channel (asyncssh's
``SSHReader``/``SSHWriter``), over a subprocess's pipes (``-D``, ``-S``) or
over a socket.  It speaks draft-ietf-secsh-filexfer-02 plus OpenSSH's
``@openssh.com`` extensions, pipelines requests by id and reports errors
with the texts OpenSSH's sftp uses.

Every request gets a future; the receive loop parses each reply as the
request expects and resolves the future with the result, a
:class:`StatusError`, or - for anything that breaks the protocol - a
:class:`ProtocolError`.  Protocol errors and a lost transport are fatal:
the client closes and every pending request fails.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .attrs import Attrs

# Packet types.
FXP_INIT = 1
FXP_VERSION = 2
FXP_OPEN = 3
FXP_CLOSE = 4
FXP_READ = 5
FXP_WRITE = 6
FXP_LSTAT = 7
FXP_FSTAT = 8
FXP_SETSTAT = 9
FXP_FSETSTAT = 10
FXP_OPENDIR = 11
FXP_READDIR = 12
FXP_REMOVE = 13
FXP_MKDIR = 14
FXP_RMDIR = 15
FXP_REALPATH = 16
FXP_STAT = 17
FXP_RENAME = 18
FXP_READLINK = 19
FXP_SYMLINK = 20
FXP_STATUS = 101
FXP_HANDLE = 102
FXP_DATA = 103
FXP_NAME = 104
FXP_ATTRS = 105
FXP_EXTENDED = 200
FXP_EXTENDED_REPLY = 201

# Status codes.
FX_OK = 0
FX_EOF = 1
FX_NO_SUCH_FILE = 2
FX_PERMISSION_DENIED = 3
FX_FAILURE = 4
FX_BAD_MESSAGE = 5
FX_NO_CONNECTION = 6
FX_CONNECTION_LOST = 7
FX_OP_UNSUPPORTED = 8

# Open flags.
OPEN_READ = 0x01
OPEN_WRITE = 0x02
OPEN_APPEND = 0x04
OPEN_CREAT = 0x08
OPEN_TRUNC = 0x10
OPEN_EXCL = 0x20

# Attribute flags.
ATTR_SIZE = 0x01
ATTR_UIDGID = 0x02
ATTR_PERMISSIONS = 0x04
ATTR_ACMODTIME = 0x08
ATTR_EXTENDED = 0x80000000

PROTOCOL_VERSION = 3
MAX_MSG_LENGTH = 256 * 1024
"""The largest packet either side may send (OpenSSH's limit)."""

# Extensions OpenSSH's sftp uses, each with the one version it accepts.
KNOWN_EXTENSIONS: dict[str, str] = {
    "posix-rename@openssh.com": "1",
    "statvfs@openssh.com": "2",
    "fstatvfs@openssh.com": "2",
    "hardlink@openssh.com": "1",
    "fsync@openssh.com": "1",
    "lsetstat@openssh.com": "1",
    "limits@openssh.com": "1",
    "expand-path@openssh.com": "1",
    "copy-data": "1",
    "users-groups-by-id@openssh.com": "1",
}

_FX_TEXT = (
    "No error",
    "End of file",
    "No such file or directory",
    "Permission denied",
    "Failure",
    "Bad message",
    "No connection",
    "Connection lost",
    "Operation unsupported",
)

_TYPE_NAMES = {
    FXP_STATUS: "SSH2_FXP_STATUS",
    FXP_HANDLE: "SSH2_FXP_HANDLE",
    FXP_DATA: "SSH2_FXP_DATA",
    FXP_NAME: "SSH2_FXP_NAME",
    FXP_ATTRS: "SSH2_FXP_ATTRS",
    FXP_EXTENDED_REPLY: "SSH2_FXP_EXTENDED_REPLY",
}

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEAD = struct.Struct(">IBI")        # length, type, request id
_HEAD_STR = struct.Struct(">IBII")   # ... plus the handle's length
_OFF_LEN = struct.Struct(">QI")      # READ: offset, length
_INCOMPLETE = "Couldn't parse packet: incomplete message"
_TOO_LONG_HINT = ("Ensure the remote shell produces no output "
                  "for non-interactive sessions.")
_WRITE_SPLIT = 16 * 1024   # bigger WRITE payloads go out without a join


def fx2txt(code: int) -> str:
    """Return sftp's client-side text for a status code."""
    if 0 <= code < len(_FX_TEXT):
        return _FX_TEXT[code]
    return "Unknown status"


class SFTPError(Exception):
    """Root of the protocol layer's errors."""


class StatusError(SFTPError):
    """The server answered with a non-OK status.

    ``str(exc)`` is sftp's text for the code; :attr:`server_message` is
    what the server said (sftp prints it for realpath failures).
    """

    def __init__(self, code: int, server_message: str = "") -> None:
        super().__init__(fx2txt(code))
        self.code = code
        self.server_message = server_message

    @property
    def text(self) -> str:
        """Return sftp's client-side text for :attr:`code`."""
        return fx2txt(self.code)


class ProtocolError(SFTPError):
    """A malformed or unexpected packet (fatal, like sftp's ``fatal()``).

    A message of more than one line means sftp logs one line each.
    """


class ConnectionLost(SFTPError):
    """The transport closed; every pending request fails with this."""


@dataclass(slots=True)
class Name:
    """One entry of a NAME reply (readdir, realpath, readlink)."""

    filename: str
    longname: str
    attrs: Attrs


@dataclass(slots=True)
class StatVFS:
    """The reply to ``statvfs@openssh.com`` / ``fstatvfs@openssh.com``."""

    bsize: int
    frsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    favail: int
    fsid: int
    flag: int
    namemax: int


@dataclass(slots=True)
class Limits:
    """The reply to ``limits@openssh.com`` (0 means no limit)."""

    max_packet_len: int
    max_read_len: int
    max_write_len: int
    max_open_handles: int


class ByteReader(Protocol):
    """The receive side of a transport."""

    async def readexactly(self, n: int) -> bytes:
        """Read *n* bytes; raise IncompleteReadError at EOF."""


class ByteWriter(Protocol):
    """The send side of a transport."""

    def write(self, data: bytes) -> None:
        """Queue *data* for sending."""

    async def drain(self) -> None:
        """Wait until the send buffer is below its high-water mark."""

    def close(self) -> None:
        """Close the transport."""


# ---------------------------------------------------------------- encoding

def encode_path(path: str) -> bytes:
    """Return *path* as it goes on the wire (UTF-8, surrogateescape)."""
    return path.encode("utf-8", "surrogateescape")


def decode_path(data: bytes) -> str:
    """Return a wire name as ``str`` (UTF-8, surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def _string(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _pstring(path: str) -> bytes:
    return _string(encode_path(path))


def _pair(a: int | None, b: int | None, what: str) -> bool:
    if (a is None) != (b is None):
        raise ValueError(f"{what} must be set together")
    return a is not None


def encode_attrs(attrs: Attrs) -> bytes:
    """Return the v3 ATTRS encoding of the fields that are set.

    uid/gid and atime/mtime travel in pairs: setting only one of a pair
    raises :class:`ValueError`.
    """
    flags = 0
    parts = [b""]
    if attrs.size is not None:
        flags |= ATTR_SIZE
        parts.append(_U64.pack(attrs.size))
    if _pair(attrs.uid, attrs.gid, "uid and gid"):
        flags |= ATTR_UIDGID
        parts.append(struct.pack(">II", attrs.uid, attrs.gid))
    if attrs.permissions is not None:
        flags |= ATTR_PERMISSIONS
        parts.append(_U32.pack(attrs.permissions))
    if _pair(attrs.atime, attrs.mtime, "atime and mtime"):
        flags |= ATTR_ACMODTIME
        parts.append(struct.pack(">II", attrs.atime, attrs.mtime))
    parts[0] = _U32.pack(flags)
    return b"".join(parts)


class _Cursor:
    """Sequential reader over a packet body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def u32(self) -> int:
        (value,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        (value,) = _U64.unpack_from(self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        n = self.u32()
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolError(_INCOMPLETE)
        value = self.data[self.pos:end]
        self.pos = end
        return value

    def text(self) -> str:
        return decode_path(self.string())

    def attrs(self) -> Attrs:
        flags = self.u32()
        attrs = Attrs()
        if flags & ATTR_SIZE:
            attrs.size = self.u64()
        if flags & ATTR_UIDGID:
            attrs.uid = self.u32()
            attrs.gid = self.u32()
        if flags & ATTR_PERMISSIONS:
            attrs.permissions = self.u32()
        if flags & ATTR_ACMODTIME:
            attrs.atime = self.u32()
            attrs.mtime = self.u32()
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.string()
                self.string()
        return attrs

    def name(self) -> Name:
        filename = self.text()
        longname = self.text()
        return Name(filename, longname, self.attrs())


def decode_attrs(data: bytes) -> Attrs:
    """Parse a v3 ATTRS encoding (extended pairs are skipped)."""
    return _Cursor(data).attrs()


# ---------------------------------------------------------------- replies
#
# A reply handler gets (packet type, body after the id, request argument)
# and returns the request's result or raises StatusError/ProtocolError.
# DATA bodies arrive as the bare data (the loop strips the length).

_Handler = Callable[[int, bytes, Any], Any]


def _status_error(body: bytes) -> StatusError:
    cur = _Cursor(body)
    code = cur.u32()
    message = ""
    if cur.pos < len(body):     # some old servers send only the code
        message = cur.text()
    return StatusError(code, message)


def _unexpected(expected: int, got: int) -> ProtocolError:
    return ProtocolError(
        f"Expected {_TYPE_NAMES.get(expected, 'SSH2_FXP')}({expected}) "
        f"packet, got {got}")


def _on_raw(ptype: int, body: bytes, arg: Any) -> tuple[int, bytes]:
    if ptype == FXP_DATA:
        body = _string(body)
    return ptype, body


def _on_extended(ptype: int, body: bytes, expected: int) -> bytes | None:
    if ptype == FXP_STATUS:
        _on_status(ptype, body, None)
        return None
    if ptype != expected:
        raise _unexpected(expected, ptype)
    return _on_raw(ptype, body, None)[1]


def _on_status(ptype: int, body: bytes, arg: Any) -> None:
    if ptype != FXP_STATUS:
        raise _unexpected(FXP_STATUS, ptype)
    error = _status_error(body)
    if error.code != FX_OK:
        raise error


def _expect(ptype: int, body: bytes, expected: int) -> _Cursor:
    """Return a cursor on *body* if *ptype* is *expected*, else raise."""
    if ptype == expected:
        return _Cursor(body)
    if ptype == FXP_STATUS:
        raise _status_error(body)
    raise _unexpected(expected, ptype)


def _on_handle(ptype: int, body: bytes, arg: Any) -> bytes:
    return _expect(ptype, body, FXP_HANDLE).string()


def _on_attrs(ptype: int, body: bytes, arg: Any) -> Attrs:
    return _expect(ptype, body, FXP_ATTRS).attrs()


def _on_data(ptype: int, body: bytes, length: int) -> bytes:
    if ptype == FXP_DATA:
        if len(body) > length:
            raise ProtocolError("Received more data than asked for "
                                f"{len(body)} > {length}")
        return body
    if ptype == FXP_STATUS:
        error = _status_error(body)
        if error.code == FX_EOF:
            return b""
        raise error
    raise _unexpected(FXP_DATA, ptype)


def _on_names(ptype: int, body: bytes, arg: Any) -> list[Name] | None:
    if ptype == FXP_STATUS:
        error = _status_error(body)
        if error.code == FX_EOF:
            return None
        raise error
    cur = _expect(ptype, body, FXP_NAME)
    count = cur.u32()
    if count * 12 > len(body):      # each entry takes at least 12 bytes
        raise ProtocolError(_INCOMPLETE)
    return [cur.name() for _ in range(count)]


def _on_one_name(ptype: int, body: bytes, what: str) -> str:
    cur = _expect(ptype, body, FXP_NAME)
    count = cur.u32()
    if count != 1:
        raise ProtocolError(f"Got multiple names ({count}) from {what}")
    return cur.name().filename


def _on_u64s(ptype: int, body: bytes, count: int) -> list[int]:
    cur = _expect(ptype, body, FXP_EXTENDED_REPLY)
    return [cur.u64() for _ in range(count)]


def _names_list(data: bytes, count: int, what: str) -> list[str]:
    cur = _Cursor(data)
    names = [cur.text() for _ in range(count)]
    if cur.pos != len(data):
        raise ProtocolError(f"unexpected extra {what} data")
    return names


def _on_users_groups(ptype: int, body: bytes, counts: tuple[int, int]
                     ) -> tuple[list[str], list[str]]:
    cur = _expect(ptype, body, FXP_EXTENDED_REPLY)
    users = _names_list(cur.string(), counts[0], "username")
    groups = _names_list(cur.string(), counts[1], "groupname")
    return users, groups


def _too_long(length: int) -> ProtocolError:
    return ProtocolError(f"Received message too long {length}\n"
                         f"{_TOO_LONG_HINT}")


def _lost(exc: Exception) -> ConnectionLost:
    """Return the error for a transport that failed with *exc*.

    EOF, a reset and an SSH disconnect read "Connection closed", as sftp
    says when its ssh goes away; other I/O errors keep their reason.
    """
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return ConnectionLost(
            f"Couldn't read packet: {exc.strerror or exc}")
    return ConnectionLost("Connection closed")


def _copy_error(exc: SFTPError) -> SFTPError:
    """Return a fresh exception like *exc* (one instance per future)."""
    if isinstance(exc, StatusError):
        return StatusError(exc.code, exc.server_message)
    return type(exc)(*exc.args)


# ---------------------------------------------------------------- client

class SFTPClient:
    """An SFTP v3 client session over a reader/writer pair.

    :param on_lost: called with the error when the session ends for any
        reason other than :meth:`close` (transport died, protocol error)
    """

    def __init__(self, reader: ByteReader, writer: ByteWriter, *,
                 on_lost: Callable[[SFTPError], None] | None = None
                 ) -> None:
        self._reader = reader
        self._writer = writer
        self.on_lost = on_lost
        self.version = 0
        self.extensions: dict[str, str] = {}
        self._ext_pairs: set[tuple[str, str]] = set()
        self._next_id = 1
        self._pending: dict[int, tuple[asyncio.Future[Any], _Handler,
                                       Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
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

    async def __aenter__(self) -> SFTPClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Send INIT, read VERSION and start the receive loop."""
        if self._loop is not None:
            raise RuntimeError("SFTPClient.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._send(_U32.pack(5) + bytes([FXP_INIT])
                   + _U32.pack(PROTOCOL_VERSION))
        try:
            body = await self._read_version()
            self._parse_version(body)
        except SFTPError as exc:
            self._shutdown(exc, lost=False)
            raise
        self._task = self._loop.create_task(self._receive_loop())

    async def _read_version(self) -> bytes:
        if self._closed:
            assert self._reason is not None
            raise _copy_error(self._reason)
        try:
            (length,) = _U32.unpack(await self._reader.readexactly(4))
            if length > MAX_MSG_LENGTH:
                raise _too_long(length)
            if length == 0:
                raise ProtocolError(_INCOMPLETE)
            return await self._reader.readexactly(length)
        except SFTPError:
            raise
        except Exception as exc:
            raise _lost(exc) from exc

    def _parse_version(self, body: bytes) -> None:
        if body[0] != FXP_VERSION:
            raise ProtocolError(
                f"Invalid packet back from SSH2_FXP_INIT (type {body[0]})\n"
                "Couldn't initialise connection to server")
        cur = _Cursor(body, 1)
        try:
            self.version = cur.u32()
            while cur.pos < len(body):
                name = cur.text()
                value = cur.text()
                self.extensions[name] = value
                self._ext_pairs.add((name, value))
        except struct.error:
            raise ProtocolError(_INCOMPLETE) from None

    def has_extension(self, name: str) -> bool:
        """Return whether the server offers *name* in a usable version.

        The extensions sftp knows count only with the version sftp
        requires (:data:`KNOWN_EXTENSIONS`); any other name counts when it
        is advertised at all.
        """
        version = KNOWN_EXTENSIONS.get(name)
        if version is None:
            return name in self.extensions
        return (name, version) in self._ext_pairs

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
        for fut, _, _ in pending.values():
            if not fut.done():
                fut.set_exception(_copy_error(reason))
                fut.exception()     # reported once, via on_lost
        self._close_writer()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._done.set()
        if lost and self.on_lost is not None:
            self.on_lost(reason)

    def _close_writer(self) -> None:
        """Close the writer, sending EOF first where the stream can."""
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

    # ---- transport

    def _send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
        except Exception as exc:   # any failure is fatal
            self._shutdown(ConnectionLost(f"Couldn't send packet: {exc}"),
                           lost=True)

    async def drain(self) -> None:
        """Wait for the writer's buffer to drain (backpressure)."""
        if self._closed:
            assert self._reason is not None
            raise _copy_error(self._reason)
        try:
            await self._writer.drain()
        except Exception as exc:   # any failure is fatal
            self._shutdown(ConnectionLost("Connection closed"), lost=True)
            assert self._reason is not None
            raise _copy_error(self._reason) from exc

    async def _receive_loop(self) -> None:
        try:
            await self._receive()
        except asyncio.CancelledError:
            self._shutdown(ConnectionLost("Connection closed"), lost=False)
            raise
        except SFTPError as exc:
            self._shutdown(exc, lost=True)
        except Exception as exc:   # any failure is fatal
            self._shutdown(_lost(exc), lost=True)

    async def _receive(self) -> None:
        """Read replies forever, resolving each request's future."""
        readexactly = self._reader.readexactly
        pending = self._pending
        unpack_head = _HEAD.unpack
        while True:
            length, ptype, rid = unpack_head(await readexactly(9))
            if length > MAX_MSG_LENGTH:
                raise _too_long(length)
            if length < 5:
                raise ProtocolError(_INCOMPLETE)
            rest = length - 5
            if ptype == FXP_DATA and rest >= 4:
                body = await self._read_data(rest)
            elif rest:
                body = await readexactly(rest)
            else:
                body = b""
            entry = pending.pop(rid, None)
            if entry is None:
                raise ProtocolError(f"Unexpected reply {rid}")
            fut, handler, arg = entry
            if fut.done():          # the caller cancelled
                continue
            try:
                fut.set_result(handler(ptype, body, arg))
            except StatusError as exc:
                fut.set_exception(exc)
            except ProtocolError as exc:
                fut.set_exception(exc)
                fut.exception()
                raise
            except (struct.error, IndexError) as exc:
                fut.set_exception(ProtocolError(_INCOMPLETE))
                fut.exception()
                raise ProtocolError(_INCOMPLETE) from exc

    async def _read_data(self, rest: int) -> bytes:
        """Read a DATA body's string straight into one bytes object."""
        readexactly = self._reader.readexactly
        (dlen,) = _U32.unpack(await readexactly(4))
        if dlen > rest - 4:
            raise ProtocolError(_INCOMPLETE)
        data = await readexactly(dlen) if dlen else b""
        if rest - 4 - dlen:
            await readexactly(rest - 4 - dlen)
        return data

    # ---- requests

    def _new_future(self) -> asyncio.Future[Any]:
        if self._loop is None:
            raise RuntimeError("SFTPClient.start() has not been called")
        fut = self._loop.create_future()
        if self._closed:
            assert self._reason is not None
            fut.set_exception(_copy_error(self._reason))
            fut.exception()
        return fut

    def _submit(self, ptype: int, payload: bytes, handler: _Handler,
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
        self._send(_HEAD.pack(length, ptype, rid) + payload)
        return fut

    def request(self, ptype: int, payload: bytes
                ) -> asyncio.Future[tuple[int, bytes]]:
        """Send a request now; the future gets (reply type, reply body).

        The body is what follows the request id.  Status replies are not
        interpreted: this is the escape hatch for callers that parse.
        """
        return self._submit(ptype, payload, _on_raw)

    def read_nowait(self, handle: bytes, offset: int, length: int
                    ) -> asyncio.Future[bytes]:
        """Send a READ now; the future gets the data (b"" at EOF)."""
        fut = self._new_future()
        if fut.done():
            return fut
        rid = self._next_id
        self._next_id = (rid + 1) & 0xFFFFFFFF
        self._pending[rid] = (fut, _on_data, length)
        hlen = len(handle)
        self._send(_HEAD_STR.pack(21 + hlen, FXP_READ, rid, hlen) + handle
                   + _OFF_LEN.pack(offset, length))
        return fut

    def write_nowait(self, handle: bytes, offset: int,
                     data: bytes | bytearray | memoryview
                     ) -> asyncio.Future[None]:
        """Send a WRITE now; the future completes when it is acknowledged.

        Large payloads are passed to the writer as they are, after a small
        header, so the data is not copied here.
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
        self._pending[rid] = (fut, _on_status, None)
        head = b"".join((_HEAD_STR.pack(length, FXP_WRITE, rid, hlen),
                         handle, _U64.pack(offset), _U32.pack(dlen)))
        if dlen > _WRITE_SPLIT:
            self._send(head)
            self._send(data)    # type: ignore[arg-type]
        else:
            self._send(head + bytes(data))
        return fut

    async def _call(self, ptype: int, payload: bytes, handler: _Handler,
                    arg: Any = None) -> Any:
        return await self._submit(ptype, payload, handler, arg)

    async def _extended_call(self, name: str, payload: bytes,
                             handler: _Handler, arg: Any = None) -> Any:
        return await self._call(FXP_EXTENDED, _pstring(name) + payload,
                                handler, arg)

    # ---- paths and attributes

    async def realpath(self, path: str) -> str:
        """Canonicalise *path* on the server (REALPATH)."""
        return str(await self._call(FXP_REALPATH, _pstring(path),
                                    _on_one_name, "SSH2_FXP_REALPATH"))

    async def stat(self, path: str) -> Attrs:
        """Return the attributes of *path*, following symlinks."""
        return await self._call(FXP_STAT, _pstring(path), _on_attrs)

    async def lstat(self, path: str) -> Attrs:
        """Return the attributes of *path* itself."""
        return await self._call(FXP_LSTAT, _pstring(path), _on_attrs)

    async def fstat(self, handle: bytes) -> Attrs:
        """Return the attributes of an open handle."""
        return await self._call(FXP_FSTAT, _string(handle), _on_attrs)

    async def setstat(self, path: str, attrs: Attrs) -> None:
        """Set the attributes of *path* that are not None."""
        await self._call(FXP_SETSTAT, _pstring(path) + encode_attrs(attrs),
                         _on_status)

    async def fsetstat(self, handle: bytes, attrs: Attrs) -> None:
        """Set the attributes of an open handle that are not None."""
        await self._call(FXP_FSETSTAT, _string(handle) + encode_attrs(attrs),
                         _on_status)

    # ---- files

    async def open(self, path: str, pflags: int,
                   attrs: Attrs | None = None) -> bytes:
        """Open a file (OPEN_* flags); return its handle."""
        payload = b"".join((_pstring(path), _U32.pack(pflags),
                            encode_attrs(attrs or Attrs())))
        return await self._call(FXP_OPEN, payload, _on_handle)

    async def close_handle(self, handle: bytes) -> None:
        """Close a file or directory handle."""
        await self._call(FXP_CLOSE, _string(handle), _on_status)

    async def read(self, handle: bytes, offset: int, length: int) -> bytes:
        """Read up to *length* bytes at *offset*; b"" at end of file."""
        return await self.read_nowait(handle, offset, length)

    async def write(self, handle: bytes, offset: int,
                    data: bytes | bytearray | memoryview) -> None:
        """Write *data* at *offset*."""
        await self.write_nowait(handle, offset, data)

    # ---- directories

    async def opendir(self, path: str) -> bytes:
        """Open a directory for reading; return its handle."""
        return await self._call(FXP_OPENDIR, _pstring(path), _on_handle)

    async def readdir(self, handle: bytes) -> list[Name] | None:
        """Return the next batch of entries, or None at the end."""
        return await self._call(FXP_READDIR, _string(handle), _on_names)

    async def listdir(self, path: str) -> list[Name]:
        """Return every entry of a directory, in server order."""
        handle = await self.opendir(path)
        entries: list[Name] = []
        try:
            while (batch := await self.readdir(handle)) is not None:
                entries.extend(batch)
        finally:
            if not self._closed:
                await self.close_handle(handle)
        return entries

    async def remove(self, path: str) -> None:
        """Remove a file."""
        await self._call(FXP_REMOVE, _pstring(path), _on_status)

    async def mkdir(self, path: str, attrs: Attrs | None = None) -> None:
        """Create a directory."""
        await self._call(FXP_MKDIR,
                         _pstring(path) + encode_attrs(attrs or Attrs()),
                         _on_status)

    async def rmdir(self, path: str) -> None:
        """Remove an empty directory."""
        await self._call(FXP_RMDIR, _pstring(path), _on_status)

    async def rename(self, old: str, new: str) -> None:
        """Rename with plain RENAME (fails if *new* exists on OpenSSH)."""
        await self._call(FXP_RENAME, _pstring(old) + _pstring(new),
                         _on_status)

    async def readlink(self, path: str) -> str:
        """Return the target of a symbolic link."""
        return str(await self._call(FXP_READLINK, _pstring(path),
                                    _on_one_name, "SSH_FXP_READLINK"))

    async def symlink(self, target: str, linkpath: str) -> None:
        """Create *linkpath* pointing at *target* (OpenSSH's wire order)."""
        await self._call(FXP_SYMLINK, _pstring(target) + _pstring(linkpath),
                         _on_status)

    # ---- extensions (callers check has_extension first, as sftp does)

    async def extended(self, name: str, payload: bytes, *,
                       reply: int = FXP_EXTENDED_REPLY) -> bytes | None:
        """Send an EXTENDED request; return the reply body, None for OK.

        *reply* is the packet type the extension answers with (e.g.
        ``FXP_NAME`` for ``expand-path@openssh.com``); the body is what
        follows the request id.
        """
        result: bytes | None = await self._extended_call(
            name, payload, _on_extended, reply)
        return result

    async def posix_rename(self, old: str, new: str) -> None:
        """Rename with POSIX semantics (replaces *new*)."""
        await self._extended_call("posix-rename@openssh.com",
                                  _pstring(old) + _pstring(new), _on_status)

    async def statvfs(self, path: str) -> StatVFS:
        """Return file system statistics for *path*."""
        values = await self._extended_call("statvfs@openssh.com",
                                           _pstring(path), _on_u64s, 11)
        return StatVFS(*values)

    async def fstatvfs(self, handle: bytes) -> StatVFS:
        """Return file system statistics for an open handle."""
        values = await self._extended_call("fstatvfs@openssh.com",
                                           _string(handle), _on_u64s, 11)
        return StatVFS(*values)

    async def hardlink(self, old: str, new: str) -> None:
        """Create a hard link *new* to the existing file *old*."""
        await self._extended_call("hardlink@openssh.com",
                                  _pstring(old) + _pstring(new), _on_status)

    async def fsync(self, handle: bytes) -> None:
        """Flush an open file to stable storage on the server."""
        await self._extended_call("fsync@openssh.com", _string(handle),
                                  _on_status)

    async def lsetstat(self, path: str, attrs: Attrs) -> None:
        """Like :meth:`setstat` but does not follow a final symlink."""
        await self._extended_call("lsetstat@openssh.com",
                                  _pstring(path) + encode_attrs(attrs),
                                  _on_status)

    async def limits(self) -> Limits:
        """Return the server's packet, read, write and handle limits."""
        values = await self._extended_call("limits@openssh.com", b"",
                                           _on_u64s, 4)
        return Limits(*values)

    async def copy_data(self, read_handle: bytes, read_offset: int,
                        length: int, write_handle: bytes,
                        write_offset: int) -> None:
        """Copy on the server; *length* 0 copies up to end of file."""
        payload = b"".join((_string(read_handle),
                            _U64.pack(read_offset), _U64.pack(length),
                            _string(write_handle), _U64.pack(write_offset)))
        await self._extended_call("copy-data", payload, _on_status)

    async def users_groups_by_id(self, uids: list[int], gids: list[int]
                                 ) -> tuple[list[str], list[str]]:
        """Return user and group names, "" where the server has none."""
        payload = (_string(b"".join(_U32.pack(u) for u in uids))
                   + _string(b"".join(_U32.pack(g) for g in gids)))
        result: tuple[list[str], list[str]] = await self._extended_call(
            "users-groups-by-id@openssh.com", payload, _on_users_groups,
            (len(uids), len(gids)))
        return result
