"""The ``ls`` command: sftp's ``do_ls_dir`` and ``do_globbed_ls``.

Column arithmetic is done, as in sftp, on the raw byte lengths of names,
and each padded cell is escaped afterwards (sftp pads with ``%-*s`` and
then ``mprintf`` escapes the result): :mod:`psftp_shell.shell.listing` does
both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from psftp_shell.core.errors import CommandError
from psftp_shell.core.paths import make_absolute_glob, path_append, path_strip
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.shell.context import Invocation, Shell
from psftp_shell.shell.listing import (
    columns,
    long_line,
    name_len,
    seconds_now,
    sort_entries,
)


@dataclass(slots=True)
class LsFlags:
    """The view and sort chosen by ``ls`` flags (sftp's ``lflag``)."""

    long: bool = False
    short: bool = False      # -1
    numeric: bool = False
    human: bool = False
    all: bool = False
    sort: str = "name"       # name, size, mtime or none
    reverse: bool = False

    @classmethod
    def parse(cls, letters: str) -> LsFlags:
        """Apply flag letters in order, with sftp's overrides."""
        f = cls()
        for c in letters:
            if c == "1":
                f.long = f.numeric = f.human = False
                f.short = True
            elif c == "S":
                f.sort = "size"
            elif c == "a":
                f.all = True
            elif c == "f":
                f.sort = "none"
            elif c == "h":
                f.human = True
            elif c == "l":
                f.short, f.long = False, True
            elif c == "n":
                f.short, f.long, f.numeric = False, True, True
            elif c == "r":
                f.reverse = True
            elif c == "t":
                f.sort = "mtime"
        return f


def terminal_width() -> int:
    """The width sftp uses: stdin's terminal, else 80."""
    try:
        return os.get_terminal_size(0).columns
    except OSError:
        return 80


def _write_lines(sh: Shell, lines: list[str]) -> None:
    sh.out.write("".join(line + "\n" for line in lines))


def _long(sh: Shell, name: str, attrs: Attrs, flags: LsFlags) -> str:
    remote = sh.remote
    return long_line(name, attrs, user=remote.user_name(attrs.uid),
                     group=remote.group_name(attrs.gid), human=flags.human,
                     now=seconds_now())


async def ls_dir(sh: Shell, path: str, strip: str | None,
                 flags: LsFlags) -> None:
    """List the directory *path*, names shown with *strip* removed."""
    names = await sh.remote.readdir(path,
                                    interrupted=lambda: sh.interrupted)
    pairs = [(n.filename, n.attrs) for n in names]
    owner = {id(pair): name for pair, name in zip(pairs, names, strict=True)}
    entries = [(pair[0], owner[id(pair)]) for pair in sort_entries(
        pairs, key=flags.sort, reverse=flags.reverse)]
    client = sh.remote.client
    formatted = flags.numeric or flags.human or client.has_extension(
        "users-groups-by-id@openssh.com")
    if flags.long and formatted:
        # sftp 9.2 shows names even with -n when the server has them
        await sh.remote.lookup_names([n.attrs for n in names])
    shown: list[str] = []
    for name, entry in entries:
        if sh.interrupted:
            break
        if name.startswith(".") and not flags.all:
            continue
        fname = path_strip(path_append(path, name), strip)
        if not flags.long:
            shown.append(fname)
        elif formatted:
            _write_lines(sh, [_long(sh, fname, entry.attrs, flags)])
        else:
            sh.out.line(entry.longname)
    if not flags.long:
        longest = max((name_len(n.filename) for n in names
                       if flags.all or not n.filename.startswith(".")),
                      default=0)
        width = 0 if flags.short else terminal_width()
        _write_lines(sh, columns(shown, width=width, max_len=longest
                                 + name_len(path_strip(path, strip))))


async def ls_glob(sh: Shell, pattern: str, strip: str | None,
                  flags: LsFlags) -> None:
    """List the matches of a glob; a single directory lists its content."""
    matches = await sh.remote.glob(pattern, mark=True, nosort=True,
                                   brace=True)
    if not matches:
        raise CommandError(f'Can\'t ls: "{pattern}" not found')
    if sh.interrupted:
        return
    first = matches[0][1]
    if len(matches) == 1 and isinstance(first, Attrs) and first.is_dir():
        await ls_dir(sh, matches[0][0], strip, flags)
        return
    matches = sort_entries(matches, key=flags.sort, reverse=flags.reverse)
    if flags.long:
        await sh.remote.lookup_names(
            [a for _, a in matches if isinstance(a, Attrs)])
    shown: list[str] = []
    for path, attrs in matches:
        if sh.interrupted:
            break
        fname = path_strip(path, strip)
        if not flags.long:
            shown.append(fname)
        elif not isinstance(attrs, Attrs):
            sh.out.error(f"no stat information for {fname}")
        else:
            _write_lines(sh, [_long(sh, fname, attrs, flags)])
    if not flags.long:
        width = 0 if flags.short else terminal_width()
        longest = max(name_len(p) for p, _ in matches)
        _write_lines(sh, columns(shown, width=width, max_len=longest))


async def ls(sh: Shell, inv: Invocation) -> None:
    """``ls [-1afhlnrSt] [path]``; with no path, errors are ignored."""
    flags = LsFlags.parse(inv.flags)
    path = inv.arg(0)
    cwd = sh.remote.cwd
    if path is None:
        try:
            await ls_dir(sh, cwd, cwd, flags)
        except CommandError as exc:
            if str(exc):
                sh.out.error(str(exc))
        return
    strip = None if path.startswith("/") else cwd
    await ls_glob(sh, make_absolute_glob(path, cwd), strip, flags)
