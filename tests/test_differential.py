"""psftp-shell against OpenSSH's sftp: whole processes, twin trees.

Every script below runs through the real ``sftp`` and through
``python -m psftp_shell`` against the same server, from identical
fixture trees at the same absolute paths, in the input mode (``-b file``,
``-b -``, piped) and with the global flags the case names.  Exit status,
stdout, stderr and the resulting local and remote trees (names, types,
modes, owners, sizes, content hashes, fixed mtimes) must be identical.

Server setups (:class:`Setup`): ``direct`` is ``-D sftp-server`` (local
and remote are one directory); ``sshd`` is the private OpenSSH sshd
(separate local and remote trees, each built alike); ``asyncssh`` is
asyncssh's SFTP server, chrooted, which lacks some OpenSSH extensions.
Each script names the setups it runs in; psftp-shell runs at ``-n 1``,
and at ``-n 4`` when the script transfers (see :func:`_params`).

The only differences allowed are applied in :func:`describe`: the
program name and usage text (:func:`tests.twins.allowed`) and the ``-n``
lines of ``help`` (:func:`tests.twins.drop_help_n_lines`); the long-line
error is stated exactly in :func:`test_long_line_difference`.  Known
differences that live in modules this suite may not change are strict
``xfail`` marks in :data:`KNOWN`, each naming its module.
"""

from __future__ import annotations

import difflib
import fcntl
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from psftp_shell.devserver import (
    HOST_ALIAS,
    SFTP_SERVER,
    AsyncSSHServer,
    PrivateSSHD,
)
from tests.twins import (
    FIXED_TIME,
    PSFTP,
    Arena,
    Builder,
    Outcome,
    allowed,
    clean_environ,
    drop_help_n_lines,
    run_in_arena,
)

DAY = 86400


# ---------------------------------------------------------------- trees

def put_file(path: Path, data: bytes, mode: int = 0o644,
             mtime: int | None = None) -> None:
    """Write a fixture file with a mode and, maybe, its own mtime."""
    path.write_bytes(data)
    path.chmod(mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def blob(size: int, seed: int) -> bytes:
    """Deterministic bytes that are not all alike."""
    block = bytes((i * 131 + seed) % 251 for i in range(4099))
    return (block * (size // len(block) + 1))[:size]


WEIRD = [b"caf\xe9", b"ctl\x01name", b"new\nline", b"tab\tname",
         "caf\u00e9.txt".encode(), b"esc\x1b[31mred", b"del\x7f"]
"""Names sftp escapes: invalid UTF-8, controls, valid UTF-8."""
UNICODE = ["smile\U0001f600", "\u65e5\u672c\u8a9e", "rtl\u202eevil",
           "zw\u200bsp", "bom\ufeff", "nel\u0085", "ls\u2028sep",
           "unassigned\u0378", "private\ue000", "combin\u0301ing",
           "soft\u00adhyphen", "c1\u009b31m", "half\uff76\uff85"]
"""Multibyte names: wide, zero-width, format and C1 controls, unassigned,
private use (sftp's mprintf decides by wcwidth())."""
LONG_NAME = "L" * 255


def standard(root: Path) -> None:
    """The common fixture: ``r/`` (remote-ish) and ``l/`` (local-ish)."""
    r, loc = root / "r", root / "l"
    for d in (r / "sub" / "deeper", r / "sp ace", r / "emptydir",
              loc / "ldir", loc / "l sp"):
        d.mkdir(parents=True)
    put_file(r / "a.txt", b"alpha\n", mtime=FIXED_TIME + 3 * DAY)
    put_file(r / "b.txt", b"bravo bravo\n", 0o600, FIXED_TIME + DAY)
    put_file(r / "c.dat", blob(70_000, 1), 0o640, FIXED_TIME + 2 * DAY)
    put_file(r / "big.bin", blob(600_000, 2), mtime=FIXED_TIME - DAY)
    put_file(r / "empty", b"")
    for name in ("star*.txt", "back\\slash.txt", "sp ace.txt",
                 "quo'te\"s.txt", "-dash.txt", "hash#name.txt",
                 "q?mark", "br[ack]et", "brace{x,y}"):
        put_file(r / name, name.encode() + b"\n")
    put_file(r / ".hidden", b"hidden\n")
    put_file(r / LONG_NAME, b"long\n")
    for raw in WEIRD:
        put_file(r / os.fsdecode(raw), raw + b"\n")
    (r / "uni").mkdir()
    for name in UNICODE:
        put_file(r / "uni" / name, name.encode() + b"\n")
    put_file(r / "sub" / "c.txt", b"charlie\n")
    put_file(r / "sub" / "deeper" / "d.txt", b"delta\n", 0o604)
    put_file(r / "sp ace" / "f q.txt", b"spaced\n")
    (r / "link").symlink_to("a.txt")
    (r / "dirlink").symlink_to("sub")
    (r / "dangling").symlink_to("nowhere")
    put_file(loc / "x.txt", b"x-ray\n", 0o640, FIXED_TIME + 5 * DAY)
    put_file(loc / "big.loc", blob(300_000, 3))
    put_file(loc / "ldir" / "y.txt", b"yankee\n")
    put_file(loc / "l sp" / "z z.txt", b"zulu\n")
    (loc / "llink").symlink_to("x.txt")
    (loc / "ldirlink").symlink_to("ldir")
    put_file(loc / "st*r.txt", b"local star\n")
    put_file(loc / "b\\ck.txt", b"local backslash\n")
    (r / "loop").symlink_to("loop")
    os.mkfifo(r / "sub" / "fifo")
    os.mkfifo(loc / "ldir" / "fifo")
    (loc / "lempty").mkdir()
    sizes_and_dates(r / "sizes")


def hard_linked(root: Path) -> None:
    """:func:`standard`, and ``l/x.hard`` a hard link to ``l/x.txt``."""
    standard(root)
    os.link(root / "l" / "x.txt", root / "l" / "x.hard")


TODAY = int(time.time()) // DAY * DAY
"""Midnight (UTC) of the day the tests started."""

SIZES = [0, 1, 1023, 1024, 1025, 10239, 10240, 102399, 1048575,
         123_456_789, 5 * 2**30 + 12345, 2**40 * 3 // 2, 2**43 + 1]
"""Sizes around fmt_scaled's and the progress meter's boundaries."""


def sizes_and_dates(top: Path) -> None:
    """Sparse files of telling sizes, and mtimes around ls's half year.

    "Recent" times are whole days before the day the tests started
    (UTC), so twin trees are the same even across midnight.
    """
    top.mkdir()
    for number, size in enumerate(SIZES):
        path = top / f"s{number:02d}"
        with open(path, "wb") as handle:
            handle.truncate(size)
        os.utime(path, (FIXED_TIME + number * DAY,) * 2)
    today = TODAY
    for name, when in [("yesterday", today - DAY + 3723),
                       ("month", today - 30 * DAY + 45296),
                       ("half-year", today - 183 * DAY),
                       ("older", today - 200 * DAY + 60),
                       ("next-year", today + 365 * DAY),
                       ("epoch", 0), ("y2038", 2**31 - 1)]:
        put_file(top / name, name.encode() + b"\n", mtime=when)


# ---------------------------------------------------------------- cases

DIRECT = ("direct",)
BOTH = ("direct", "sshd")
ALL = ("direct", "sshd", "asyncssh")
SERVERS = ("direct", "asyncssh")
"""For scripts that only act on the server: sshd runs the same
sftp-server code as ``-D``; asyncssh's server is another one."""
TRANSFER_WORDS = frozenset({"get", "put", "reget", "reput", "mget",
                            "mput"})


@dataclass(frozen=True)
class Script:
    """One batch script and how it is fed.

    :param mode: ``file`` (``-b file``), ``stdin`` (``-b -``) or ``pipe``
        (commands on stdin, no ``-b``)
    :param flags: global options before the destination
    :param where: the setups it runs in: ``direct`` (``-D``), ``sshd``,
        ``asyncssh`` (see :class:`Setup`).  Input handling alone is the
        same whatever the server, so those scripts run with ``-D`` only.
    :param stdin: the standard input of a ``-b file`` run
    :param env: environment variables to add
    """

    name: str
    text: str | bytes
    mode: str = "pipe"
    flags: tuple[str, ...] = ()
    build: Builder = standard
    where: tuple[str, ...] = ("direct", "sshd")
    stdin: bytes = field(default=b"")
    env: tuple[tuple[str, str], ...] = ()

    def body(self) -> bytes:
        """The script as bytes."""
        if isinstance(self.text, bytes):
            return self.text
        return self.text.encode("utf-8", "surrogateescape")

    @property
    def transfers(self) -> bool:
        """Whether a line of it is a get or a put (of any spelling)."""
        for line in self.body().split(b"\n"):
            words = line.lstrip(b" \t-@").split()
            if words and words[0].lower().decode("latin-1") \
                    in TRANSFER_WORDS:
                return True
        return False


NAVIGATION = """\
pwd
cd r
pwd
cd sub
cd ..
chdir sub/deeper
pwd
cd ../..
CD sp\\ ace
pwd
cd "../sp ace"
cd ..
cd /nonexistent
cd a.txt
cd nonexist
cd nonexist/deeper
cd dirlink
pwd
cd ..
cd dangling
cd /proc/1/ns/net
cd ''
pwd
cd
pwd
cd -x
lpwd
lcd l
lpwd
lchdir ldir
lpwd
lcd ..
lcd /nonexistent
lcd x.txt
lcd "l sp"
lpwd
cd {root}//r/./sub//deeper/
pwd
cd /
pwd
cd //
pwd
cd {root}/r/sub/..
pwd
cd ../r
pwd
lcd
lpwd
lcd ~
lpwd
lcd ~root
lpwd
lcd ""
lmkdir ""
lcd /proc/1/ns/net
lcd /proc/1/ns
lpwd
lcd /proc/1/ns/net/x
lcd {root}/l/llink
lcd {root}/l/x.txt/
lcd {root}/r/loop
lpwd
"""

LS_DIR = """\
ls
ls -1
ls -a
ls -1a
ls -l
ls -la
ls -ln
ls -lh
ls -lnh
ls -f
ls -1f
ls -S
ls -1S
ls -1Sr
ls -1t
ls -1tr
ls -1r
ls -1fr
ls -1St
ls -1tS
ls -l1
ls -1l
ls -h
ls -n
ls -d
ls -lS
ls -ltr
dir -1
DIR
"""

LS_PATHS = """\
ls r
ls r/
ls -1 r/sub
ls -l r/sub
ls -la r/sub
ls {root}/r/sub
ls -1 {root}/r/sub/
ls r/*.txt
ls -1 r/*.txt
ls -l r/*.txt
ls -lS r/*
ls -1t r/*
ls -1r r/*.txt
ls -1f r/*
ls -1a r/*
ls r/.h*
ls -1 r/.*
ls r/star\\*.txt
ls "r/star*.txt"
ls 'r/star*.txt'
ls r/star?.txt
ls r/nomatch*
ls r/nonexist
ls /nonexistent/*
ls r/{{a,b}}.txt
ls -1 r/brace{{x,y}}
ls r/brace\\{{x,y}}
ls -l r/link
ls -l r/dirlink
ls r/dirlink
ls -l r/dangling
ls r/dangling
ls -1 r/sub r/a.txt
ls r/back\\\\slash.txt
ls "r/back\\\\slash.txt"
ls 'r/back\\slash.txt'
ls r/back\\slash.txt
ls r/sp\\ ace.txt
ls "r/sp ace.txt"
ls r/sp ace.txt
ls "r/quo'te\\"s.txt"
ls 'r/quo\\'te"s.txt'
ls r/quo\\'te\\"s.txt
ls r/-dash.txt
ls -- r/-dash.txt
ls -1 -- -x
ls r/hash#name.txt
ls "r/hash#name.txt"
ls r/q\\?mark
ls r/q?mark
ls r/br\\[ack]et
ls "r/br[ack]et"
ls r/br[ack]et
ls -1 r/sp*
ls -l "r/sp ace"
ls r/{long}
ls -1 r/L*
ls r/sub/deeper/../c.txt
ls r/emptydir
ls -l r/emptydir
ls -la r/emptydir
ls /proc/1/ns/net
ls r/""
ls ""
ls -l r/sizes
ls -lh r/sizes
ls -lS r/sizes
ls -lSr r/sizes
ls -lt r/sizes
ls -1t r/sizes
ls -lh r/sizes/*
ls -ltr r/sizes/*
ls -1S r/sizes/s*
ls -l r/loop
ls r/loop
ls -l r/lo*
cd r/loop
ls -l r/sub
ls -l r/sub/fifo
"""

WEIRD_NAMES = """\
ls r/uni
ls -1 r/uni
ls -l r/uni/*
ls -1 r/uni/*
get r/uni/rtl* l
rm r/uni/nel*
ls -1 r/caf*
ls -1 r/ctl*
ls -1 r/new*
ls -1 r/tab*
ls -1 r/esc*
ls -1 r/del*
ls -l r/ctl*
ls -l r/caf*
rm r/ctl*
rm r/new*
ls -1 r
ls r/nonexist\x01
ls r/\udcff\udcfe
rm r/esc*
mkdir r/new\x02dir
mkdir r/\udce9t\udce9
ls -1 r
"""

MODIFY = """\
mkdir r/newdir
mkdir r/newdir
mkdir r/nonexist/x
mkdir /sys/x
mkdir /proc/x
mkdir
mkdir "r/dir with space"
mkdir r/{long}x
rmdir r/newdir
rmdir r/newdir
rmdir r/sub
rmdir r/a.txt
rmdir /proc/1/ns/net
rmdir "r/dir with space"
rm r/b.txt
rm r/b.txt
rm r/nomatch*
rm r/*.dat r/empty
rm r/sub
rm r/sp\\ ace.txt
rm "r/star*.txt"
rm /proc/version
rm
rm r/q*
rename r/a.txt r/a2.txt
rename r/a2.txt r/a.txt
rename r/nonexist r/x
rename -l r/a.txt r/big.bin
rename r/a.txt r/big.bin
rename r/big.bin r/sub
rename r/sub r/sub2
rename -l r/sub2 r/sub
rename -x a b
rename r/a.txt
rename /proc/version /proc/v2
ln r/big.bin r/hard
ln r/big.bin r/hard
ln r/nonexist r/hard2
rename r/empty r/empty
ln
ln -z a b
copy r/big.bin r/copied
cp r/copied r/copied2
copy r/sub r/x
copy r/nonexist r/x
copy r/big.bin /sys/x
copy r/big.bin r/nonexist/x
copy r/dangling r/x
cp r/link r/fromlink
chmod 600 r/copied
chmod 4755 r/copied2
chmod 640 r/*.txt
chmod 600 r/nomatch*
chmod 644 /proc/1/ns/net
chmod 644 /proc/1/ns/*
chmod -h 644 /proc/1/ns/net
chmod -h 600 r/link
chmod 888 r/copied
chmod abc r/copied
chmod 77777777777 r/copied
chmod 700
chmod
chown 1 r/copied
chown 2 r/nomatch
chgrp 3 r/copied
chgrp 4 r/*.txt
chown -h 5 r/link
chgrp -h 6 r/dangling
chown 7 r/dangling
chgrp 1 /proc/1/ns/net
chown 1 /proc/1/ns/*
rm /proc/1/ns/net
mkdir /proc/1/ns/x
ln r/big.bin /proc/1/ns/x
rename r/big.bin /proc/1/ns/x
copy r/big.bin /proc/1/ns/x
mkdir r/one r/two
rm r/copied r/copied2
rename r/link r/link9 extra
chmod 600 r/link9 r/empty
Mkdir r/upper
RMDIR r/upper
rm r/s*
chown x r/copied
chown 4294967295 r/copied2
chown 4294967296 r/copied2
chgrp -1 r/copied2
ls -1 r
"""

SYMLINKS = """\
ln -s a.txt r/soft
ln -s a.txt r/soft
ln -s /nowhere r/soft2
symlink big.bin r/soft3
symlink big.bin r/sub
symlink x /sys/x
ln -s "" r/empty-target
ln -s r/a.txt r/a.txt
symlink x /proc/1/ns/x
ln -s sub/c.txt r/soft4
ln -s {root}/r/b.txt r/soft5
cp r/soft5 r/fromlink
chmod -h 600 r/soft
chown -h 5 r/soft4
ls -1 r/soft*
"""

DF = """\
df /dev
df -h /dev
cd /dev
df
df -h
df /proc
df -h /proc
df -i /proc
df -hi /proc
df -ih /sys
df /nonexistent
df -z
df /proc extra
"""
"""Only file systems whose numbers stand still between the twin runs:
devtmpfs holds no data (its inode count may move, so no ``-i`` there),
proc and sysfs are all zeros."""

LOCAL = """\
lls
lls -1 l
lls -la l/x.txt
lls l/nonexist
lls 'l/l sp'
lls /proc/1/ns/net
!echo err >&2
lls l | wc -l
!echo hello
!echo "$SHELL"
!exit 3
!kill -9 $$
!pwd
!ls -1 l >&2
lmkdir l/made
lmkdir l/made
lmkdir l/nonexist/x
lmkdir /proc/x
lmkdir
lmkdir "l/with space"
lumask 077
lmkdir l/private
lumask 022
lumask 8
lumask x
lumask
lumask 0
lumask 0777
lumask 022
progress
progress
progress -x
version
version extra
help
?
help extra
help -x
"""

PREFIXES = """\
@pwd
-@pwd
@-bogus
--@-pwd
 # comment
#
\t
   pwd   \t
pwd # trailing comment
pwd#glued
-
@
- @ pwd
@ls -1 r/sub
quit -x
exit extra
"""

PARSE_ERRORS = """\
bogus
GET
Ls -1 r/sub
PWD
ls -z
get
get -z r/a.txt
put
reget
reput
mget
mput
rename a
ln a
symlink
copy
cp a
chmod
chgrp 5
chown
lumask 9
'unterminated
"unterminated
ls "r/sub
""
''
rm ''
{many}
cd..
ls-l
get-r r/a.txt
lls-la
lls 'x
!echo 'x
chown " 5" r/a.txt
chown +5 r/a.txt
chown -- -0 r/a.txt
chown -0 r/a.txt
chmod -- -1 r/a.txt
chmod "	644" r/a.txt
chmod "644 " r/a.txt
chmod 0o644 r/a.txt
chown 0x10 r/a.txt
chown 010 r/a.txt
chgrp 0X1f r/a.txt
chown 08 r/a.txt
chown 0x r/a.txt
chgrp " +0x5" r/a.txt
chgrp 0xffffffff r/a.txt
chgrp 0x100000000 r/a.txt
chmod 10644 r/a.txt
chmod 08 r/a.txt
chown 4294967296 r/a.txt
chgrp 99999999999999999999 r/a.txt
lumask 7777
lumask 77777
lumask 37777777777
lumask 40000000000
lumask " 22"
lumask 022
get -
put --
ls -
ls --
pwd -1
!
"""

ABORTS = {
    "parse": "bogus",
    "cd": "cd /nonexistent",
    "ls-path": "ls r/nonexist",
    "df": "df /nonexistent",
    "lcd": "lcd /nonexistent",
    "lmkdir": "lmkdir /proc/x",
    "mkdir": "mkdir r/sub",
    "rmdir": "rmdir r/sub",
    "rm": "rm r/nonexist",
    "rename": "rename r/nonexist r/x",
    "ln": "ln r/nonexist r/x",
    "symlink": "symlink x r/a.txt",
    "copy": "copy r/nonexist r/x",
    "chmod": "chmod 644 /proc/1/ns/net",
    "chmod-glob": "chmod 644 /proc/1/ns/*",
    "chown-glob": "chown 1 /proc/1/ns/*",
    "rm-glob": "rm r/s*",
    "tilde": "lcd ~nosuchuser",
    "chown": "chown 1 r/nonexist",
    "get": "get r/nonexist",
    "put": "put l/nonexist",
    "unterminated": "ls 'x",
}
"""A failing command of each kind: it must end a ``-b`` batch."""

NEVER_ABORT = """\
ls
lls l/nonexist
!false
lumask 022
pwd
help
version
progress
ls -1 r/sub
"""

TRANSFERS = """\
get r/a.txt
get r/a.txt l
get r/b.txt l/renamed
get r/big.bin l/
get r/*.txt l/ldir
mget r/[ab].txt l/x.txt
get r/nonexist
get r/nomatch*
get /nonexistent/*
get r/sub
get r/sub/ l
get r/link l/vialink
get r/dangling l/x
get r/a.txt /proc/x
get /proc/1/ns/net l
get r/a.txt /proc/1/ns/x
get r/a.txt l/x1 extra
GET r/b.txt l/upper
get r/empty l/empty
get r/sub/fifo l
get r/loop l
get r/a.txt l/newdir/
get r/a.txt l/llink
get r/a.txt l/ldir/y.txt/
reget r/a.txt l/big.loc
chmod 4755 r/c.dat
get -p r/c.dat l/setuid
get r/{{a,b}}.txt l
mget r/*.{{txt,dat}} l
get r/a.txt "l/new name"
get r/a.txt 'l/with\'quote'
get r/a.txt l/star\\*name
get r/a.txt "l/q?mark"
get r/a.txt l/back\\slash
put l/st\\*r.txt r
put "l/st*r.txt" r/quoted
put l/st*r.txt r/globbed
put l/b\\ck.txt r
put "l/b\\ck.txt" r/bq
put 'l/b\\ck.txt' r/bs
put l/x.txt "r/sp ace/new name"
put l/x.txt r/st\\*r2
get r/c.dat /dev/null
get "r/sp ace.txt" l
get r/sp\\ ace/f\\ q.txt "l/l sp"
get r/star\\*.txt l
get "r/quo'te\\"s.txt" l
get r/-dash.txt l
get r/caf* l
get r/ctl* l
get -p r/c.dat l/kept
get -P r/b.txt l/kept2
get -f r/a.txt l/synced
get -z r/a.txt
put l/x.txt
put l/x.txt r
put l/x.txt r/renamed
put l/big.loc r/sub/
mput l/*.txt r/sub
put l/* r/a.txt
put l/nonexist
put l/nonexist* r
put l/ldir
put l/ldir r/
put l/llink r/fromlink
put l/x.txt /sys/x
put l/x.txt r/nodir/
put l/lempty r
put -r l/lempty r
get -r r/emptydir l
put /proc/1/ns/net r
put l/x.txt r/y1 extra
PUT l/x.txt r/upper
put l/x.txt r/nonexist/x
put -p l/x.txt r/kept
put -P l/x.txt r/kept2
put -f l/x.txt r/synced
put "l/l sp/z z.txt" "r/sp ace"
put l/l\\ sp/z\\ z.txt r/zz
reget r/big.bin l/big.bin
reget r/big.bin l/big.bin
reget r/a.txt l/absent
reput l/big.loc r/big.loc
reput l/x.txt r/absent
get -a r/c.dat l/c.dat
put -a l/x.txt r/x.txt
get -r r/sub l/rsub
get -R r/sub l/rsub
get -rp r/sub l/psub
get -r r/sub
put -r l/ldir r/rldir
put -R l/ldir r/rldir
put -rp l/ldir r/pldir
put -r l/ldir
get -r r/nonexist l
put -r l/nonexist r
"""

GLOBALS_XFER = """\
get r/sub l/gsub
put l/ldir r/gldir
get r/c.dat l/c.dat
put l/big.loc r/big.loc
get r/a.txt l/a.txt
"""

LONG_NAMES = """\
ls -1 r/L*
get r/{long} l
put l/{long} r/sub
mkdir r/{long}
rename r/{long} r/{long}x
ls -1 r/sub
get r/{long}x l
put l/{long}x r/x
"""


DASH_NAMES = """\
cd r
ls -dash.txt
ls -- -dash.txt
ls -1 -- -*
get -- -dash.txt l
lcd l
get -- -dash.txt -copy
get -- -dash.txt
rename -- -dash.txt -moved
rename -- -dash.txt ./-moved
put -- -copy
put -- -copy -up
rm -- -moved
rm -- -copy
mkdir -- -dir
mkdir ./-dir
rmdir -- -dir
rmdir ./-dir
lmkdir -- -ldir
lmkdir ./-ldir
lmkdir -ldir2
chmod 600 -- -dash.txt
chmod -- 600 -up
chmod 600 ./-up
lls -1
ls -1
"""

UMASK = """\
lumask 077
get r/a.txt l/masked
get -r r/sub l/maskeddir
lmkdir l/maskedmk
lumask 0
get r/b.txt l/open
get -p r/b.txt l/openp
lumask 022
progress
get r/c.dat l/withmeter
put l/x.txt r/withmeter
progress
"""

WHITESPACE = """\
\fpwd
\vls -1 r/sub
\f!echo hi
\flls -1 l
\fLLS -1 l
ls\t-1\tr/sub
ls\v-1\vr/sub
-\fpwd
@\tpwd
\t@pwd
# \f
\f# comment
\f
\v\v
lls\f-1 l
!\techo tab
\r
 \r pwd\r
get\fr/a.txt\fl
\f
CD r
pwd
\v
pwd
CD r
\f # cd with no path
pwd
ls -1 r/sub
\f
"lpwd" extra
\v
'unterminated
\v
lpwd
'l
\v
version
"pwd
\f
""
\f
"""
"""C's isspace() splits words, but only " \\t\\r\\n" is skipped before
the prefix and the command (and ``lls`` cuts the line by length)."""


CWD_GONE = """\
lmkdir l/gone
lcd l/gone
lpwd
!rmdir "$PWD"
lpwd
lls
!pwd
lmkdir x
get r/a.txt
lcd ..
lpwd
lmkdir moved
lcd moved
!mv "$PWD" "$PWD-renamed"
lpwd
!pwd
get ../../r/a.txt
lmkdir sub
put a.txt
lls
lls ..
lcd ../ldirlink
lpwd
lcd ../ldirlink/..
lpwd
lls -d ldirlink/
"""
"""The local cwd removed or renamed under the session (sftp really
chdir()s; ``lpwd`` then fails or names the new place)."""


def _line(prefix: str, size: int, fill: str = "a") -> str:
    """*prefix* padded with *fill* to *size* bytes, plus a newline."""
    return prefix + fill * (size - len(prefix)) + "\n"


LINE_2047 = ("pwd\n" + _line("-ls ", 2047) + _line("@-ls ", 2047, "b")
             + _line("-ls ", 2046, "c") + _line("-@ls ", 2048 - 2, "d")
             + _line("pwd\x00", 2047, "e") + _line("quit ", 2047, "f")
             + "pwd\n")
"""Lines of 2047 bytes (sftp reads their newline as an empty line),
of 2046 (no split), one with a NUL in it, and a ``quit``."""


def _fill(text: str, root: str) -> str:
    """Expand the placeholders of a script for the tree at *root*."""
    many = "ls " + " ".join(f"a{i}" for i in range(130))
    return text.format(root=root, long=LONG_NAME, many=many)


SCRIPTS: list[Script] = [
    Script("navigation", NAVIGATION, where=ALL),
    Script("ls-dir", "cd r\n" + LS_DIR, where=SERVERS),
    Script("ls-dir-batch", "cd r\n" + LS_DIR.replace("ls -d\n", ""),
           mode="file", where=DIRECT),
    Script("ls-paths", LS_PATHS, where=SERVERS),
    Script("weird-names", WEIRD_NAMES, where=DIRECT),
    Script("shell-missing", "!echo hi\nlls -d l\n!\npwd\n", mode="file",
           env=(("SHELL", "/nonexistent/sh"),), where=DIRECT),
    Script("bang-alone-stdin", "pwd\n!\n!  \npwd\n", mode="stdin",
           where=DIRECT),
    Script("bang-alone-pipe", "pwd\n!\n@!\npwd\n", where=DIRECT),
    Script("shell-empty", "!echo $0\nlls -d l\n",
           env=(("SHELL", ""),), where=DIRECT),
    Script("ls-tz-kolkata", "ls -l r/sizes\nls -l r/sizes/*\n",
           env=(("TZ", "Asia/Kolkata"),), where=DIRECT),
    Script("ls-tz-newfoundland", "ls -l r/sizes\n",
           env=(("TZ", "America/St_Johns"),), where=DIRECT),
    Script("ls-tz-posix", "ls -l r/sizes\n",
           env=(("TZ", "EST+5EDT,M3.2.0/2,M11.1.0/2"),), where=DIRECT),
    Script("locale-missing", "ls -1 r/uni\nls -1 r/caf*\n",
           env=(("LANG", "en_US.UTF-8"),), where=DIRECT),
    Script("locale-turkish", "ls -1 r/uni\nls -1 r/caf*\n",
           env=(("LC_ALL", "tr_TR.UTF-8"),), where=DIRECT),
    Script("locale-ctype-only", "ls -1 r/uni\nls -1 r/caf*\n",
           env=(("LANG", "C"), ("LC_CTYPE", "C.UTF-8")), where=DIRECT),
    Script("locale-posix", "ls -1 r/uni\nls -1 r/caf*\n",
           env=(("LANG", "POSIX"),), where=DIRECT),
    Script("weird-names-c-locale", WEIRD_NAMES, flags=("-q",),
           env=(("LC_ALL", "C"),), where=DIRECT),
    Script("modify", MODIFY, where=SERVERS),
    Script("symlinks", SYMLINKS, where=SERVERS),
    Script("modify-quiet", MODIFY, flags=("-q",), where=DIRECT),
    Script("df", DF, where=DIRECT),
    Script("local", LOCAL, where=DIRECT),
    Script("local-batch", LOCAL.replace("!kill -9 $$\n", "") + "!\n",
           mode="file", where=DIRECT),
    Script("prefixes", PREFIXES, where=DIRECT),
    Script("prefixes-batch", PREFIXES, mode="stdin", where=DIRECT),
    Script("whitespace", WHITESPACE, where=DIRECT),
    Script("local-cwd-gone", CWD_GONE, where=DIRECT),
    Script("parse-errors", PARSE_ERRORS, where=DIRECT),
    Script("never-abort", NEVER_ABORT, mode="file", where=DIRECT),
    Script("transfers", TRANSFERS, where=ALL),
    Script("transfers-batch-dash",
           "".join("-" + line + "\n" for line in TRANSFERS.splitlines()),
           mode="stdin", where=DIRECT),
    Script("transfers-quiet", TRANSFERS, flags=("-q",), where=BOTH),
    Script("globals-r", GLOBALS_XFER, flags=("-r",), where=DIRECT),
    Script("globals-rp", GLOBALS_XFER, flags=("-r", "-p"), where=ALL),
    Script("globals-a", GLOBALS_XFER, flags=("-a",), where=BOTH),
    Script("globals-f", GLOBALS_XFER, flags=("-f", "-N"), mode="file",
           where=DIRECT),
    Script("long-names", LONG_NAMES, where=BOTH),
    Script("batch-N", MODIFY, mode="file", flags=("-N",), where=DIRECT),
    Script("batch-qN", GLOBALS_XFER + "reget r/a.txt l/a.txt\n",
           mode="file", flags=("-q", "-N"), where=DIRECT),
    Script("batch-q", "-" + MODIFY.replace("\n", "\n-").rstrip("-"),
           mode="stdin", flags=("-q",), where=DIRECT),
    Script("tilde-no-user", "lpwd\nlcd ~nosuchuser/x\npwd\n", where=DIRECT),
    Script("dash-names", DASH_NAMES, where=BOTH),
    Script("umask-transfers", UMASK, where=BOTH),
    Script("line-2047", LINE_2047, mode="stdin", where=DIRECT),
    Script("line-2047-pipe", LINE_2047, where=DIRECT),
    Script("quit-ends", "pwd\nquit\npwd\n", where=DIRECT),
    Script("bye-ends-batch", "pwd\nbye\nbogus\n", mode="file", where=DIRECT),
    Script("exit-ends", "pwd\nEXIT\nbogus\n", mode="stdin", where=DIRECT),
    Script("no-final-newline", "pwd\nls -1 r/sub", where=DIRECT),
    Script("empty-script", "", where=DIRECT),
    Script("crlf", "pwd\r\nls -1 r/sub\r\ncd r\r\npwd\r\n", mode="file",
           where=DIRECT),
    Script("garbage", b"\x01\x02\xff\xfe\n\x00\nls\x00 r\n"
           b"pwd\x00rm r/a.txt\n\x80\x81\n\xef\xbb\xbfpwd\n"
           b"ls -1 r/\xe9\n'\xff\n-\x1b[2J\n\x7f\npwd\n", where=DIRECT),
    Script("garbage-batch", b"-\x01\x02\xff\xfe\n-\x00\n-ls\x00 r\n"
           b"-pwd\x00rm r/a.txt\n-\x80\x81\npwd\n\xff\npwd\n",
           mode="file", where=DIRECT),
]

SCRIPTS += [Script(f"abort-{kind}", f"pwd\n{line}\npwd\n", mode="file",
                   where=BOTH if kind in ("get", "put", "cd") else DIRECT)
            for kind, line in ABORTS.items()]
SCRIPTS.append(Script("dash-all", "".join(
    f"pwd\n-{line}\n" for kind, line in ABORTS.items()
    if kind != "tilde") + "pwd\n", mode="stdin"))


# ---------------------------------------------------------------- setups

KNOWN: dict[tuple[str, str, int], pytest.MarkDecorator] = {}
"""Known differences: each names why it exists."""


@dataclass
class Setup:
    """A server setup: builds an arena for a case.

    :param sshd: the private OpenSSH sshd, for the ``sshd`` setup
    :param alien: asyncssh's SFTP server (chrooted), for ``asyncssh``
    """

    name: str
    base: Path
    environ: dict[str, str]
    sshd: PrivateSSHD | None = None
    alien: AsyncSSHServer | None = None

    def arena(self, case: str,
              env: tuple[tuple[str, str], ...] = ()) -> Arena:
        """The trees and connection for *case*."""
        local = self.base / self.name / case
        environ = {**self.environ, **dict(env)}
        if self.alien is not None:
            remote = self.alien.root / "differential" / case
            view = f"/differential/{case}"
            return Arena(local, remote, ("-F", str(self.alien.ssh_config)),
                         HOST_ALIAS, f'@cd "{view}"\n'.encode(), environ,
                         view)
        if self.sshd is None:
            return Arena(local, local, ("-D", SFTP_SERVER), None, b"",
                         environ)
        remote = self.sshd.root / "differential" / case
        prelude = f'@cd "{remote}"\n'.encode()
        return Arena(local, remote, ("-F", str(self.sshd.ssh_config)),
                     HOST_ALIAS, prelude, environ)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's base directory (stable across parametrisations)."""
    return tmp_path_factory.mktemp("differential")


def make_setup(name: str, scratch: Path,
               sshd: PrivateSSHD | None = None,
               alien: AsyncSSHServer | None = None) -> Setup:
    """A setup whose trees live under *scratch*."""
    environ = clean_environ(scratch)
    environ["HOME"] = str(scratch / "home")     # not the passwd home
    (scratch / "home").mkdir(exist_ok=True)
    return Setup(name, scratch, environ, sshd, alien)


@pytest.fixture(scope="module")
def alien_server(scratch: Path) -> Iterator[AsyncSSHServer]:
    """asyncssh's SFTP server, in a thread, for the whole module."""
    server = AsyncSSHServer(scratch / "asyncssh")
    server.start_in_thread()
    yield server
    server.stop_thread()


_SETUPS: dict[str, Setup] = {}


@pytest.fixture
def setup(request: pytest.FixtureRequest, scratch: Path,
          setup_name: str) -> Setup:
    """``-D sftp-server``, or the private sshd (one of each per module)."""
    if setup_name not in _SETUPS:
        sshd = alien = None
        if setup_name == "sshd":
            sshd = request.getfixturevalue("sshd")
        elif setup_name == "asyncssh":
            alien = request.getfixturevalue("alien_server")
        _SETUPS[setup_name] = make_setup(setup_name, scratch, sshd, alien)
    return _SETUPS[setup_name]


_THEIRS: dict[tuple[str, str], Outcome] = {}


def script_args(arena: Arena, case: Script) -> tuple[list[str], bytes]:
    """The command line and stdin for *case* in *arena*."""
    body = arena.prelude + _fill(case.body().decode(
        "utf-8", "surrogateescape"), arena.remote_view).encode(
        "utf-8", "surrogateescape")
    args = [*arena.connect, *case.flags]
    stdin = body
    if case.mode == "file":
        arena.script_path.parent.mkdir(parents=True, exist_ok=True)
        arena.script_path.write_bytes(body)
        args += ["-b", str(arena.script_path)]
        stdin = case.stdin
    elif case.mode == "stdin":
        args += ["-b", "-"]
    if arena.host is not None:
        args.append(arena.host)
    return args, stdin


def theirs(setup: Setup, case: Script, sftp_bin: str) -> Outcome:
    """sftp's outcome for *case* (run once per setup)."""
    key = (setup.name, case.name)
    if key not in _THEIRS:
        arena = setup.arena(case.name, case.env)
        args, stdin = script_args(arena, case)
        _THEIRS[key] = run_in_arena([sftp_bin], arena, case.build, args,
                                    stdin)
    return _THEIRS[key]


def ours(setup: Setup, case: Script, streams: int) -> Outcome:
    """psftp-shell's outcome for *case* with ``-n streams``."""
    arena = setup.arena(case.name, case.env)
    args, stdin = script_args(arena, case)
    return run_in_arena([*PSFTP, "-n", str(streams)], arena, case.build,
                        args, stdin)


def describe(outcome: Outcome, *, ours: bool = False) -> list[str]:
    """*outcome* as readable lines, the allowed differences applied."""
    stdout = allowed(outcome.stdout)
    if ours:
        stdout = drop_help_n_lines(stdout)
    lines = [f"status {outcome.status}"]
    for title, data in (("stdout", stdout),
                        ("stderr", allowed(outcome.stderr))):
        lines.append(f"--- {title}")
        lines += [repr(line)[2:-1] for line in
                  data.splitlines(keepends=True)]
    for number, tree in enumerate(outcome.trees):
        lines.append(f"--- tree {number}")
        lines += [f"{name!r}: {entry}" for name, entry in tree.items()]
    return lines


def assert_same(expected: Outcome, got: Outcome) -> None:
    """Identical but for the differences the module docstring names."""
    want, have = describe(expected), describe(got, ours=True)
    if want != have:
        diff = difflib.unified_diff(want, have, "sftp", "psftp-shell",
                                    lineterm="", n=2)
        pytest.fail("\n".join(diff), pytrace=False)


SENTINELS = frozenset({"navigation", "modify"})


def _params() -> list[object]:
    """Every script with ``-D``, those marked ``ssh`` with the sshd too;
    at ``-n 1``, and at ``-n 4`` when it transfers.

    psftp-shell opens its extra streams on the first get or put, so a
    script without one runs the same code at ``-n 4`` as at ``-n 1``;
    two such scripts run at ``-n 4`` anyway, to keep that true.
    """
    params: list[object] = []
    for case in SCRIPTS:
        names = case.where
        counts = [1, 4] if case.transfers or case.name in SENTINELS \
            else [1]
        for name in names:
            for streams in counts:
                mark = KNOWN.get((name, case.name, streams))
                params.append(pytest.param(
                    name, case, streams, marks=[mark] if mark else [],
                    id=f"{name}-{case.name}-n{streams}"))
    return params


@pytest.mark.parametrize(("setup_name", "case", "streams"), _params())
def test_script(setup: Setup, case: Script, streams: int,
                sftp_bin: str) -> None:
    expected = theirs(setup, case, sftp_bin)
    assert_same(expected, ours(setup, case, streams))


# ------------------------------------------------ the documented differences

LONG = "ls " + "x" * 3000
"""A line sftp splits into two commands (2047 bytes, then the rest)."""


@pytest.mark.parametrize("mode", ["pipe", "file"])
def test_long_line_difference(scratch: Path, sftp_bin: str,
                              mode: str) -> None:
    """The one allowed difference in input handling, stated exactly.

    sftp cuts a line longer than 2047 bytes into pieces and runs each;
    psftp-shell prints ``Error: input line too long`` and counts it as
    a failed command.  So psftp-shell on a script with such a line must
    do what sftp does on the script without it (piped: carry on), or
    cut before it (``-b``: stop, exit status 1), plus that message.
    """
    setup = make_setup("direct", scratch)
    before, after = "pwd\nls -1 r/sub\n", "cd r\npwd\n"

    def run(name: str, text: str, program: list[str]) -> Outcome:
        case = Script(name, text, mode=mode)
        arena = setup.arena(f"long-{mode}")
        args, stdin = script_args(arena, case)
        return run_in_arena(program, arena, standard, args, stdin)

    split = run("split", before + LONG + "\n" + after, [sftp_bin])
    # piped, both pieces ran; with -b, the first piece failed the batch
    assert split.stdout.count(b"sftp> ") == (6 if mode == "pipe" else 3)
    assert split.status == (0 if mode == "pipe" else 1)
    ours = run("ours", before + LONG + "\n" + after, PSFTP)
    expected_text = before + after if mode == "pipe" else before
    expected = run("expected", expected_text, [sftp_bin])
    message = b"Error: input line too long\n"
    assert ours.stdout == expected.stdout
    assert ours.stderr == expected.stderr + message
    assert ours.status == (0 if mode == "pipe" else 1)
    assert expected.status == 0
    assert ours.trees == expected.trees


@pytest.mark.parametrize("streams", [1, 4])
def test_replace_difference(scratch: Path, sftp_bin: str,
                            streams: int) -> None:
    """The deliberate differences in what a download leaves, stated
    exactly.

    sftp rewrites an existing destination in place; psftp-shell writes a
    temporary beside it and renames it over the target when complete (no
    partial data under a final name).  So a hard link to the old file
    keeps the old data; everything printed is the same.  ``get f f``
    (one file, with ``-D``) is refused, where sftp truncates ``f`` to
    nothing and says nothing: that line fails the batch.
    """
    setup = make_setup("direct", scratch)
    case = Script("replace", "get r/a.txt l/x.txt\nget r/b.txt r/b.txt\n",
                  build=hard_linked, mode="file")
    arena = setup.arena("replace")
    args, stdin = script_args(arena, case)
    theirs = run_in_arena([sftp_bin], arena, hard_linked, args, stdin)
    theirs_files = [(arena.local / p).read_bytes()
                    for p in ("l/x.txt", "l/x.hard", "r/b.txt")]
    ours = run_in_arena([*PSFTP, "-n", str(streams)], arena, hard_linked,
                        args, stdin)
    ours_files = [(arena.local / p).read_bytes()
                  for p in ("l/x.txt", "l/x.hard", "r/b.txt")]
    refusal = (f'download "{arena.local / "r/b.txt"}": "r/b.txt" is the '
               "same file\r\n").encode()
    assert (ours.status, ours.stdout, ours.stderr) == (
        1, theirs.stdout, theirs.stderr + refusal)
    assert theirs.status == 0
    alpha = b"alpha\n"
    assert theirs_files == [alpha, alpha, b""]
    arena.reset(hard_linked)
    old_x = (arena.local / "l/x.txt").read_bytes()
    assert old_x != alpha
    assert ours_files == [alpha, old_x, b"bravo bravo\n"]


def test_help_n_lines_are_the_only_help_difference() -> None:
    """:func:`drop_help_n_lines` removes ``-n`` lines in help, only there."""
    stdout = (b"sftp> help\nAvailable commands:\nbye    Quit sftp\n"
              b"get -n N ...          Download on N streams\n"
              b"                      (connections)\n"
              b"sftp> ls -n\n-n\n")
    assert drop_help_n_lines(stdout) == (
        b"sftp> help\nAvailable commands:\nbye    Quit sftp\n"
        b"sftp> ls -n\n-n\n")


def closed_stdout_run(program: list[str], arena: Arena, args: list[str],
                      stdin: bytes) -> tuple[int, bytes]:
    """Run with stdout a pipe whose reader leaves after a few bytes."""
    arena.reset(standard)
    proc = subprocess.Popen(program + args, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=arena.local, env=arena.environ)
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(stdin)
    proc.stdin.close()
    proc.stdout.read(100)
    proc.stdout.close()
    stderr = proc.stderr.read()
    return proc.wait(timeout=30), stderr


@pytest.mark.parametrize("mode", ["pipe", "file"])
def test_closed_stdout_ends_like_sftp(scratch: Path, sftp_bin: str,
                                      mode: str) -> None:
    """A reader that goes away kills both with SIGPIPE, silently."""
    setup = make_setup("direct", scratch)
    case = Script(f"sigpipe-{mode}", "ls -1 r\n" * 2000, mode=mode)
    arena = setup.arena(case.name)
    args, stdin = script_args(arena, case)
    theirs = closed_stdout_run([sftp_bin], arena, args, stdin)
    ours = closed_stdout_run([*PSFTP], arena, args, stdin)
    assert theirs == (-signal.SIGPIPE, theirs[1])
    assert ours == theirs


@contextmanager
def terminal(columns: int) -> Iterator[int]:
    """A pseudo-terminal of *columns* columns, its slave end's fd."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", 24, columns, 0, 0))
    try:
        yield slave
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.parametrize("columns", [0, 50, 132])
def test_ls_width_is_stdin_terminal_width(scratch: Path, sftp_bin: str,
                                          columns: int) -> None:
    """``ls`` columns come from stdin's terminal, even with ``-b``."""
    setup = make_setup("direct", scratch)
    case = Script(f"width-{columns}", "ls r\nls r/sub r/sp*\nls r/uni/*\n"
                  "ls -a r/sub\n", mode="file")
    arena = setup.arena(case.name)
    args, _ = script_args(arena, case)
    outcomes = []
    for program in ([sftp_bin], PSFTP):
        arena.reset(standard)
        with terminal(columns) as tty:
            done = subprocess.run(program + args, stdin=tty,
                                  capture_output=True, cwd=arena.local,
                                  env=arena.environ, timeout=30)
        outcomes.append((done.returncode, done.stdout, done.stderr))
    assert outcomes[0][0] == 0
    assert outcomes[1] == outcomes[0]
