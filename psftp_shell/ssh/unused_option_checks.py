"""ssh's checks of the values of options psftp-shell takes but never uses.

An escape character, environment to send, connection sharing, tunnels,
canonical host names: sftp hands them to ssh, which checks each value
(readconf.c's ``process_config_line``) and stops on a bad one, so
psftp-shell checks them with ssh's words too (:mod:`readconf` calls
these; each takes the line's arguments as readconf.c's switch does).
"""

from __future__ import annotations

from typing import Protocol

from psftp_shell.core.libc_parse import strtoll, strtonum
from psftp_shell.ssh.config_words import convtime

TUNID_ANY = 0x7FFFFFFF
TUNID_MAX = TUNID_ANY - 2           # misc.h's SSH_TUNID_MAX


class ArgLine(Protocol):
    """One config line's arguments (readconf's ``_Line``)."""

    at: str             # "FILE line N"
    short: str          # the same with FILE cut to 200 characters
    keyword: str
    args: list[str]

    def next(self) -> str | None:
        """The next argument, consumed (None when none is left)."""


def escape_char(line: ArgLine) -> list[str] | None:
    """``none``, one character, or ``^`` and a character from ``@`` to
    DEL (a control character); compared as bytes, as ssh does."""
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing argument."]
    raw = arg.encode("utf-8", "surrogateescape")
    if arg == "none" or len(raw) == 1 or (
            len(raw) == 2 and raw[0] == ord("^") and 64 <= raw[1] < 128):
        return None
    return [f"{line.short}: Bad escape character."]


def send_env(line: ArgLine) -> list[str] | None:
    """Names (patterns), none empty or with ``=``."""
    while (arg := line.next()) is not None:
        if not arg or "=" in arg:
            return [f"{line.at}: Invalid environment name."]
    return None


def set_env(line: ArgLine) -> list[str] | None:
    """``NAME=VALUE`` words."""
    while (arg := line.next()) is not None:
        if "=" not in arg:
            return [f"{line.at}: Invalid SetEnv."]
    return None


def control_persist(line: ArgLine) -> list[str] | None:
    """``yes``/``true``/``no``/``false`` (that case only) or a time."""
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing ControlPersist argument."]
    if arg in ("yes", "true", "no", "false") or convtime(arg) >= 0:
        return None
    return [f"{line.short}: Bad ControlPersist argument."]


def _tun(text: str) -> bool:
    """misc.c's ``a2tun`` without a remote part: ``any`` or a number."""
    return text.lower() == "any" or strtonum(text, 0, TUNID_MAX)[1] is None


def tunnel_device(line: ArgLine) -> list[str] | None:
    """``LOCAL`` or ``LOCAL:REMOTE``, each ``any`` or a number."""
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing argument."]
    local, colon, remote = arg.partition(":")
    if _tun(local) and (not colon or _tun(remote)):
        return None
    return [f"{line.short}: Bad tun device."]


def domain_error(name: str) -> str | None:
    """misc.c's ``valid_domain`` (lowering the name as it goes, as its
    messages show it): why *name* is no domain name, or None.  For
    ``CanonicalDomains``, whose words readconf's ``_array`` reads."""
    if not name:
        return "empty domain name"
    raw = bytearray(name.encode("utf-8", "surrogateescape"))
    if not (chr(raw[0]).isascii() and chr(raw[0]).isalnum()):
        return f'domain name "{_shown(raw)}" starts with invalid character'
    last = 0
    for at, byte in enumerate(raw):
        low = ord(chr(byte).lower()) if byte < 128 else byte
        raw[at] = low
        if last == ord(".") and low == ord("."):
            return (f'domain name "{_shown(raw)}" contains consecutive '
                    "separators")
        if not (low < 128 and (chr(low).isalnum() or chr(low) in ".-_")):
            return f'domain name "{_shown(raw)}" contains invalid characters'
        last = low
    return None


def _shown(raw: bytearray) -> str:
    return bytes(raw[:100]).decode("utf-8", "surrogateescape")


def permitted_cnames(line: ArgLine) -> list[str] | None:
    """``none`` alone, ``*``, or ``SOURCES:TARGETS``."""
    count = 0
    while (arg := line.next()) is not None:
        if arg.lower() == "none":
            if count or line.args:
                return [f'{line.at}: keyword {line.keyword} "none" '
                        "argument must appear alone."]
        elif arg != "*":
            _, colon, targets = arg.partition(":")
            if not colon or not targets:
                return [f'{line.at}: Invalid permitted CNAME '
                        f'"{_lower_ascii(arg)}"']
        count += 1
    return None


def _lower_ascii(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def bind_mask(line: ArgLine) -> list[str] | None:
    """An octal mode from 0 to 0777."""
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing StreamLocalBindMask argument."]
    value, end, _ = strtoll(arg, 8)        # anything may follow
    if end == 0 or not 0 <= value <= 0o777:
        return [f"{line.short}: Bad mask."]
    return None

