"""The words of an ssh_config line and the numbers in them, as OpenSSH
9.2's misc.c reads them: :func:`strdelim` (and the keyword split of
readconf.c, :func:`split_keyword`), ``convtime`` and ``atoi_err``.
Used by :mod:`psftp_shell.ssh.readconf` and the checkers it calls.
"""

from __future__ import annotations

from psftp_shell.core.libc_parse import strtoll, strtonum

WHITESPACE = " \t\r\n"
"""What separates the words of a config line (misc.c ``WHITESPACE``)."""
_INT_MAX = 2**31 - 1


def strdelim(text: str | None) -> tuple[str | None, str | None]:
    """misc.c ``strdelim``: the first token and the rest (or None)."""
    if text is None:
        return None, None
    found = [i for i in (text.find(c) for c in WHITESPACE + '"=') if i >= 0]
    if not found:
        return text, None
    pos = min(found)
    if text[pos] == '"':
        rest = text[:pos] + text[pos + 1:]
        close = rest.find('"', pos)
        if close < 0:
            return None, None
        after = close + 1
        after += len(rest[after:]) - len(rest[after:].lstrip(WHITESPACE))
        return rest[:close], rest[after:]
    token, after = text[:pos], pos + 1
    equals = text[pos] == "="
    after += len(text[after:]) - len(text[after:].lstrip(WHITESPACE))
    if not equals and text[after:after + 1] == "=":
        after += 1
        after += len(text[after:]) - len(text[after:].lstrip(WHITESPACE))
    return token, text[after:]


def split_keyword(text: str) -> tuple[str | None, str | None]:
    """A config line's keyword and the rest, as readconf.c takes them:
    :func:`strdelim`, once more when the line starts with a delimiter."""
    keyword, rest = strdelim(text)
    if keyword == "":
        keyword, rest = strdelim(rest)
    return keyword, rest


def convtime(text: str) -> int:
    """misc.c ``convtime``: seconds, or -1.  Each number is read by
    ``strtol`` (so ``+5`` and ``-0`` pass, a negative one does not) and
    may be INT_MAX itself, as may the total."""
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total, pos = 0, 0
    if not text:
        return -1
    while pos < len(text):
        secs, end, _ = strtoll(text[pos:])
        if end == 0 or secs < 0:
            return -1
        pos += end
        unit = text[pos:pos + 1].lower()
        if unit not in units:
            return -1
        pos += 1 if unit else 0
        if secs > _INT_MAX // units[unit] or total > _INT_MAX - \
                secs * units[unit]:
            return -1
        total += secs * units[unit]
    return total


def integer_error(value: str | None) -> str | None:
    """misc.c ``atoi_err``: why *value* is no int in 0..INT_MAX, or None
    (``strtonum``'s words)."""
    if not value:
        return "missing"
    return strtonum(value, 0, _INT_MAX)[1]
