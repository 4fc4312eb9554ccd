"""The text of sftp's ``ls``, ``ls -l``, ``df`` and progress-meter fields.

Pure presentation: these functions turn names and attributes into the
exact lines OpenSSH 9.2's sftp prints (sftp.c ``do_ls_dir``,
``do_globbed_ls``, ``do_df``; sftp-common.c ``ls_file``; progressmeter.c;
openbsd-compat ``strmode`` and ``fmt_scaled``).  Functions that print
names take them *raw* (lone surrogates for undecodable bytes) and escape
them themselves, because sftp measures and pads the raw bytes first and
escapes afterwards; passing an already escaped name is harmless (the
escaping is idempotent) but then the widths are those of the escaped text.
"""

from __future__ import annotations

import stat as _stat
import struct
import sys
import time
from collections.abc import Sequence
from typing import TypeVar

from psftp_shell.core.escape import to_bytes, vis_name
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.wire import StatVFS

_U64 = (1 << 64) - 1
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HALF_YEAR = 365 * 24 * 60 * 60 // 2
_CLOCK_REALTIME_COARSE = 5  # Linux's clock id; glibc's time(2) reads it
_LS_BUF = 1024  # ls_file's snprintf buffer, NUL included
_SCALE_CHARS = "BKMGTPE"
_SCALE_FACTORS = tuple(1024 ** i for i in range(len(_SCALE_CHARS)))
_METER_UNITS = " KMGT"
_STALL_TIME = 5
SORT_KEYS = frozenset({"name", "size", "mtime", "none"})
_Entry = TypeVar("_Entry", bound="tuple[str, Attrs | None]")

_FILE_TYPES = {
    _stat.S_IFDIR: "d", _stat.S_IFCHR: "c", _stat.S_IFBLK: "b",
    _stat.S_IFREG: "-", _stat.S_IFLNK: "l", _stat.S_IFSOCK: "s",
    _stat.S_IFIFO: "p",
}


# -- strmode, fmt_scaled, dates -----------------------------------------------

def _triplet(mode: int, read: int, write: int, execute: int, special: int,
             letters: str) -> str:
    """One rwx group; *letters* is (exec+special, special alone)."""
    out = "r" if mode & read else "-"
    out += "w" if mode & write else "-"
    both = mode & (execute | special)
    if both == execute | special:
        out += letters[0]
    elif both == special:
        out += letters[1]
    else:
        out += "x" if both else "-"
    return out


def strmode(mode: int) -> str:
    """BSD ``strmode``: ``-rw-r--r--`` plus the trailing space (11 chars).

    Set-id bits show as ``s``/``S``, the sticky bit as ``t``/``T``; an
    unknown file type as ``?``.
    """
    kind = _FILE_TYPES.get(_stat.S_IFMT(mode), "?")
    return (kind
            + _triplet(mode, _stat.S_IRUSR, _stat.S_IWUSR, _stat.S_IXUSR,
                       _stat.S_ISUID, "sS")
            + _triplet(mode, _stat.S_IRGRP, _stat.S_IWGRP, _stat.S_IXGRP,
                       _stat.S_ISGID, "sS")
            + _triplet(mode, _stat.S_IROTH, _stat.S_IWOTH, _stat.S_IXOTH,
                       _stat.S_ISVTX, "tT")
            + " ")


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def fmt_scaled(n: int) -> str:
    """OpenBSD ``fmt_scaled``: ``0B``, ``6B``, ``4.0K``, ``25.2G``, ``252G``.

    Powers of 1024; one decimal while the scaled value is below 100,
    else a whole number rounded half up.  *n* is a C ``long long``; the
    one value it cannot format (``-2**63``) gives ``error``.
    """
    if n == -(1 << 63):
        return "error"
    abval = abs(n)
    unit = 0
    number = n
    fract = 0
    for unit, factor in enumerate(_SCALE_FACTORS):
        if abval // 1024 < factor:
            number = _cdiv(n, factor)
            if unit:
                fract = abval % factor // _SCALE_FACTORS[unit - 1]
            break
    fract = (10 * fract + 512) // 1024
    if fract >= 10:
        number += 1 if number >= 0 else -1
        fract = 0
    if number == 0:
        return "0B"
    if unit == 0 or abs(number) >= 100:
        if fract >= 5:
            number += 1 if number >= 0 else -1
        return f"{number}{_SCALE_CHARS[unit]}"
    return f"{number}.{fract}{_SCALE_CHARS[unit]}"


def seconds_now() -> int:
    """Now in whole seconds, from the clock sftp's ``time(NULL)`` reads.

    On Linux that is the coarse clock, which can be a tick behind the
    stamp of a file written a moment ago: sftp then sees that mtime in
    the future and shows the year, and so must we.
    """
    if sys.platform.startswith("linux"):
        try:
            return int(time.clock_gettime(_CLOCK_REALTIME_COARSE))
        except OSError:
            pass
    return int(time.time())


def format_date(mtime: int, now: float) -> str:
    """The date column: ``Nov 24 21:17`` or ``Nov 24  2021``.

    The time form is used when ``now - 15768000 < mtime <= now`` (half a
    year, *now* truncated to whole seconds as ``time(NULL)``), else the
    year form, future dates included.  Client local time, C-locale month
    names whatever the process locale.
    """
    try:
        tm = time.localtime(mtime)
    except (OverflowError, OSError, ValueError):
        return ""  # localtime() failed: sftp prints an empty date
    head = f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d}"
    whole_now = int(now)
    if whole_now - _HALF_YEAR < mtime <= whole_now:
        return f"{head} {tm.tm_hour:02d}:{tm.tm_min:02d}"
    return f"{head}  {tm.tm_year}"


# -- ls -l --------------------------------------------------------------------

def _as_off_t(value: int) -> int:
    """Reinterpret an unsigned 64-bit size as C's signed ``off_t``."""
    value &= _U64
    return value - (1 << 64) if value >> 63 else value


def _cut_bytes(text: str, limit: int) -> str:
    """Cut *text* to at most *limit* bytes, as snprintf would."""
    data = to_bytes(text)
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "surrogateescape")


def _pad(text: str, width: int) -> str:
    """``%-*s``: pad *text* with spaces to *width* bytes."""
    return text + " " * max(0, width - len(to_bytes(text)))


def long_line(name: str, attrs: Attrs, *, user: str | None,
              group: str | None, human: bool, now: float,
              remote: bool = True, nlink: int = 1,
              utf8: bool | None = None) -> str:
    """One ``ls -l`` line as sftp's ``ls_file`` makes it, escaped.

    ``"%s %3s %-*s %-*s %8llu %s %s"``: mode, links (``?`` when
    *remote*, else *nlink*), user and group left-aligned in at least 8
    (numeric ids when *user*/*group* is ``None``), size (``fmt_scaled``
    in ``%8s`` when *human*), date, name.  Missing attributes count as 0
    like sftp's ``attrib_to_stat``.  The line is cut to 1023 bytes as
    ``ls_file``'s buffer does, then escaped as ``mprintf`` escapes it.
    """
    size = attrs.size or 0
    if user is None:
        user = str((attrs.uid or 0) & 0xFFFFFFFF)
    if group is None:
        group = str((attrs.gid or 0) & 0xFFFFFFFF)
    links = "?" if remote else str(nlink)
    if human:
        size_text = f"{fmt_scaled(_as_off_t(size)):>8}"
    else:
        size_text = f"{size & _U64:8d}"
    date = format_date(attrs.mtime or 0, now)
    line = (f"{strmode(attrs.permissions or 0)} {links:>3} "
            f"{_pad(user, 8)} {_pad(group, 8)} "
            f"{size_text} {date} {name}")
    return vis_name(_cut_bytes(line, _LS_BUF - 1), utf8=utf8)


# -- sorting and the short listing --------------------------------------------

def _size(entry: tuple[str, Attrs | None]) -> int:
    attrs = entry[1]
    return (attrs.size or 0) if attrs is not None else 0


def _mtime(entry: tuple[str, Attrs | None]) -> int:
    attrs = entry[1]
    return (attrs.mtime or 0) if attrs is not None else 0


def sort_entries(entries: Sequence[_Entry], *, key: str,
                 reverse: bool) -> list[_Entry]:
    """Order ``ls`` entries as sftp's ``qsort`` (glibc: stable) does.

    *key* ``name``: byte order of the raw name (``strcmp``); ``size``:
    largest first; ``mtime``: newest first; ``none`` (``-f``): server
    order, *reverse* ignored.  *reverse* flips the comparison only, so
    ties keep the server's order either way.  Directory listings pass
    the bare file names; glob listings pass the full matched paths (what
    sftp compares), which orders the same when a common prefix is
    stripped for display.  Missing attributes (``None``, a glob match
    without stat), sizes and times count as 0, as sftp's zeroed stat.
    """
    if key not in SORT_KEYS:
        raise ValueError(f"unknown ls sort key {key!r}")
    items = list(entries)
    if key == "none":
        return items
    if key == "name":
        return sorted(items, key=lambda e: to_bytes(e[0]), reverse=reverse)
    by = _size if key == "size" else _mtime
    return sorted(items, key=by, reverse=not reverse)


def name_len(name: str) -> int:
    """The length sftp measures for a name: its raw bytes (``strlen``)."""
    return len(to_bytes(name))


def columns(names: Sequence[str], *, width: int, max_len: int,
            utf8: bool | None = None) -> list[str]:
    """The lines of a short (multi-column) listing, row-major.

    ``columns = max(1, width // (max_len + 2))`` and
    ``colspace = width // columns``; each name is padded with ``%-*s`` to
    *colspace* bytes of its raw form, then escaped (so an escaped control
    character widens its cell, a multibyte character narrows it, exactly
    as in sftp).  Trailing spaces stay.  *width* 0 gives one unpadded
    name per line.  *width* is the terminal's columns, or 80 when stdin
    is not a tty.

    *max_len* (``m`` in sftp.c) is decided by the caller, measured with
    :func:`name_len`:

    * directory listing: the longest name shown (dot files only count
      with ``-a``) plus ``name_len`` of the directory prefix shown before
      the names *with* its trailing slash (``ls sub``: ``len("sub/")``;
      ``ls /abs/dir``: ``len("/abs/dir/")``; the working directory: 0);
      the spec says "without its /", the 9.2 binary counts it;
    * glob/file listing: the longest *full absolute* matched path, even
      though the printed names are relative.
    """
    if width <= 0:
        return [vis_name(n, utf8=utf8) for n in names]
    ncols = max(1, width // (max_len + 2))
    colspace = min(width // ncols, width)
    cells = [vis_name(_pad(n, colspace), utf8=utf8) for n in names]
    return ["".join(cells[i:i + ncols])
            for i in range(0, len(cells), ncols)]


# -- df -----------------------------------------------------------------------

def _capacity(total: int, free: int) -> str:
    if total == 0:
        return "ERR"
    return f"{(100 * ((total - free) & _U64) & _U64) // total:3d}%"


def df_lines(st: StatVFS, *, human: bool, inodes: bool) -> list[str]:
    """The two lines of ``df``, ``df -h`` or ``df -i`` (``-i`` wins).

    The capacity column is ``ERR`` when the total (blocks, or files for
    ``-i``) is 0.  Arithmetic wraps at 64 bits as in sftp.c.
    """
    if inodes:
        used = (st.files - st.ffree) & _U64
        return ["     Inodes        Used       Avail      (root)    "
                "%Capacity",
                f"{st.files:11d} {used:11d} {st.favail:11d} "
                f"{st.ffree:11d}         {_capacity(st.files, st.ffree)}"]
    fr = st.frsize
    total = st.blocks * fr & _U64
    used = (st.blocks - st.bfree) * fr & _U64
    avail = st.bavail * fr & _U64
    root = st.bfree * fr & _U64
    cap = _capacity(st.blocks, st.bfree)
    if human:
        fields = " ".join(f"{fmt_scaled(_as_off_t(v)):>7}B"
                          for v in (total, used, avail, root))
        return ["    Size     Used    Avail   (root)    %Capacity",
                f"{fields}         {cap}"]
    fields = " ".join(f"{v // 1024:12d}" for v in (total, used, avail, root))
    return ["        Size         Used        Avail       (root)    "
            "%Capacity",
            f"{fields}         {cap}"]


# -- progress meter fields ----------------------------------------------------

def format_meter_size(nbytes: int) -> str:
    """The meter's amount field: ``   0  ``, ``9999  ``, ``  10KB``.

    Divided by 1024 (rounded) while >= 10000, ``%4lld`` then the unit
    and ``B`` (or two spaces when no unit applied).
    """
    unit = 0
    while nbytes >= 10000 and _METER_UNITS[unit] != "T":
        nbytes = (nbytes + 512) // 1024
        unit += 1
    suffix = "B" if unit else " "
    return f"{nbytes:4d}{_METER_UNITS[unit]}{suffix}"


def format_meter_rate(bytes_per_second: int) -> str:
    """The meter's rate field without ``/s``: ``  0.0KB``, `` 68.2KB``.

    Always at least KB; one decimal, rounded, as progressmeter.c's
    ``format_rate``.
    """
    value = bytes_per_second * 100
    unit = 0
    while value >= 100 * 1000 and _METER_UNITS[unit] != "T":
        value = (value + 512) // 1024
        unit += 1
    if unit == 0:
        unit = 1
        value = (value + 512) // 1024
    return (f"{(value + 5) // 100:3d}.{(value + 5) // 10 % 10}"
            f"{_METER_UNITS[unit]}B")


def format_meter_eta(*, bytes_left: int, bytes_per_second: int,
                     elapsed: float, stalled: float) -> str:
    """The meter's 11-character ETA field.

    ``- stalled -`` after 5 s (*stalled*) without progress,
    ``  --:-- ETA`` while the rate is 0, ``  MM:SS ETA`` or
    ``H:MM:SS ETA`` from the bytes left and the rate, and once done
    (no bytes left) the *elapsed* time followed by four spaces.
    """
    if stalled >= _STALL_TIME:
        return "- stalled -"
    if bytes_per_second == 0 and bytes_left:
        return "  --:-- ETA"
    if bytes_left > 0:
        seconds = bytes_left // bytes_per_second
    else:
        seconds = int(elapsed)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        text = f"{hours}:{minutes:02d}:{seconds:02d}"
    else:
        text = f"  {minutes:02d}:{seconds:02d}"
    return text + (" ETA" if bytes_left > 0 else "    ")


def _f32(value: float) -> float:
    """Round to the nearest C ``float``."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def meter_percent(current: int, total: int) -> int:
    """The meter's percentage: 100 when *total* is 0 or reached.

    Computed in single precision and truncated, as progressmeter.c does.
    """
    if total == 0 or current == total:
        return 100
    return int(_f32(_f32(_f32(current) / _f32(total)) * 100))
