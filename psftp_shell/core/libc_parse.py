"""C library parsing routines, as OpenSSH's sftp gets them from libc.

Faithful emulations of what sftp's command line (and ssh's reading of
its options) relies on: ``strtoll``
and OpenBSD ``strtonum``, ``strtol`` into a ``size_t`` (``-B``, ``-R``),
OpenBSD ``scan_scaled`` (``-X buffer=``), OpenSSH's ``a2port``, misc.c
``hpdelim2`` and ``cleanhostname``, ``argv_split`` (``-D``, ssh_config
lines) and BSD ``getopt(3)`` from openbsd-compat.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from psftp_shell.core.errors import UsageError
from psftp_shell.core.escape import to_bytes

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
SIZE_T_RANGE = 2**64

C_SPACE = " \t\n\v\f\r"
"""The C library's white space (``isspace`` in the C locale)."""
_DIGITS = "0123456789"
_SCALE_CHARS = "BKMGTPE"              # scan_scaled units, 1024 apart
_SCAN_MAX_DIGITS = 3 * len(_SCALE_CHARS)


# --- number parsing ----------------------------------------------------------

def strtoll(text: str, base: int = 10) -> tuple[int, int, bool]:
    """Emulate ``strtoll(text, &end, base)`` for a *base* from 2 to 10:
    (value, end index, ERANGE), leading white space and a sign allowed,
    the value clamped to ``long long``.

    The end index is 0 when no digits were found.
    """
    digits = _DIGITS[:base]
    pos, size = 0, len(text)
    while pos < size and text[pos] in C_SPACE:
        pos += 1
    negative = pos < size and text[pos] == "-"
    if pos < size and text[pos] in "+-":
        pos += 1
    start = pos
    while pos < size and text[pos] in digits:
        pos += 1
    if pos == start:
        return 0, 0, False
    value = int(text[start:pos], base)
    value = -value if negative else value
    if value > LLONG_MAX:
        return LLONG_MAX, pos, True
    if value < LLONG_MIN:
        return LLONG_MIN, pos, True
    return value, pos, False


def strtonum(text: str, minval: int, maxval: int) -> tuple[int, str | None]:
    """Emulate OpenBSD ``strtonum``: (value, None) or (0, errstr)."""
    value, end, erange = strtoll(text)
    if end == 0 or end != len(text):
        return 0, "invalid"
    if (value == LLONG_MIN and erange) or value < minval:
        return 0, "too small"
    if (value == LLONG_MAX and erange) or value > maxval:
        return 0, "too large"
    return value, None


def strtol_size(text: str) -> int | None:
    """Parse ``-B``/``-R``: ``strtol`` stored in a ``size_t``.

    Returns None where sftp rejects the value (zero or trailing junk).
    Like sftp, negative or huge values are not refused: they wrap.
    """
    value, end, _ = strtoll(text)
    size = value % SIZE_T_RANGE
    if size == 0 or end != len(text):
        return None
    return size


def _scan_sign(text: str, pos: int) -> tuple[int, int] | None:
    """Skip blanks and at most one sign: (sign, position) or None."""
    while pos < len(text) and text[pos] in C_SPACE:
        pos += 1
    sign = 0
    while pos < len(text) and text[pos] in "+-":
        if sign:
            return None
        sign = -1 if text[pos] == "-" else 1
        pos += 1
    return sign, pos


def _scan_number(text: str, pos: int
                 ) -> tuple[int, int, int, int] | int:
    """Scan ``digits[.digits]``: (whole, fpart, fract_digits, pos).

    Returns an errno value instead when the number is malformed.
    """
    whole = fpart = fract_digits = ndigits = 0
    while pos < len(text) and text[pos] in _DIGITS + ".":
        char = text[pos]
        pos += 1
        if char == ".":
            if fract_digits > 0:
                return errno.EINVAL
            fract_digits = 1
        elif fract_digits > 0:
            if fract_digits >= _SCAN_MAX_DIGITS - 1:
                continue
            fract_digits += 1
            fpart = fpart * 10 + int(char)
            if fpart > LLONG_MAX:
                return errno.ERANGE
        else:
            ndigits += 1
            whole = whole * 10 + int(char)
            if ndigits >= _SCAN_MAX_DIGITS or whole > LLONG_MAX:
                return errno.ERANGE
    return whole, fpart, fract_digits, pos


def _apply_scale(whole: int, fpart: int, fract_digits: int, sign: int,
                 factor: int) -> int | None:
    """Scale a parsed number by *factor*; None when it overflows.

    *factor* is a power of two, so ``LLONG_MIN // factor`` is exact and
    Python's floor division agrees with C's truncating one here.
    """
    if whole > LLONG_MAX // factor or whole < LLONG_MIN // factor:
        return None
    whole *= factor
    while fpart >= LLONG_MAX // factor or fpart <= LLONG_MIN // factor:
        fpart //= 10
        fract_digits -= 1
    fpart *= factor
    if fract_digits > 0:
        for _ in range(fract_digits - 1):
            fpart //= 10
    return whole - fpart if sign == -1 else whole + fpart


def scan_scaled(text: str) -> tuple[int, int]:
    """Emulate OpenBSD ``scan_scaled``: (value, 0) or (0, errno).

    Accepts ``[blanks][sign]digits[.digits][unit]`` with the units
    ``BKMGTPE`` (either case, powers of 1024); a unit may be followed by
    anything but an alphanumeric, as in OpenSSH's copy of the function.
    """
    signed = _scan_sign(text, 0)
    if signed is None:
        return 0, errno.EINVAL
    sign, pos = signed
    scanned = _scan_number(text, pos)
    if isinstance(scanned, int):
        return 0, scanned
    whole, fpart, fract_digits, pos = scanned
    if sign:
        whole *= sign
    if pos == len(text):
        return whole, 0
    char, following = text[pos], text[pos + 1:pos + 2]
    unit = _SCALE_CHARS.find(char.upper()) if char.isascii() else -1
    if unit < 0 or (following.isascii() and following.isalnum()):
        return 0, errno.EINVAL
    value = _apply_scale(whole, fpart, fract_digits, sign, 1024 ** unit)
    if value is None:
        return 0, errno.ERANGE
    return value, 0


def auto_base(text: str) -> tuple[str, int]:
    """Resolve ``strtol``'s base 0 for *text*: ``0x`` hex, ``0`` octal.

    Returns the text with a hex prefix removed (white space and sign
    kept) and the base it is to be read in.
    """
    body = text.lstrip(C_SPACE)
    head = text[:len(text) - len(body)]
    if body[:1] in ("+", "-"):
        head, body = head + body[0], body[1:]
    if body[:2].lower() == "0x" and body[2:3].lower() in \
            tuple("0123456789abcdef"):
        return head + body[2:], 16
    if body.startswith("0"):
        return text, 8
    return text, 10


def strtol_any_base(text: str) -> int | None:
    """``strtol(text, &end, 0)`` when it reads all of *text*, else None.

    Leading C blanks and a sign are allowed; the base is
    :func:`auto_base`'s.  A value outside ``long`` is clamped.
    """
    body, base = auto_base(text)
    body = body.lstrip(C_SPACE)
    sign = -1 if body[:1] == "-" else 1
    digits = body[1:] if body[:1] in "+-" else body
    allowed = "0123456789abcdef"[:base]
    if not digits or any(c.lower() not in allowed for c in digits):
        return None
    return max(min(sign * int(digits, base), LLONG_MAX), LLONG_MIN)


def a2port(text: str) -> int:
    """Emulate OpenSSH's ``a2port``: a port number or -1.

    A number 0..65535, else a TCP service name from the services
    database; 0 (which callers reject) is returned as given.
    """
    value, err = strtonum(text, 0, 65535)
    if err is None:
        return value
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError, ValueError):
        return -1


# --- host names (misc.c) ----------------------------------------------------

def cleanhostname(host: str) -> str:
    """Strip the brackets of ``[host]``."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def hpdelim2(text: str) -> tuple[str, str, str | None] | None:
    """Emulate ``hpdelim2``: (field, delimiter, rest) or None if bad.

    The delimiter is ``:``, ``/`` or empty (then rest is None).
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        end += 1
    else:
        found = [i for i in (text.find(":"), text.find("/")) if i >= 0]
        end = min(found) if found else len(text)
    if end == len(text):
        return text, "", None
    if text[end] in ":/":
        return text[:end], text[end], text[end + 1:]
    return None


def parse_user_host_port(text: str) -> tuple[str | None, str] | None:
    """misc.c ``parse_user_host_port``: ``[user@]host[:port]`` as
    (user, host), the port checked and dropped; None if bad (an empty
    user or host, a ``/`` after the host, a bad port)."""
    user, at, rest = text.rpartition("@")
    if at and not user:
        return None
    fields = hpdelim2(rest)
    if fields is None or fields[1] == "/" or not fields[0]:
        return None
    if fields[2] and a2port(fields[2]) <= 0:
        return None
    return (user if at else None), cleanhostname(fields[0])


# --- the -D command ----------------------------------------------------------

def _split_token(text: str, pos: int) -> tuple[str, int, str]:
    """Read one ``argv_split`` token: (token, end position, open quote)."""
    quote = ""
    token: list[str] = []
    while pos < len(text):
        char = text[pos]
        following = text[pos + 1:pos + 2]
        if char == "\\":
            if following in ("'", '"', "\\") and following or (
                    not quote and following == " "):
                pos += 1
                char = following
            token.append(char)
        elif not quote and char in " \t":
            break
        elif not quote and char in "\"'":
            quote = char
        elif quote and char == quote:
            quote = ""
        else:
            token.append(char)
        pos += 1
    return "".join(token), pos, quote


def argv_split(text: str) -> list[str]:
    """Split a ``-D`` command as misc.c ``argv_split`` does.

    Blanks separate words, quotes group, ``\\`` escapes quotes, itself
    and (unquoted) a space; a word starting with ``#`` ends the line.
    An unterminated quote raises ``ValueError``.
    """
    words: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] in " \t":
            pos += 1
            continue
        if text[pos] == "#":
            break
        word, pos, quote = _split_token(text, pos)
        if quote:
            raise ValueError("unterminated quote")
        words.append(word)
        pos += 1
    return words


# --- getopt ------------------------------------------------------------------

def _first_byte(char: str) -> str:
    """Return the first byte of *char*, as getopt sees it (a str)."""
    return to_bytes(char)[:1].decode("utf-8", "surrogateescape")


class Getopt:
    """BSD ``getopt(3)`` as in OpenSSH's openbsd-compat (no permuting).

    Iterating yields ``(letter, argument)`` pairs (argument ``""`` for
    flags); errors raise :class:`UsageError` with getopt's message.
    Afterwards :attr:`optind` is the index of the first operand.
    """

    def __init__(self, args: list[str], optstring: str) -> None:
        """Prepare to scan *args* (argv without argv[0])."""
        self.args = args
        self.optstring = optstring
        self.optind = 0

    def _takes_argument(self, char: str) -> bool | None:
        """Return whether *char* takes an argument; None if unknown."""
        index = self.optstring.find(char)
        if char == ":" or index < 0:
            return None
        return self.optstring[index + 1:index + 2] == ":"

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield the options in order, stopping at the first operand."""
        while self.optind < len(self.args):
            arg = self.args[self.optind]
            if not arg.startswith("-") or arg == "-":
                return
            self.optind += 1
            if arg == "--":
                return
            for pos in range(1, len(arg)):
                char = arg[pos]
                if char == "-" and pos + 1 == len(arg):
                    self.optind -= 1    # "-x-": getopt ends, arg unused
                    return
                needs = self._takes_argument(char)
                if needs is None:
                    raise UsageError(
                        f"unknown option -- {_first_byte(char)}")
                if needs:
                    yield char, self._argument(arg, pos, char)
                    break
                yield char, ""

    def _argument(self, arg: str, pos: int, char: str) -> str:
        """Return the argument of option *char* found at arg[pos]."""
        if pos + 1 < len(arg):
            return arg[pos + 1:]
        if self.optind >= len(self.args):
            raise UsageError(f"option requires an argument -- {char}")
        self.optind += 1
        return self.args[self.optind - 1]
