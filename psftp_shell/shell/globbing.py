"""OpenBSD glob(3), as OpenSSH's sftp uses it, over any file system.

A port of openbsd-compat/glob.c (the implementation the sftp binary uses
for both the remote and the local glob), including its quirks, made
asynchronous and pluggable through :class:`GlobFS`.  Paths are ``str``
whose undecodable bytes are lone surrogates (``surrogateescape``); the
matching and the sorting work on the encoded bytes, as in C.

Only pattern segments with magic characters are listed (``scandir``);
literal segments are not, and the final path is checked with ``lstat``
(plus ``stat`` for GLOB_MARK on symbolic links), as glob.c does.
"""

from __future__ import annotations

import asyncio
import os
import stat as stat_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PATH_MAX = 4096
"""Patterns this long (in bytes) or longer match nothing, as in glob.c."""

_ENCODING = ("utf-8", "surrogateescape")

# glob.c's pattern alphabet: bytes, protected bytes and meta characters.
_M_QUOTE = 0x8000
_M_PROTECT = 0x4000
_M_ALL = _M_QUOTE | ord("*")
_M_END = _M_QUOTE | ord("]")
_M_NOT = _M_QUOTE | ord("!")
_M_ONE = _M_QUOTE | ord("?")
_M_RNG = _M_QUOTE | ord("-")
_M_SET = _M_QUOTE | ord("[")
_M_CLASS = _M_QUOTE | ord(":")
_EOS = 0
_SEP = ord("/")
_DOT = ord(".")
_LBRACKET, _RBRACKET = ord("["), ord("]")
_LBRACE, _RBRACE, _COMMA = ord("{"), ord("}"), ord(",")


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


class GlobFS(Protocol):
    """The file system a glob walks.

    ``scandir`` should list what readdir(3) lists, ``.`` and ``..``
    included (OpenSSH's server does), in the server's order; it may
    raise, and the error goes to ``on_error``.  ``lstat``/``stat``
    return None for any failure.  The stat objects are opaque here.
    """

    async def scandir(self, path: str) -> list[tuple[str, Any]]:
        """List a directory: (name, stat object or None) pairs."""
        ...

    async def lstat(self, path: str) -> Any | None:
        """Return the stat of *path* without following a final link."""
        ...

    async def stat(self, path: str) -> Any | None:
        """Return the stat of *path*, following links."""
        ...

    def is_dir(self, st: Any) -> bool:
        """Return whether a stat object describes a directory."""
        ...

    def is_symlink(self, st: Any) -> bool:
        """Return whether a stat object describes a symbolic link."""
        ...


ErrorHandler = Callable[[str, BaseException], None]


@dataclass(frozen=True, slots=True)
class _Event:
    """A match (with its stat) or a listing error, in walk order."""

    path: bytes
    st: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Walker:
    """One glob run: the file system, the flags and the results so far."""

    fs: GlobFS
    mark: bool
    nocheck: bool
    nosort: bool
    trust_scandir_stat: bool
    on_error: ErrorHandler | None
    limit: asyncio.Semaphore
    chunk: int
    paths: list[tuple[bytes, Any]] = field(default_factory=list)

    async def glob0(self, pattern: list[int]) -> None:
        """Compile one (brace-expanded) pattern, walk it, sort the hits."""
        old = len(self.paths)
        compiled = _compile(pattern, self.nocheck)
        if compiled is not None and compiled:
            for event in await self.glob2(b"", compiled, 0, None):
                if event.error is None:
                    self.paths.append((event.path, event.st))
                elif self.on_error is not None:
                    self.on_error(_decode(event.path), event.error)
        if len(self.paths) == old:
            if self.nocheck:
                self.paths.append((bytes(c & 0xFF for c in pattern), None))
            return
        if not self.nosort:
            self.paths[old:] = sorted(self.paths[old:], key=lambda p: p[0])

    async def glob2(self, path: bytes, pat: list[int], start: int,
                    known: Any) -> list[_Event]:
        """Follow literal segments, then list the first magic one."""
        index = start
        while True:
            if index >= len(pat):
                return await self.leaf(path, known)
            end = index
            anymeta = False
            while end < len(pat) and pat[end] != _SEP:
                anymeta = anymeta or bool(pat[end] & _M_QUOTE)
                end += 1
            if anymeta:
                return await self.glob3(path, pat, index, end)
            path += bytes(pat[index:end])
            index = end
            while index < len(pat) and pat[index] == _SEP:
                path += b"/"
                index += 1
            known = None

    async def leaf(self, path: bytes, known: Any) -> list[_Event]:
        """Check a candidate path and apply GLOB_MARK."""
        name = _decode(path)
        st = known
        if st is None:
            async with self.limit:
                st = await self.fs.lstat(name)
        if st is None:
            return []
        if self.mark and not path.endswith(b"/"):
            if self.fs.is_dir(st):
                path += b"/"
            elif self.fs.is_symlink(st):
                async with self.limit:
                    target = await self.fs.stat(name)
                if target is not None:
                    st = target         # glob.c keeps the stat(2) result
                    if self.fs.is_dir(target):
                        path += b"/"
        return [_Event(path, st)]

    async def glob3(self, path: bytes, pat: list[int], start: int,
                    end: int) -> list[_Event]:
        """List a directory and recurse into the names that match."""
        dirname = _decode(path) if path else "."
        try:
            async with self.limit:
                entries = await self.fs.scandir(dirname)
        except Exception as exc:    # any failure is reported, not raised
            return [_Event(path or b".", error=exc)]
        last = end == len(pat)
        branches = []
        for name, st in entries:
            raw = name.encode(*_ENCODING)
            if raw.startswith(b".") and pat[start] != _DOT:
                continue
            if not _match(raw, pat, start, end):
                continue
            known = st if last and self.trust_scandir_stat else None
            branches.append((path + raw, known))
        events: list[_Event] = []
        for first in range(0, len(branches), self.chunk):
            batch = branches[first:first + self.chunk]
            results = await asyncio.gather(*(
                self.glob2(sub, pat, end, known) for sub, known in batch))
            for result in results:
                events.extend(result)
        return events


def _decode(raw: bytes) -> str:
    """Return a path as text (undecodable bytes as surrogates)."""
    return raw.decode(*_ENCODING)


def _protect(pattern: str) -> list[int]:
    """glob()'s first pass: ``\\c`` becomes c with the protect bit."""
    raw = pattern.encode(*_ENCODING)
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


def _compile(pattern: Sequence[int], nocheck: bool) -> list[int] | None:
    """glob0's compilation to meta characters; None for GLOB_NOMATCH."""
    out: list[int] = []
    q = 0

    def at(k: int) -> int:
        return pattern[k] if k < len(pattern) else _EOS

    while (c := at(q)) != _EOS:
        q += 1
        if c == _LBRACKET:
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
        out.append(_LBRACKET)
        return q - 1 if negate else q
    out.append(_M_SET)
    if negate:
        out.append(_M_NOT)
    c = at(q)
    q += 1
    while True:
        if c == _LBRACKET and at(q) == ord(":"):
            err = 0
            while c == _LBRACKET and at(q) == ord(":"):
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


def _match(name: bytes, pat: list[int], start: int, end: int) -> bool:
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


async def _globexp1(walker: _Walker, pattern: list[int]) -> None:
    """Expand the first ``{...}`` (GLOB_BRACE), or glob the pattern."""
    if pattern == [_LBRACE, _RBRACE]:
        await walker.glob0(pattern)
    elif _LBRACE in pattern:
        await _globexp2(walker, pattern.index(_LBRACE), pattern)
    else:
        await walker.glob0(pattern)


def _skip_bracket(pattern: list[int], index: int) -> int:
    """From a ``[``, return the index of its ``]``, or *index* if none."""
    end = index + 1
    while end < len(pattern) and pattern[end] != _RBRACKET:
        end += 1
    return index if end >= len(pattern) else end


async def _globexp2(walker: _Walker, brace: int, pattern: list[int]
                    ) -> None:
    """Expand the brace at *brace*, one alternative at a time.

    As glob.c: unbalanced braces glob only the text before the brace,
    and a ``[`` inside an alternative drops the text before it.
    """
    prefix = pattern[:brace]
    depth = 0
    close = brace + 1
    while close < len(pattern):
        c = pattern[close]
        if c == _LBRACKET:
            close = _skip_bracket(pattern, close)
        elif c == _LBRACE:
            depth += 1
        elif c == _RBRACE:
            if depth == 0:
                break
            depth -= 1
        close += 1
    if depth != 0 or close >= len(pattern):
        await walker.glob0(prefix)
        return
    rest = pattern[close + 1:]
    depth = 0
    alt_start = index = brace + 1
    while index <= close:
        c = pattern[index]
        if c == _LBRACKET:
            alt_start = index
            index = _skip_bracket(pattern, index)
        elif c == _LBRACE:
            depth += 1
        elif c == _RBRACE and depth:
            depth -= 1
        elif c in (_RBRACE, _COMMA) and not depth:
            await _globexp1(walker, prefix + pattern[alt_start:index] + rest)
            alt_start = index + 1
        index += 1


async def glob(pattern: str, fs: GlobFS, *, mark: bool = False,
               nocheck: bool = False, nosort: bool = False,
               brace: bool = False, on_error: ErrorHandler | None = None,
               mark_nocheck: bool = True, trust_scandir_stat: bool = False,
               concurrency: int = 64) -> list[tuple[str, Any]]:
    """Expand *pattern* on *fs*; return (path, stat or None) pairs.

    Flags as glob(3): *mark* appends ``/`` to directories (and links to
    them); *nocheck* returns the pattern (escapes removed, stat None)
    when nothing matches; *nosort* keeps listing order instead of byte
    order; *brace* expands ``{a,b}``.  Real matches always carry a stat:
    the ``lstat`` result, or the ``stat`` one for a link under *mark*.

    *on_error* gets (directory, exception) for each listing failure, in
    walk order; the glob goes on.  With *mark*, *nocheck* and
    *mark_nocheck*, a lone unmatched pattern naming a directory gets a
    ``/`` (sftp-glob.c's remote_glob; pass False to get plain glob(3),
    which sftp uses for local paths).  *trust_scandir_stat* takes a
    final component's stat from ``scandir`` instead of an ``lstat``.
    Up to *concurrency* file-system calls run at once; the result is the
    same as a sequential walk.
    """
    raw_length = len(pattern.encode(*_ENCODING).split(b"\0")[0])
    if raw_length >= PATH_MAX:
        return []
    walker = _Walker(fs, mark, nocheck, nosort, trust_scandir_stat,
                     on_error, asyncio.Semaphore(max(1, concurrency)),
                     max(1, concurrency))
    protected = _protect(pattern.split("\0")[0])
    if brace:
        await _globexp1(walker, protected)
    else:
        await walker.glob0(protected)
    results = [(_decode(path), st) for path, st in walker.paths]
    if mark and nocheck and mark_nocheck:
        results = await _mark_nocheck(fs, results)
    return results


async def _mark_nocheck(fs: GlobFS, results: list[tuple[str, Any]]
                        ) -> list[tuple[str, Any]]:
    """Append ``/`` to a lone NOCHECK result that names a directory."""
    if len(results) != 1:
        return results
    path, st = results[0]
    if st is not None or not path or path.endswith("/"):
        return results
    target = await fs.stat(path)
    if target is not None and fs.is_dir(target):
        return [(path + "/", None)]
    return results


def match_count(results: list[tuple[str, Any]]) -> int:
    """Return glob(3)'s gl_matchc: the results that really matched."""
    return sum(1 for _path, st in results if st is not None)


class LocalGlobFS:
    """A :class:`GlobFS` over the local file system (``os`` calls).

    ``scandir`` lists ``.`` and ``..`` first, as readdir(3) does, then
    the names in directory order; stats are ``os.stat_result``.
    """

    async def scandir(self, path: str) -> list[tuple[str, Any]]:
        """List *path* like readdir(3)."""
        names = [".", ".."] + os.listdir(path)
        return [(name, None) for name in names]

    async def lstat(self, path: str) -> Any | None:
        """``os.lstat``, or None on failure."""
        try:
            return os.lstat(path)
        except (OSError, ValueError):
            return None

    async def stat(self, path: str) -> Any | None:
        """``os.stat``, or None on failure."""
        try:
            return os.stat(path)
        except (OSError, ValueError):
            return None

    def is_dir(self, st: Any) -> bool:
        """Return whether *st* is a directory."""
        return stat_mod.S_ISDIR(st.st_mode)

    def is_symlink(self, st: Any) -> bool:
        """Return whether *st* is a symbolic link."""
        return stat_mod.S_ISLNK(st.st_mode)
