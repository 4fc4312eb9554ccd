"""Escape untrusted text the way OpenSSH's sftp does before printing it.

Two escapers exist in sftp and they differ:

* :func:`vis_name` is ``mprintf`` (utf8.c ``vasnmprintf``): listings,
  informational lines and command echoes.  Printable characters pass
  (multibyte ones only in a UTF-8 ``LC_CTYPE``), as do tab, newline and
  carriage return; every other byte becomes ``\\ooo``.
* :func:`vis_log` is log.c's ``strnvis(VIS_SAFE|VIS_OCTAL)`` for
  ``error()``/``logit()`` messages: ASCII only, backslashes doubled.

Names are ``str`` that may hold lone surrogates U+DC80..U+DCFF (bytes that
were not valid UTF-8, decoded with ``surrogateescape``); both escapers
work on the original bytes, so each such surrogate counts as its byte.
"""

from __future__ import annotations

import locale
import os
import sys
import unicodedata
from functools import cache

# glibc's wcwidth() is -1 (not printable) exactly for these categories,
# plus U+0000 which cannot occur in a name; checked against the C.UTF-8
# locale of glibc 2.36 (Unicode 14, as Python 3.11's unicodedata).
_UNPRINTABLE = frozenset({"Cc", "Cn", "Cs", "Zl", "Zp"})
# mprintf lets these through unescaped (utf8.c, when no width is asked).
_RAW_CONTROLS = frozenset("\t\n\r")
# log.c's VIS_SAFE passes these controls besides space, tab and newline.
_LOG_SAFE = frozenset(b" \t\n\r\b\a")
_LOG_MSGBUF = 1024  # log.c MSGBUFSIZ: buffer size, NUL included
_UTF8_CODESETS = frozenset({"UTF-8", "UTF8"})
_COERCION_TARGETS = frozenset({"C.UTF-8", "C.utf8", "UTF-8"})


def to_bytes(text: str) -> bytes:
    """Return the bytes *text* stands for (surrogateescape-aware).

    Lone surrogates outside U+DC80..U+DCFF, which surrogateescape cannot
    map back to a byte, are encoded as their (invalid) UTF-8 form.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _octal(byte: int) -> str:
    return f"\\{byte:03o}"


def _octal_all(data: bytes) -> str:
    return "".join(_octal(b) for b in data)


@cache
def locale_is_utf8() -> bool:
    """Return whether sftp's ``msetlocale`` would pick a UTF-8 LC_CTYPE.

    Only ``LC_CTYPE`` is taken from the environment (``LC_ALL``,
    ``LC_CTYPE``, ``LANG``); a Turkish locale falls back to C.UTF-8 or C
    as OpenSSH does.  The process locale is restored afterwards.  The
    answer is computed once.

    Python itself may have rewritten ``LC_CTYPE`` at startup (PEP 538
    coerces a C locale to C.UTF-8); that is undone here, since sftp run
    in the same environment would have stayed in the C locale.
    """
    if _python_coerced_locale():
        return False
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value is None:
            continue
        if value[:2].lower() != "tr":
            break
        lowered = value.lower()
        return "utf-8" in lowered or "utf8" in lowered
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "")
        codeset = locale.nl_langinfo(locale.CODESET)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    return codeset.upper() in _UTF8_CODESETS


def _python_coerced_locale() -> bool:
    """Return whether PEP 538 replaced a C locale with a UTF-8 one.

    The coercion leaves ``LC_CTYPE`` set to one of its targets and, as
    the startup locale was C, turns on UTF-8 mode (PEP 540); an explicit
    ``LC_CTYPE=C.UTF-8`` leaves UTF-8 mode off unless asked for.
    """
    if not sys.flags.utf8_mode or os.environ.get("LC_ALL"):
        return False
    if "PYTHONUTF8" in os.environ or "utf8" in sys._xoptions:
        return False
    return os.environ.get("LC_CTYPE") in _COERCION_TARGETS


def _printable(char: str) -> bool:
    """Return whether glibc's wcwidth() gives *char* a width (>= 0)."""
    return unicodedata.category(char) not in _UNPRINTABLE


def _vis_char(char: str, utf8: bool) -> str:
    if char in _RAW_CONTROLS:
        return char
    code = ord(char)
    if code < 0x80:
        return char if 0x20 <= code < 0x7F else _octal(code)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
        return _octal(code - 0xDC00)
    if utf8 and _printable(char):
        return char
    return _octal_all(to_bytes(char))


def vis_name(name: str, *, utf8: bool | None = None) -> str:
    """Escape *name* as sftp's ``mprintf`` does (``\\ooo`` per byte).

    With ``utf8`` true, printable multibyte characters pass; with it
    false (the C locale) every non-ASCII byte is escaped; ``None`` asks
    :func:`locale_is_utf8`.  ASCII controls other than tab, newline and
    carriage return, DEL and invalid UTF-8 bytes are always escaped.
    The result is stable: escaping it again changes nothing.
    """
    if name.isascii() and name.isprintable():
        return name
    if utf8 is None:
        utf8 = locale_is_utf8()
    # Round trip through bytes so that surrogates stand for single bytes
    # and valid UTF-8 split oddly across surrogates is joined again.
    text = to_bytes(name).decode("utf-8", "surrogateescape")
    return "".join(_vis_char(c, utf8) for c in text)


def vis_field(name: str, *, utf8: bool | None = None) -> str:
    """Escape *name* for one line of a menu or a progress view.

    As :func:`vis_name`, but tab, newline and carriage return become
    ``\\ooo`` too, as ``snmprintf`` does when it is given a width: a
    name must not break or rewind the line it is shown on.
    """
    return "".join(_octal(ord(c)) if c in _RAW_CONTROLS else c
                   for c in vis_name(name, utf8=utf8))


def _log_vis_byte(byte: int) -> str:
    if byte == 0x5C:  # backslash
        return "\\\\"
    if 0x21 <= byte <= 0x7E or byte in _LOG_SAFE:
        return chr(byte)
    return _octal(byte)


def vis_log(message: str) -> str:
    """Escape a log message as log.c does before it goes to stderr.

    ``strnvis(VIS_SAFE|VIS_OCTAL)``: a backslash doubles, bytes outside
    printable ASCII (except tab, newline, CR, BS and BEL) become
    ``\\ooo``.  log.c's 1024-byte buffers are honoured: the message is
    cut to 1023 bytes, the escaped text stops before an escape that would
    not fit in 1023, and at most 1021 characters are kept (room for the
    ``\\r\\n`` the caller appends).
    """
    data = to_bytes(message)[:_LOG_MSGBUF - 1]
    out: list[str] = []
    used = 0
    for byte in data:
        piece = _log_vis_byte(byte)
        if used + len(piece) > _LOG_MSGBUF - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)[:_LOG_MSGBUF - 3]


HANDLE_ERRMSG = 256
"""The size of sftp-client.c's ``get_handle`` message buffer."""


def handle_error(what: str, status: str) -> str:
    """sftp's message when an OPEN or OPENDIR fails: *what* cut to 255 bytes.

    ``get_handle`` formats its text (``remote open("path")``, ``remote
    readdir("path")``) into a 256-byte buffer before adding the status,
    so a long path loses its tail, closing quote and all.
    """
    raw = what.encode("utf-8", "surrogateescape")[:HANDLE_ERRMSG - 1]
    return raw.decode("utf-8", "surrogateescape") + f": {status}"
