"""glob(3)'s pattern language: compiling and matching one path segment.

The pure half of openbsd-compat/glob.c that :mod:`.globbing` walks with:
a pattern is protected (``\\c`` escapes), compiled to glob.c's alphabet
of bytes and meta characters (``*``, ``?``, ``[...]`` sets with ranges
and ``[:class:]`` names, ctype of the C locale), and names are matched
against one segment of it, as bytes.  No file system, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

ENCODING = ("utf-8", "surrogateescape")

# glob.c's pattern alphabet: bytes, protected bytes and meta characters.
M_QUOTE = 0x8000
_M_PROTECT = 0x4000
_M_ALL = M_QUOTE | ord("*")
_M_END = M_QUOTE | ord("]")
_M_NOT = M_QUOTE | ord("!")
_M_ONE = M_QUOTE | ord("?")
_M_RNG = M_QUOTE | ord("-")
_M_SET = M_QUOTE | ord("[")
_M_CLASS = M_QUOTE | ord(":")
_EOS = 0
SEP = ord("/")
DOT = ord(".")
LBRACKET, _RBRACKET = ord("["), ord("]")
LBRACE, RBRACE, COMMA = ord("{"), ord("}"), ord(",")


def _ascii_class(test: Callable[[str], bool]) -> Callable[[int], bool]:
    """Make a ctype-like byte test that is false for non-ASCII bytes."""
    return lambda byte: byte < 0x80 and test(chr(byte))


# charclass.h's table, in its order; ctype of bytes >= 0x80 is false in
# the C and UTF-8 locales.
_CLASSES: tuple[tuple[bytes, Callable[[int], bool]], ...] = (
    (b"alnum", _ascii_class(str.isalnum)),
    (b"alpha", _ascii_class(str.isalpha)),
    (b"blank", _ascii_class(lambda c: c in " \t")),
    (b"cntrl", _ascii_class(lambda c: ord(c) < 0x20 or ord(c) == 0x7F)),
    (b"digit", _ascii_class(str.isdigit)),
    (b"graph", _ascii_class(lambda c: 0x20 < ord(c) < 0x7F)),
    (b"lower", _ascii_class(str.islower)),
    (b"print", _ascii_class(lambda c: 0x20 <= ord(c) < 0x7F)),
    (b"punct", _ascii_class(
        lambda c: 0x20 < ord(c) < 0x7F and not c.isalnum())),
    (b"space", _ascii_class(lambda c: c in " \t\n\v\f\r")),
    (b"upper", _ascii_class(str.isupper)),
    (b"xdigit", _ascii_class(lambda c: c in "0123456789abcdefABCDEF")),
)


def protect(pattern: str) -> list[int]:
    """glob()'s first pass: ``\\c`` becomes c with the protect bit."""
    raw = pattern.encode(*ENCODING)
    out: list[int] = []
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte == ord("\\"):
            index += 1
            if index < len(raw):
                byte = raw[index]
            out.append(byte | _M_PROTECT)
        else:
            out.append(byte)
        index += 1
    return out


def compile_pattern(pattern: Sequence[int], nocheck: bool) -> list[int] | None:
    """glob0's compilation to meta characters; None for GLOB_NOMATCH."""
    out: list[int] = []
    q = 0

    def at(k: int) -> int:
        return pattern[k] if k < len(pattern) else _EOS

    while (c := at(q)) != _EOS:
        q += 1
        if c == LBRACKET:
            q = _compile_set(pattern, q, out, nocheck)
            if q < 0:
                return None
        elif c == ord("?"):
            out.append(_M_ONE)
        elif c == ord("*"):
            if not out or out[-1] != _M_ALL:
                out.append(_M_ALL)
        else:
            out.append(c & 0xFF)
    return out


def _compile_set(pattern: Sequence[int], q: int, out: list[int],
                 nocheck: bool) -> int:
    """Compile a ``[...]`` set starting after the ``[``; return the index.

    Returns -1 for an invalid character class without GLOB_NOCHECK.
    """
    def at(k: int) -> int:
        return pattern[k] if k < len(pattern) else _EOS

    negate = at(q) == ord("!")
    if negate:
        q += 1
    if at(q) == _EOS or _RBRACKET not in pattern[q + 1:]:
        out.append(LBRACKET)
        return q - 1 if negate else q
    out.append(_M_SET)
    if negate:
        out.append(_M_NOT)
    c = at(q)
    q += 1
    while True:
        if c == LBRACKET and at(q) == ord(":"):
            err = 0
            while c == LBRACKET and at(q) == ord(":"):
                err, q = _charclass(pattern, q, out)
                if err:
                    break
                c = at(q)
                q += 1
            if err == -1 and not nocheck:
                return -1
            if c == _RBRACKET:
                break
        if c == _EOS:           # only after a class ending the pattern
            break
        out.append(c & 0xFF)
        if at(q) == ord("-") and at(q + 1) != _RBRACKET:
            out.extend((_M_RNG, at(q + 1) & 0xFF))
            q += 2
        c = at(q)
        q += 1
        if c == _RBRACKET:
            break
    out.append(_M_END)
    return q


def _charclass(pattern: Sequence[int], q: int, out: list[int]
               ) -> tuple[int, int]:
    """Compile ``[:name:]`` at *q* (the colon): (0|1|-1, new index)."""
    name_start = q + 1
    try:
        colon = pattern.index(ord(":"), name_start)
    except ValueError:
        return 1, q
    if colon + 1 >= len(pattern) or pattern[colon + 1] != _RBRACKET:
        return 1, q
    name = pattern[name_start:colon]
    for number, (class_name, _test) in enumerate(_CLASSES):
        if list(class_name) == list(name):
            out.extend((_M_CLASS, number))
            return 0, colon + 2
    return -1, q


def match(name: bytes, pat: list[int], start: int, end: int) -> bool:
    """glob.c's match(): *name* against ``pat[start:end]`` (no recursion).

    A ``[...]`` set is read up to its end marker even past *end* (a set
    holding a ``/``), as in C.
    """
    def ch(k: int) -> int:
        return name[k] if k < len(name) else _EOS

    p, n = start, 0
    next_p = next_n = -1
    while True:
        ok = True
        while p < end:
            c = pat[p]
            p += 1
            if c == _M_ALL:
                while p < end and pat[p] == _M_ALL:
                    p += 1
                if p == end:
                    return True
                if ch(n) == _EOS:
                    return False
                next_n, next_p = n + 1, p - 1
            elif c == _M_ONE:
                if ch(n) == _EOS:
                    ok = False
                    break
                n += 1
            elif c == _M_SET:
                k = ch(n)
                n += 1
                if k == _EOS or not _match_set(pat, p, k):
                    ok = False
                    break
                p = _skip_set(pat, p)
            else:
                if ch(n) != c:
                    ok = False
                    break
                n += 1
        if ok and ch(n) == _EOS:
            return True
        if next_n < 0:
            return False
        p, n = next_p, next_n


def _match_set(pat: list[int], p: int, k: int) -> bool:
    """Return whether byte *k* is in the set whose body starts at *p*."""
    negate = p < len(pat) and pat[p] == _M_NOT
    if negate:
        p += 1
    found = False
    while p < len(pat) and (c := pat[p]) != _M_END:
        p += 1
        if c == _M_CLASS:
            number = pat[p] if p < len(pat) else len(_CLASSES)
            if number < len(_CLASSES) and _CLASSES[number][1](k):
                found = True
            p += 1
        if p < len(pat) and pat[p] == _M_RNG:
            if p + 1 < len(pat) and c <= k <= pat[p + 1]:
                found = True
            p += 2
        elif c == k:
            found = True
    return found != negate


def _skip_set(pat: list[int], p: int) -> int:
    """Return the index after the end marker of the set body at *p*."""
    if p < len(pat) and pat[p] == _M_NOT:
        p += 1
    while p < len(pat) and (c := pat[p]) != _M_END:
        p += 1
        if c == _M_CLASS:
            p += 1
        if p < len(pat) and pat[p] == _M_RNG:
            p += 2
    return p + 1


def skip_bracket(pattern: list[int], index: int) -> int:
    """From a ``[``, return the index of its ``]``, or *index* if none."""
    end = index + 1
    while end < len(pattern) and pattern[end] != _RBRACKET:
        end += 1
    return index if end >= len(pattern) else end
