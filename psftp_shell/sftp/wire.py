"""SFTP version 3 on the wire: constants, records, errors, encoding.

Packet types, status codes and flags of draft-ietf-secsh-filexfer-02,
the texts OpenSSH's sftp prints for status codes, the error classes of the
protocol layer, and the encoding of strings, paths and attributes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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

U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
HEAD = struct.Struct(">IBI")        # length, type, request id
HEAD_STR = struct.Struct(">IBII")   # ... plus the handle's length
OFF_LEN = struct.Struct(">QI")      # READ: offset, length
INCOMPLETE = "Couldn't parse packet: incomplete message"
INVALID = "Couldn't parse packet: invalid format"


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

    @property
    def said(self) -> str:
        """What the server said, else sftp's text (realpath's message)."""
        return self.server_message or self.text


class ProtocolError(SFTPError):
    """A malformed or unexpected packet (fatal, like sftp's ``fatal()``).

    A message of more than one line means sftp logs one line each.
    """


class ConnectionLost(SFTPError):
    """The transport closed; every pending request fails with this."""


_TOO_LONG_HINT = ("Ensure the remote shell produces no output "
                  "for non-interactive sessions.")


def too_long(length: int) -> ProtocolError:
    """Return the error for a received packet longer than allowed."""
    return ProtocolError(f"Received message too long {length}\n"
                         f"{_TOO_LONG_HINT}")


def lost_error(exc: Exception) -> ConnectionLost:
    """Return the error for a transport that failed with *exc*.

    EOF, a reset and an SSH disconnect read "Connection closed", as sftp
    says when its ssh goes away; other I/O errors keep their reason.
    """
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return ConnectionLost(
            f"Couldn't read packet: {exc.strerror or exc}")
    return ConnectionLost("Connection closed")


def copy_error(exc: SFTPError) -> SFTPError:
    """Return a fresh exception like *exc* (one instance per future)."""
    if isinstance(exc, StatusError):
        return StatusError(exc.code, exc.server_message)
    return type(exc)(*exc.args)


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



# ---------------------------------------------------------------- encoding

def encode_path(path: str) -> bytes:
    """Return *path* as it goes on the wire (UTF-8, surrogateescape)."""
    return path.encode("utf-8", "surrogateescape")


def decode_path(data: bytes) -> str:
    """Return a wire name as ``str`` (UTF-8, surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def pack_string(data: bytes) -> bytes:
    """Return *data* as an SFTP string (uint32 length, then the bytes)."""
    return U32.pack(len(data)) + data


def pack_path(path: str) -> bytes:
    """Return *path* as an SFTP string."""
    return pack_string(encode_path(path))


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
        parts.append(U64.pack(attrs.size))
    if _pair(attrs.uid, attrs.gid, "uid and gid"):
        flags |= ATTR_UIDGID
        parts.append(struct.pack(">II", attrs.uid, attrs.gid))
    if attrs.permissions is not None:
        flags |= ATTR_PERMISSIONS
        parts.append(U32.pack(attrs.permissions))
    if _pair(attrs.atime, attrs.mtime, "atime and mtime"):
        flags |= ATTR_ACMODTIME
        parts.append(struct.pack(">II", attrs.atime, attrs.mtime))
    parts[0] = U32.pack(flags)
    return b"".join(parts)


class Cursor:
    """Sequential reader over a packet body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def u32(self) -> int:
        (value,) = U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        (value,) = U64.unpack_from(self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        n = self.u32()
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolError(INCOMPLETE)
        value = self.data[self.pos:end]
        self.pos = end
        return value

    def text(self) -> str:
        return decode_path(self.string())

    def cstring(self) -> str:
        """A string that must hold no NUL, as sftp's ``sshbuf_get_cstring``
        reads file names: a NUL could cut a name short on its way to the
        system, so sftp ends the session over it, and so does this."""
        value = self.string()
        if b"\0" in value:
            raise ProtocolError(INVALID)
        return decode_path(value)

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
        filename = self.cstring()
        longname = self.cstring()
        return Name(filename, longname, self.attrs())


def decode_attrs(data: bytes) -> Attrs:
    """Parse a v3 ATTRS encoding (extended pairs are skipped)."""
    return Cursor(data).attrs()

