"""ls/df/progress formatting, checked against OpenSSH's sftp output."""

from __future__ import annotations

import ctypes
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.wire import StatVFS
from psftp_shell.shell.listing import (
    columns,
    df_lines,
    fmt_scaled,
    format_date,
    format_meter_eta,
    format_meter_rate,
    format_meter_size,
    long_line,
    meter_percent,
    name_len,
    seconds_now,
    sort_entries,
    strmode,
)

NOW = int(time.time())
HALF_YEAR = 15768000
DAY = 86400
# name -> (size, mode, mtime); sizes cover fmt_scaled's rounding edges
# (sparse files), mtimes both sides of the six-month rule, with an hour
# of margin so that sftp's clock and ours agree.
FILES = {
    "empty": (0, 0o644, NOW - 60),
    "six.txt": (6, 0o600, NOW - DAY),
    "k1023": (1023, 0o755, NOW - HALF_YEAR + 3600),
    "k1024": (1024, 0o4755, NOW - HALF_YEAR - 3600),
    "k1535.txt": (1535, 0o2750, NOW - 200 * DAY),
    "k1536": (1536, 0o4644, NOW + 30 * DAY),
    "k102399": (102399, 0o2640, 0),
    "k102860": (102860, 0o640, NOW - 2 * DAY),
    "k102861": (102861, 0o640, NOW - 2 * DAY),
    "k102400.txt": (102400, 0o1777, 2 ** 31 + 100),
    "a-rather-longer-file-name.bin": (101887, 0o1776, NOW - 400 * DAY),
    "m5": (5 * 2 ** 20, 0o444, NOW - 3 * DAY),
    "g25": (27058293965, 0o640, NOW - 10 * DAY),
    "g252": (270582939648, 0o000, NOW - 1000 * DAY),
}


def vfs(path: Path) -> StatVFS:
    st = os.statvfs(path)
    return StatVFS(st.f_bsize, st.f_frsize, st.f_blocks, st.f_bfree,
                   st.f_bavail, st.f_files, st.f_ffree, st.f_favail,
                   st.f_fsid, st.f_flag, st.f_namemax)


def run_sftp(sftp_bin: str, server: str, cwd: Path, script: str) -> str:
    env = dict(os.environ, LC_ALL="C.UTF-8")
    result = subprocess.run([sftp_bin, "-D", server, "-b", "-"],
                            input=script.encode(), capture_output=True,
                            cwd=cwd, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "surrogateescape")


def split_commands(out: str) -> dict[str, list[str]]:
    """Map each echoed batch command to the lines it printed."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.split("\n")[:-1]:
        if line.startswith("sftp> "):
            current = blocks.setdefault(line[6:], [])
        else:
            current.append(line)
    return blocks


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("listing")
    root = parent / "tree"
    root.mkdir()
    for name, (size, mode, mtime) in FILES.items():
        path = root / name
        with open(path, "wb") as f:
            f.truncate(size)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    (root / "sub").mkdir()
    # Longest name 11: 80 // (11 + 4 + 2) = 4 columns with the prefix
    # "sub/" counted (as sftp does), 5 without the slash.
    for name in ("x.txt", "longer-name", "y", "z", "w", "v"):
        (root / "sub" / name).write_bytes(b"sub")
    (root / "sub").chmod(0o3755)
    os.utime(root / "sub", (NOW - 7200, NOW - 7200))
    os.symlink("six.txt", root / "link")
    os.mkfifo(root / "fifo")
    os.utime(root / "link", (NOW - 5, NOW - 5), follow_symlinks=False)
    (root / ".hidden").write_bytes(b"h")
    # Nothing listed keeps a fresh stamp (``ls -la`` shows ``.`` and
    # ``..``): this kernel's stamp of a file written a moment ago can be
    # a second ahead of time(2), and sftp would show it with its year.
    for path in (root / ".hidden", root, parent):
        os.utime(path, (NOW - 120, NOW - 120))
    return root


def entries_in(root: Path, hidden: bool = False
               ) -> list[tuple[str, Attrs]]:
    """Entries in readdir order, i.e. the order sftp-server sends them.

    With *hidden*, ``.`` and ``..`` come first: only the name sort is
    used then, so their place in the server's order does not matter.
    """
    names = os.listdir(root)
    if hidden:
        names = [".", "..", *names]
    return [(n, Attrs.from_stat(os.lstat(root / n)))
            for n in names if hidden or not n.startswith(".")]


LS_SORTS = {
    "ls -1": ("name", False), "ls -1r": ("name", True),
    "ls -1S": ("size", False), "ls -1Sr": ("size", True),
    "ls -1t": ("mtime", False), "ls -1tr": ("mtime", True),
    "ls -1f": ("none", False), "ls -1fr": ("none", True),
    "ls -1tS": ("size", False), "ls -1St": ("mtime", False),
}


def test_sorting_matches_sftp(tmp_path: Path, sftp_bin: str,
                              sftp_server_bin: str) -> None:
    # Equal sizes and times: ties must keep the server's order.
    for i, name in enumerate(["d", "b", "e", "a", "c", "f", "h", "g"]):
        (tmp_path / name).write_bytes(b"x" * (i % 2))
        os.utime(tmp_path / name, (NOW - 100 * (i % 3),) * 2)
    blocks = split_commands(run_sftp(
        sftp_bin, sftp_server_bin, tmp_path, "\n".join(LS_SORTS) + "\n"))
    for command, (key, reverse) in LS_SORTS.items():
        expected = [n for n, _ in sort_entries(
            entries_in(tmp_path), key=key, reverse=reverse)]
        assert blocks[command] == expected, command


def test_sort_entries_missing_attributes() -> None:
    entries: list[tuple[str, Attrs | None]] = [
        ("a", None), ("b", Attrs(size=5, mtime=9)), ("c", Attrs()),
        ("d", Attrs(size=0, mtime=0))]
    assert [n for n, _ in sort_entries(entries, key="size",
                                       reverse=False)] == ["b", "a", "c", "d"]
    assert [n for n, _ in sort_entries(entries, key="mtime",
                                       reverse=True)] == ["a", "c", "d", "b"]
    assert sort_entries(entries, key="none", reverse=True) == entries
    with pytest.raises(ValueError):
        sort_entries(entries, key="bogus", reverse=False)


@pytest.mark.parametrize("command", ["ls -l", "ls -lh", "ls -lSr",
                                     "ls -la", "ls -ltn"])
def test_long_listing_matches_sftp(tree: Path, sftp_bin: str,
                                   sftp_server_bin: str,
                                   command: str) -> None:
    flags = command[4:]
    key = "size" if "S" in flags else "mtime" if "t" in flags else "name"
    out = run_sftp(sftp_bin, sftp_server_bin, tree, command + "\n")
    lines = split_commands(out)[command]
    now = seconds_now()
    # users-groups-by-id gives names (even with -n in 9.2): take them
    # from what sftp printed.
    user, group = lines[0].split()[2:4]
    entries = sort_entries(entries_in(tree, hidden="a" in flags),
                           key=key, reverse="r" in flags)
    expected = [long_line(n, a, user=user, group=group,
                          human="h" in flags, now=now, utf8=True)
                for n, a in entries]
    assert lines == expected


def test_short_listings_match_sftp(tree: Path, sftp_bin: str,
                                   sftp_server_bin: str) -> None:
    commands = ["ls", "ls -a", "ls sub", f"ls {tree}/sub", "ls *.txt",
                "ls k1*", "ls -S"]
    blocks = split_commands(run_sftp(sftp_bin, sftp_server_bin, tree,
                                     "\n".join(commands) + "\n"))
    plain = entries_in(tree)
    names = [n for n, _ in sort_entries(plain, key="name", reverse=False)]
    longest = max(name_len(n) for n in names)
    assert blocks["ls"] == columns(names, width=80, max_len=longest)
    with_dots = [n for n, _ in sort_entries(
        entries_in(tree, hidden=True), key="name", reverse=False)]
    assert blocks["ls -a"] == columns(
        with_dots, width=80,
        max_len=max(name_len(n) for n in with_dots))
    by_size = [n for n, _ in sort_entries(plain, key="size", reverse=False)]
    assert blocks["ls -S"] == columns(by_size, width=80, max_len=longest)
    # A directory listing counts the shown prefix, with the slash that
    # glob's GLOB_MARK gave it, in the widest name.
    subs = sorted(os.listdir(tree / "sub"))
    sub_m = max(map(len, subs))
    assert blocks["ls sub"] == columns(
        [f"sub/{n}" for n in subs], width=80, max_len=sub_m + len("sub/"))
    assert blocks[f"ls {tree}/sub"] == columns(
        [f"{tree}/sub/{n}" for n in subs], width=80,
        max_len=sub_m + len(f"{tree}/sub/"))
    # A glob listing counts the full absolute paths.
    for pattern, match in (("*.txt", ".txt"), ("k1*", "k1")):
        found = sorted(n for n in names
                       if (n.endswith(match) if match == ".txt"
                           else n.startswith(match)))
        assert blocks[f"ls {pattern}"] == columns(
            found, width=80, max_len=max(len(f"{tree}/{n}") for n in found))


def test_columns_layout() -> None:
    names = ["a", "bb", "ccc", "dddd", "e"]
    # m = 4: 80 // 6 = 13 columns of 6; one row, trailing spaces kept.
    assert columns(names, width=80, max_len=4) == [
        "a     bb    ccc   dddd  e     "]
    # 20 // 6 = 3 columns of 6 (20 // 3), row-major.
    assert columns(names, width=20, max_len=4) == [
        "a     bb    ccc   ", "dddd  e     "]
    # Too narrow: one column, still padded to the whole width.
    assert columns(["abc"], width=3, max_len=10) == ["abc"]
    assert columns(["x"], width=5, max_len=10) == ["x    "]
    assert columns(names, width=0, max_len=4) == names
    # Padding counts raw bytes; escaping happens afterwards.
    assert columns(["\u00e9", "\x1b"], width=8, max_len=2, utf8=False) == [
        "\\303\\251  \\033   "]


def test_df_matches_sftp(tmp_path: Path, sftp_bin: str,
                         sftp_server_bin: str) -> None:
    commands = ["df", "df -h", "df -i", "df -hi", "df /proc", "df -h /proc",
                "df -i /proc"]
    script = "\n".join(commands) + "\n"
    for _attempt in range(30):     # a busy disk changes between reads
        before = vfs(tmp_path)
        blocks = split_commands(run_sftp(sftp_bin, sftp_server_bin,
                                         tmp_path, script))
        if vfs(tmp_path) == before:
            break
    else:
        pytest.skip("the file system kept changing under the test")
    assert blocks["df"] == df_lines(before, human=False, inodes=False)
    assert blocks["df -h"] == df_lines(before, human=True, inodes=False)
    assert blocks["df -i"] == df_lines(before, human=False, inodes=True)
    assert blocks["df -hi"] == df_lines(before, human=True, inodes=True)
    proc = vfs(Path("/proc"))
    assert blocks["df /proc"] == df_lines(proc, human=False, inodes=False)
    assert blocks["df -h /proc"] == df_lines(proc, human=True, inodes=False)
    assert blocks["df -i /proc"] == df_lines(proc, human=False, inodes=True)
    assert blocks["df /proc"][1].endswith("         ERR")


def test_df_spec_examples() -> None:
    st = StatVFS(4096, 4096, 66053021, 59439759, 19984466, 100, 0, 7,
                 0, 0, 255)
    assert df_lines(st, human=False, inodes=False)[1] == (
        "   264212084     26453048     79937864    237759036          10%")
    lines = df_lines(st, human=True, inodes=False)
    assert lines[0] == "    Size     Used    Avail   (root)    %Capacity"
    assert lines[1] == (
        "   252GB   25.2GB   76.2GB    227GB          10%")
    assert df_lines(st, human=False, inodes=True)[1] == (
        "        100         100           7           0         100%")


def test_strmode() -> None:
    assert strmode(0o100644) == "-rw-r--r-- "
    assert strmode(0o104755) == "-rwsr-xr-x "
    assert strmode(0o104644) == "-rwSr--r-- "
    assert strmode(0o42750) == "drwxr-s--- "
    assert strmode(0o102640) == "-rw-r-S--- "
    assert strmode(0o41777) == "drwxrwxrwt "
    assert strmode(0o41776) == "drwxrwxrwT "
    assert strmode(0o644) == "?rw-r--r-- "
    types = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFCHR,
             stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK)
    for kind in types:
        for perm in range(0o10000):
            mode = kind | perm
            assert strmode(mode) == stat.filemode(mode) + " "


@pytest.mark.parametrize(("n", "text"), [
    (0, "0B"), (6, "6B"), (1023, "1023B"), (1024, "1.0K"),
    (1535, "1.5K"), (1536, "1.5K"), (1587, "1.5K"), (1588, "1.6K"),
    (4096, "4.0K"), (101887, "99.5K"), (102399, "100K"), (102400, "100K"),
    (102860, "100K"), (102861, "101K"), (5 * 2 ** 20, "5.0M"),
    (27058293965, "25.2G"), (270582939648, "252G"), (2 ** 63 - 1, "8.0E"),
    (-1536, "-1.5K"), (-(2 ** 63), "error"),
])
def test_fmt_scaled(n: int, text: str) -> None:
    assert fmt_scaled(n) == text


def test_format_date_six_month_rule() -> None:
    now = 1_700_000_000.7
    recent = time.localtime(1_700_000_000 - 3600)
    assert format_date(1_700_000_000 - 3600, now) == time.strftime(
        "%b %e %H:%M", recent)
    # The boundary: exactly six months old is the year form, one second
    # younger the time form; the future is always the year form.
    assert format_date(1_700_000_000 - HALF_YEAR, now).endswith(
        f"  {time.localtime(1_700_000_000 - HALF_YEAR).tm_year}")
    assert ":" in format_date(1_700_000_000 - HALF_YEAR + 1, now)
    assert ":" in format_date(1_700_000_000, now)
    assert ":" not in format_date(1_700_000_001, now)
    assert re.fullmatch(r"[A-Z][a-z]{2} [ 1-3]\d  \d{4}",
                        format_date(0, now))


def test_seconds_now_reads_the_clock_of_time_2() -> None:
    """sftp compares mtimes with time(NULL): ours must lie between two of
    its calls, across a second's edge too, where Linux's coarse clock
    (time's) is still a tick behind the fine one (``time.time()``)."""
    libc = ctypes.CDLL(None)
    libc.time.restype = ctypes.c_long
    libc.time.argtypes = [ctypes.c_void_p]
    start = libc.time(None)
    before = start
    while before == start:     # until time(2) has passed the next edge
        before = libc.time(None)
        ours = seconds_now()
        after = libc.time(None)
        assert before <= ours <= after


def test_format_date_pads_the_day_with_a_space() -> None:
    december = int(time.mktime((2020, 12, 5, 12, 0, 0, 0, 0, -1)))
    assert format_date(december, december + 60) == "Dec  5 12:00"
    assert format_date(december, december + 366 * DAY) == "Dec  5  2020"


def test_long_line_fields() -> None:
    attrs = Attrs(size=6, uid=0, gid=0, permissions=0o100644, mtime=0)
    line = long_line("a.txt", attrs, user="root", group="root",
                     human=False, now=1e9, utf8=True)
    assert line.startswith("-rw-r--r--    ? root     root            6 ")
    assert line.endswith(" a.txt")
    numeric = long_line("b", Attrs(size=5 * 2 ** 20, uid=1000, gid=4242,
                                   permissions=0o100600, mtime=0),
                        user=None, group=None, human=True, now=1e9,
                        utf8=True)
    assert numeric.startswith("-rw-------    ? 1000     4242         5.0M ")
    wide = long_line("c", Attrs(), user="a-long-user", group="g",
                     human=False, now=1e9, remote=False, nlink=12,
                     utf8=True)
    assert wide.startswith("?---------   12 a-long-user g        ")
    # The line is cut to ls_file's buffer before it is escaped.
    cut = long_line("n" * 2000 + "\x1b", attrs, user="u", group="g",
                    human=False, now=1e9, utf8=True)
    assert len(cut) == 1023


def test_meter_fields_spec_examples() -> None:
    assert format_meter_size(0) == "   0  "
    assert format_meter_size(6) == "   6  "
    assert format_meter_size(9999) == "9999  "
    assert format_meter_size(10000) == "  10KB"
    assert format_meter_size(5 * 2 ** 20) == "5120KB"
    assert format_meter_size(2 ** 60) == "1048576TB"
    assert format_meter_rate(0) == "  0.0KB"
    assert format_meter_rate(69837) == " 68.2KB"
    assert format_meter_rate(int(646.1 * 2 ** 20)) == "646.1MB"
    assert format_meter_rate(1023) == "  1.0KB"
    assert format_meter_eta(bytes_left=10, bytes_per_second=0,
                            elapsed=0.0, stalled=0) == "  --:-- ETA"
    assert format_meter_eta(bytes_left=0, bytes_per_second=0,
                            elapsed=0.4, stalled=0) == "  00:00    "
    assert format_meter_eta(bytes_left=7200 * 1000 + 1,
                            bytes_per_second=1000, elapsed=1,
                            stalled=0) == "2:00:00 ETA"
    assert format_meter_eta(bytes_left=125, bytes_per_second=1,
                            elapsed=1, stalled=0) == "  02:05 ETA"
    assert format_meter_eta(bytes_left=5, bytes_per_second=1,
                            elapsed=1, stalled=5) == "- stalled -"
    assert meter_percent(0, 0) == 100
    assert meter_percent(1, 3) == 33
    assert meter_percent(2 ** 40 - 1, 2 ** 40) == 100  # float rounding
    assert meter_percent(999, 1000) == 99


def test_meter_fields_match_sftp_pty(tmp_path: Path, sftp_bin: str,
                                     sftp_server_bin: str) -> None:
    pexpect = pytest.importorskip("pexpect")
    sizes = {"six": 6, "tenk": 10000, "five": 5 * 2 ** 20}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"z" * size)
    (tmp_path / "dl").mkdir()
    child = pexpect.spawn(
        sftp_bin, ["-D", sftp_server_bin], cwd=str(tmp_path),
        dimensions=(24, 100), timeout=20,
        env={"PATH": os.environ.get("PATH", "/usr/bin"), "LC_ALL": "C",
             "TERM": "dumb"})
    out = b""
    try:
        child.expect("sftp> ")
        for name in sizes:
            child.sendline(f"get {name} dl/{name}")
            child.expect("sftp> ")
            out += child.before
        child.sendline("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    meter = re.compile(rb"\r(\S+) +(\d+)% (.{6}) (.{7})/s (.{11})")
    finals = {m[1].decode(): m for m in meter.finditer(out)
              if m[2] == b"100"}
    starts = {m[1].decode(): m for m in meter.finditer(out)
              if m[2] == b"0"}
    for name, size in sizes.items():
        final = finals[name]
        assert len(final[0]) == 100  # \r + 99 columns at width 100
        assert final[3].decode() == format_meter_size(size)
        assert re.fullmatch(r"[ \d]{3}\.\d[KMGT]B", final[4].decode())
        assert final[5].decode() == format_meter_eta(
            bytes_left=0, bytes_per_second=1, elapsed=0.0, stalled=0)
        start = starts[name]
        assert start[3].decode() == format_meter_size(0)
        assert start[4].decode() == format_meter_rate(0)
        assert start[5].decode() == format_meter_eta(
            bytes_left=size, bytes_per_second=0, elapsed=0.0, stalled=0)
