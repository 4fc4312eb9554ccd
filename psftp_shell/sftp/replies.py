"""Parsers for SFTP replies, one per kind of request.

A reply handler gets (packet type, body after the id, request argument)
and returns the request's result or raises StatusError/ProtocolError.
DATA bodies arrive as the bare data (the receive loop strips the length).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .attrs import Attrs
from .wire import (
    FX_EOF,
    FX_OK,
    FXP_ATTRS,
    FXP_DATA,
    FXP_EXTENDED_REPLY,
    FXP_HANDLE,
    FXP_NAME,
    FXP_STATUS,
    INCOMPLETE,
    U32,
    Cursor,
    Name,
    ProtocolError,
    StatusError,
    pack_string,
)

_TYPE_NAMES = {
    FXP_STATUS: "SSH2_FXP_STATUS",
    FXP_HANDLE: "SSH2_FXP_HANDLE",
    FXP_DATA: "SSH2_FXP_DATA",
    FXP_NAME: "SSH2_FXP_NAME",
    FXP_ATTRS: "SSH2_FXP_ATTRS",
    FXP_EXTENDED_REPLY: "SSH2_FXP_EXTENDED_REPLY",
}

Handler = Callable[[int, bytes, Any], Any]


def status_error(body: bytes) -> StatusError:
    """Return the StatusError a STATUS body carries."""
    cur = Cursor(body)
    code = cur.u32()
    message = ""
    if cur.pos < len(body):     # some old servers send only the code
        message = cur.text()
    return StatusError(code, message)


def _unexpected(expected: int, got: int) -> ProtocolError:
    return ProtocolError(
        f"Expected {_TYPE_NAMES.get(expected, 'SSH2_FXP')}({expected}) "
        f"packet, got {got}")


def on_raw(ptype: int, body: bytes, arg: Any) -> tuple[int, bytes]:
    """Return (type, body) uninterpreted (DATA keeps its length)."""
    if ptype == FXP_DATA:
        body = pack_string(body)
    return ptype, body


def on_extended(ptype: int, body: bytes, expected: int) -> bytes | None:
    """Return an extended reply body of the expected type."""
    if ptype == FXP_STATUS:
        on_status(ptype, body, None)
        return None
    if ptype != expected:
        raise _unexpected(expected, ptype)
    return on_raw(ptype, body, None)[1]


_OK_CODE = U32.pack(FX_OK)


def on_status(ptype: int, body: bytes, arg: Any) -> None:
    """Return None for an OK status; raise for anything else.

    An OK status's message is not parsed (sftp's ``get_status`` reads
    only the code): most replies of a put are OKs, and parsing each into
    an exception that is then dropped cost several microseconds apiece.
    """
    if ptype != FXP_STATUS:
        raise _unexpected(FXP_STATUS, ptype)
    if body[:4] != _OK_CODE:
        raise status_error(body)


def _expect(ptype: int, body: bytes, expected: int) -> Cursor:
    """Return a cursor on *body* if *ptype* is *expected*, else raise."""
    if ptype == expected:
        return Cursor(body)
    if ptype == FXP_STATUS:
        raise status_error(body)
    raise _unexpected(expected, ptype)


def on_handle(ptype: int, body: bytes, arg: Any) -> bytes:
    """Return the handle of a HANDLE reply."""
    return _expect(ptype, body, FXP_HANDLE).string()


def on_attrs(ptype: int, body: bytes, arg: Any) -> Attrs:
    """Return the attributes of an ATTRS reply."""
    return _expect(ptype, body, FXP_ATTRS).attrs()


def on_data(ptype: int, body: bytes, length: int) -> bytes:
    """Return the data of a DATA reply (b"" at end of file).

    An empty DATA is a broken server, not an end of file: taken as one,
    it made a download end early and report success (and OpenSSH 9.2's
    sftp re-requested forever); OpenSSH 10.4 ends the session on it.
    """
    if ptype == FXP_DATA:
        if len(body) > length:
            raise ProtocolError("Received more data than asked for "
                                f"{len(body)} > {length}")
        if not body and length:
            raise ProtocolError("server sent zero data length")
        return body
    if ptype == FXP_STATUS:
        error = status_error(body)
        if error.code == FX_EOF:
            return b""
        raise error
    raise _unexpected(FXP_DATA, ptype)


def on_names(ptype: int, body: bytes, arg: Any) -> list[Name] | None:
    """Return a NAME reply's entries (None at end of directory)."""
    if ptype == FXP_STATUS:
        error = status_error(body)
        if error.code == FX_EOF:
            return None
        raise error
    cur = _expect(ptype, body, FXP_NAME)
    count = cur.u32()
    if count * 12 > len(body):      # each entry takes at least 12 bytes
        raise ProtocolError(INCOMPLETE)
    return [cur.name() for _ in range(count)]


def on_one_name(ptype: int, body: bytes, what: str) -> str:
    """Return the single filename of a NAME reply."""
    cur = _expect(ptype, body, FXP_NAME)
    count = cur.u32()
    if count != 1:
        raise ProtocolError(f"Got multiple names ({count}) from {what}")
    return cur.name().filename


def on_u64s(ptype: int, body: bytes, count: int) -> list[int]:
    """Return the uint64 values of an extended reply."""
    cur = _expect(ptype, body, FXP_EXTENDED_REPLY)
    return [cur.u64() for _ in range(count)]


def _names_list(data: bytes, count: int, what: str) -> list[str]:
    cur = Cursor(data)
    names = [cur.text() for _ in range(count)]
    if cur.pos != len(data):
        raise ProtocolError(f"unexpected extra {what} data")
    return names


def on_users_groups(ptype: int, body: bytes, counts: tuple[int, int]
                    ) -> tuple[list[str], list[str]]:
    """Return the user and group names of the reply."""
    cur = _expect(ptype, body, FXP_EXTENDED_REPLY)
    users = _names_list(cur.string(), counts[0], "username")
    groups = _names_list(cur.string(), counts[1], "groupname")
    return users, groups


