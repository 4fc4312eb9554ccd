"""An SFTP session's first reply: reading and parsing VERSION.

The version the server speaks and the extensions it advertises (each
name with its version), and :func:`has_extension`, which counts the
extensions sftp knows only in the one version sftp accepts.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

from .wire import (
    FXP_VERSION,
    INCOMPLETE,
    KNOWN_EXTENSIONS,
    MAX_MSG_LENGTH,
    U32,
    Cursor,
    ProtocolError,
    SFTPError,
    lost_error,
    too_long,
)


async def read_version(readexactly: Callable[[int], Awaitable[bytes]]
                       ) -> bytes:
    """Read the first packet (VERSION, one hopes); return its body.

    Raises :class:`ProtocolError` for a bad length and ``ConnectionLost``
    for a transport that fails.
    """
    try:
        (length,) = U32.unpack(await readexactly(4))
        if length > MAX_MSG_LENGTH:
            raise too_long(length)
        if length == 0:
            raise ProtocolError(INCOMPLETE)
        return await readexactly(length)
    except SFTPError:
        raise
    except Exception as exc:
        raise lost_error(exc) from exc


def parse_version(body: bytes, extensions: dict[str, str],
                  ext_pairs: set[tuple[str, str]]) -> int:
    """Parse a VERSION body: return the version, add its extensions.

    *extensions* gets each name's last value, *ext_pairs* every (name,
    value) pair advertised.
    """
    if body[0] != FXP_VERSION:
        raise ProtocolError(
            f"Invalid packet back from SSH2_FXP_INIT (type {body[0]})\n"
            "Couldn't initialise connection to server")
    cur = Cursor(body, 1)
    try:
        version = cur.u32()
        while cur.pos < len(body):
            name = cur.text()
            value = cur.text()
            extensions[name] = value
            ext_pairs.add((name, value))
    except struct.error:
        raise ProtocolError(INCOMPLETE) from None
    return version


def has_extension(extensions: dict[str, str],
                  ext_pairs: set[tuple[str, str]], name: str) -> bool:
    """Return whether the server offers *name* in a usable version.

    The extensions sftp knows count only with the version sftp
    requires (:data:`KNOWN_EXTENSIONS`); any other name counts when it
    is advertised at all.
    """
    version = KNOWN_EXTENSIONS.get(name)
    if version is None:
        return name in extensions
    return (name, version) in ext_pairs
