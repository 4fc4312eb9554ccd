"""sftp's destination operand: URI, ``user@host:path`` or ``user@host``.

:func:`parse_destination` tries the forms in the order OpenSSH 9.2's
sftp does, with the same checks (misc.c ``colon``, ``hpdelim2``,
``valid_domain``, ``urldecode``).  psftp-shell also accepts IPv6
literals in brackets inside ``sftp://`` URIs, which sftp rejects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from psftp_shell.core import libc_parse
from psftp_shell.core.errors import UsageError
from psftp_shell.core.escape import to_bytes
from psftp_shell.core.libc_parse import a2port, cleanhostname, hpdelim2

URI_SCHEME = "sftp://"

_HEX_BYTES = b"0123456789abcdefABCDEF"


class PlainUsageError(UsageError):
    """A usage error whose message sftp prints with a bare ``\\n``."""


@dataclass(slots=True)
class Destination:
    """Where to connect: sftp's user, host, URI port and start path."""

    user: str | None
    host: str
    port: int | None
    path: str | None


def _colon(text: str) -> int:
    """Emulate misc.c ``colon()``: index of the host/path colon or -1."""
    if text.startswith(":"):
        return -1
    bracketed = text.startswith("[")
    for index, char in enumerate(text):
        following = text[index + 1:index + 2]
        if char == "@" and following == "[":
            bracketed = True
        if char == "]" and following == ":" and bracketed:
            return index + 1
        if char == ":" and not bracketed:
            return index
        if char == "/":
            return -1
    return -1


def _valid_domain(name: str) -> str | None:
    """Emulate ``valid_domain``: the name minus a final dot, or None."""
    if not name or not (name[0].isascii() and name[0].isalnum()):
        return None
    last = ""
    for char in name.lower():
        if last == "." and char == ".":
            return None
        if char not in ".-_" and not (char.isascii() and char.isalnum()):
            return None
        last = char
    return name[:-1] if name.endswith(".") else name


def urldecode(text: str) -> str | None:
    """Decode ``%XX`` and ``+`` as misc.c does; None on a bad escape.

    Works on the bytes *text* stands for; a decoded NUL ends the string,
    as it does in C.
    """
    data = to_bytes(text)
    out = bytearray()
    pos = 0
    while pos < len(data):
        byte = data[pos]
        if byte == ord("+"):
            out.append(ord(" "))
        elif byte == ord("%"):
            digits = data[pos + 1:pos + 3]
            if len(digits) < 2 or any(d not in _HEX_BYTES for d in digits):
                return None
            out.append(int(digits, 16))
            pos += 2
        else:
            out.append(byte)
        pos += 1
    return bytes(out).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _is_ipv6(host: str) -> bool:
    """Return whether *host* is an IPv6 address literal."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _uri_host(raw: str) -> str:
    """Check a URI's host field; bracketed IPv6 is our extension."""
    host = cleanhostname(raw)
    checked = _valid_domain(host)
    if checked is not None:
        return checked
    if raw.startswith("[") and _is_ipv6(host):
        return host
    raise UsageError("")


def _uri_user(userinfo: str) -> str:
    """Decode a URI's user (``;params`` ignored); empty is an error."""
    user = userinfo.split(";", 1)[0]
    decoded = urldecode(user) if user else None
    if decoded is None:
        raise UsageError("")
    return decoded


def _uri_port_path(delim: str, rest: str | None
                   ) -> tuple[int | None, str | None]:
    """Parse what follows a URI's host: ``[:port][/path]``."""
    port = None
    if rest and delim == ":":
        slash = rest.find("/")
        number = a2port(rest if slash < 0 else rest[:slash])
        if number <= 0:
            raise UsageError("")
        port = number
        rest = None if slash < 0 else rest[slash + 1:]
    path = None
    if rest:
        path = urldecode(rest)
        if path is None:
            raise UsageError("")
    return port, path


def parse_uri(arg: str) -> Destination | None:
    """Parse ``sftp://[user[;params]@]host[:port][/path]``.

    Returns None when *arg* is not an sftp URI; a malformed one raises
    ``UsageError("")`` (sftp prints the usage only).
    """
    if not arg.startswith(URI_SCHEME):
        return None
    rest = arg[len(URI_SCHEME):]
    user = None
    at = rest.find("@")
    if at >= 0:
        user = _uri_user(rest[:at])
        rest = rest[at + 1:]
    fields = hpdelim2(rest)
    if fields is None or not fields[0]:
        raise UsageError("")
    host = _uri_host(fields[0])
    port, path = _uri_port_path(fields[1], fields[2])
    return Destination(user, host, port, path)


def parse_user_host_path(arg: str) -> Destination | None:
    """Parse ``[user@]host:[path]``; None if *arg* is not of that form."""
    index = _colon(arg)
    if index < 0:
        return None
    path = arg[index + 1:] or "."
    head = arg[:index]
    user, at, host = head.rpartition("@")
    if not at:
        return Destination(None, cleanhostname(head), None, path)
    return Destination(user or None, cleanhostname(host), None, path)


def parse_user_host_port(arg: str) -> Destination | None:
    """Parse ``[user@]host[:port]`` (the port is checked, then dropped)."""
    parsed = libc_parse.parse_user_host_port(arg)
    return None if parsed is None else Destination(*parsed, None, None)


def parse_destination(arg: str) -> Destination:
    """Parse sftp's destination operand, trying each form in turn.

    ``sftp://`` URI, then ``[user@]host:[path]``, then ``[user@]host``,
    then the whole string as the host name.  Raises ``UsageError("")``
    for a bad URI and :class:`PlainUsageError` ``Missing hostname`` for
    an empty host.
    """
    dest = (parse_uri(arg) or parse_user_host_path(arg)
            or parse_user_host_port(arg)
            or Destination(None, cleanhostname(arg), None, None))
    if not dest.host:
        raise PlainUsageError("Missing hostname")
    return dest
