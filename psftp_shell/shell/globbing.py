"""OpenBSD glob(3), as OpenSSH's sftp uses it, over any file system.

A port of openbsd-compat/glob.c (the implementation the sftp binary uses
for both the remote and the local glob), including its quirks, made
asynchronous and pluggable through :class:`GlobFS`.  Paths are ``str``
whose undecodable bytes are lone surrogates (``surrogateescape``); the
matching and the sorting work on the encoded bytes, as in C.

Only pattern segments with magic characters are listed (``scandir``);
literal segments are not, and the final path is checked with ``lstat``
(plus ``stat`` for GLOB_MARK on symbolic links), as glob.c does.
The pattern language itself (compiling, matching a segment) is in
:mod:`.glob_pattern`; this module walks, expands braces and sorts.
"""

from __future__ import annotations

import asyncio
import os
import stat as stat_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from psftp_shell.shell.glob_pattern import (
    COMMA,
    DOT,
    ENCODING,
    LBRACE,
    LBRACKET,
    M_QUOTE,
    RBRACE,
    SEP,
    compile_pattern,
    match,
    protect,
    skip_bracket,
)

PATH_MAX = 4096
"""Patterns this long (in bytes) or longer match nothing, as in glob.c."""


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
        compiled = compile_pattern(pattern, self.nocheck)
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
            while end < len(pat) and pat[end] != SEP:
                anymeta = anymeta or bool(pat[end] & M_QUOTE)
                end += 1
            if anymeta:
                return await self.glob3(path, pat, index, end)
            path += bytes(pat[index:end])
            index = end
            while index < len(pat) and pat[index] == SEP:
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
            raw = name.encode(*ENCODING)
            if raw.startswith(b".") and pat[start] != DOT:
                continue
            if not match(raw, pat, start, end):
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
    return raw.decode(*ENCODING)


async def _globexp1(walker: _Walker, pattern: list[int]) -> None:
    """Expand the first ``{...}`` (GLOB_BRACE), or glob the pattern."""
    if pattern == [LBRACE, RBRACE]:
        await walker.glob0(pattern)
    elif LBRACE in pattern:
        await _globexp2(walker, pattern.index(LBRACE), pattern)
    else:
        await walker.glob0(pattern)


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
        if c == LBRACKET:
            close = skip_bracket(pattern, close)
        elif c == LBRACE:
            depth += 1
        elif c == RBRACE:
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
        if c == LBRACKET:
            alt_start = index
            index = skip_bracket(pattern, index)
        elif c == LBRACE:
            depth += 1
        elif c == RBRACE and depth:
            depth -= 1
        elif c in (RBRACE, COMMA) and not depth:
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
    raw_length = len(pattern.encode(*ENCODING).split(b"\0")[0])
    if raw_length >= PATH_MAX:
        return []
    walker = _Walker(fs, mark, nocheck, nosort, trust_scandir_stat,
                     on_error, asyncio.Semaphore(max(1, concurrency)),
                     max(1, concurrency))
    protected = protect(pattern.split("\0")[0])
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
