"""Untrusted servers: hostile names, misbehaving replies, odd bytes.

Most tests run OpenSSH's sftp and psftp-shell against the same server
(``tests/hostile.py`` or ``sftp-server`` over ``-D``, or the private
sshd) with the same batch script and compare what both print and
return; where sftp itself misbehaves (it hangs on an endless listing,
leaves an empty file after a fatal error), what psftp-shell does
instead is checked on its own.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from psftp_shell.core.errors import CommandError
from psftp_shell.core.observer import TransferJob
from psftp_shell.core.output import Output
from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.frontend.completion import list_remote
from psftp_shell.frontend.completion_words import (
    Entry,
    analyse,
    path_candidates,
)
from psftp_shell.frontend.progress import LiveView
from psftp_shell.sftp import client as protocol
from psftp_shell.sftp.client import SFTPClient
from psftp_shell.sftp.directory import read_directory
from tests.twins import PSFTP, Run, clean_environ, run_env, snapshot_tree

HOSTILE = Path(__file__).with_name("hostile.py")
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
TIMEOUT = 30.0
BIG = bytes(range(256)) * 1200 + b"tail"      # several READs long


def hostile(mode: str) -> list[str]:
    """The ``-D`` arguments that start ``hostile.py`` in *mode*."""
    return ["-D", f"{shlex.quote(sys.executable)} "
                  f"{shlex.quote(str(HOSTILE))} {mode}"]


def run_both(sftp_bin: str, root: Path, args: list[str], script: bytes,
             *, streams: int = 1,
             build: Callable[[Path], None] | None = None
             ) -> tuple[Run, Run]:
    """Run sftp, then psftp-shell, in *root* with the batch *script*.

    *build* (a callable taking *root*) recreates the tree before each.
    """
    work = root.parent.parent       # outside the area a test watches
    environ = clean_environ(work / "env")
    (work / "batch").write_bytes(script)
    batch = ["-b", str(work / "batch")]
    runs = []
    for program in ([sftp_bin], PSFTP + ["-n", str(streams)]):
        if build is not None:
            build(root)
        runs.append(run_env(program + args + batch, stdin=b"", cwd=root,
                            environ=environ, timeout=TIMEOUT))
    return runs[0], runs[1]


def _forget(*names: str) -> Callable[[Path], None]:
    """A builder that removes *names* (earlier results) from the tree."""
    def build(top: Path) -> None:
        for name in names:
            path = top / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return build


def assert_same(theirs: Run, ours: Run) -> None:
    """Same status, stdout and stderr."""
    assert (ours.status, ours.stdout, ours.stderr) == (
        theirs.status, theirs.stdout, theirs.stderr)


def leftovers(root: Path) -> list[str]:
    """Names in *root* that look like a partial download of big.copy."""
    return sorted(n for n in os.listdir(root) if "big.copy" in n)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A served tree: a big file and a directory with one small file."""
    top = tmp_path / "area" / "root"
    (top / "d").mkdir(parents=True)
    (top / "d" / "f").write_bytes(b"hello\n")
    (top / "big").write_bytes(BIG)
    yield top


# ---------------------------------------------------------------- names

def test_suspect_names_refused_like_sftp(sftp_bin: str, root: Path) -> None:
    """Names with ``/`` are refused in ls and get -r; nothing escapes."""
    script = b"ls\nls -l d\nget -r d out\n"
    before = sorted(os.listdir(root.parent))

    build = _forget("out")
    for streams in (1, 3):
        theirs, ours = run_both(sftp_bin, root, hostile("names"), script,
                                streams=streams, build=build)
        assert_same(theirs, ours)
        assert b'Server sent suspect path "../escape" during readdir' \
            in ours.stderr
        # only d/f arrived: "." and ".." (said to be files) failed to
        # open locally, as in sftp, and no suspect name became a path
        tree = snapshot_tree(root / "out")
        assert sorted(tree) == ["f"]
        assert sorted(os.listdir(root.parent)) == before
        assert not (root / "escape").exists()
        assert not (root / "a").exists()


def test_symlink_loops_end_like_sftp(sftp_bin: str, root: Path) -> None:
    """get -r and put -r skip links; a server that follows them ends."""
    (root / "d" / "loop").symlink_to(".")
    (root / "d" / "out").symlink_to(root.parent)
    script = b"get -r d got\nput -r d put\n"
    theirs, ours = run_both(sftp_bin, root, ["-D", SFTP_SERVER], script,
                            build=_forget("got", "put"))
    assert_same(theirs, ours)
    assert sorted(snapshot_tree(root / "got")) == ["f"]
    assert sorted(snapshot_tree(root / "put")) == ["f"]
    (root / "d" / "out").unlink()
    # A server that describes links as what they point to: d/loop looks
    # like a directory and the walk goes round until the server's own
    # symlink limit makes READDIR fail, exactly as sftp's does.
    theirs, ours = run_both(sftp_bin, root, hostile("follow"),
                            b"get -r d got\n", build=_forget("got"))
    assert_same(theirs, ours)
    assert ours.status == 1
    assert b"Couldn't read directory" in ours.stderr


NASTY = [b"esc\x1b[31mred", b"cr\rx", b"nl\nx", b"del\x7fx", b"caf\xe9",
         b"\xff\xfe", b"[bold red]x", b"[link=mailto:a@b]y", b"<b>b<\\b>",
         b"tab\tx", b"bell\x07", "café".encode(), b"rtl\xe2\x80\x8ex"]


def _nasty_tree(top: Path) -> None:
    """*top*/src holding a file for each of :data:`NASTY`; empty out."""
    shutil.rmtree(top, ignore_errors=True)
    src = os.fsencode(top / "src")
    os.makedirs(src)
    for name in NASTY:
        with open(os.path.join(src, name), "wb") as handle:
            handle.write(b"data " + name)
    os.mkdir(top / "out")


@pytest.mark.parametrize("streams", [1, 4])
def test_control_and_markup_names_print_as_sftp(
        sftp_bin: str, tmp_path: Path, streams: int) -> None:
    """Listings, Fetching lines and errors: sftp's bytes exactly."""
    root = tmp_path / "root"
    script = (b"ls -1 src\nls -la src\nls src\nget src/* out/\n"
              b"get -r src outr\nput -r src upr\n"
              b"-ls src/no\x1b[1m\n-get src/no\x1b[31m\n-rm no\x07[b]\n")
    environ = clean_environ(tmp_path / "env")
    runs = []
    for program in ([sftp_bin], PSFTP + ["-n", str(streams)]):
        _nasty_tree(root)
        runs.append(run_env(program + ["-D", SFTP_SERVER], stdin=script,
                            cwd=root, environ=environ, timeout=TIMEOUT))
        for copy in ("out", "outr", "upr"):
            assert snapshot_tree(root / copy) == snapshot_tree(root / "src")
    theirs, ours = runs
    assert_same(theirs, ours)
    assert b"\x1b" not in ours.stdout + ours.stderr
    assert b"Fetching" in ours.stdout and b"\\033[31mred" in ours.stdout


def test_live_view_shows_names_literally() -> None:
    """The live view: markup inert, controls escaped, one line a name."""
    sink = io.BytesIO()
    view = LiveView(Output(io.BytesIO(), io.BytesIO()), stream=sink,
                    size=lambda: (120, 24), timer=False)
    label = "[bold red]x[link=mailto:a] <b>\x1b[2Jnl\ncr\rtab\t\udce9"
    view.command_started(streams=1)
    job = TransferJob(False, label, "x", 100)
    view.file_started(job)
    view.advanced(job, 10, 0)
    lines = view.lines(120, 24)
    view.close()
    shown = [line for line in lines if "[bold red]" in line]
    want = ("[bold red]x[link=mailto:a] <b>\\033[2Jnl\\012cr\\015tab"
            "\\011\\351")
    assert shown and all(want in line for line in shown)
    assert b"\x1b[2J" not in sink.getvalue()


def test_completion_menu_keeps_each_name_on_one_line() -> None:
    """Menu entries: escaped like listings, line breaks included."""
    ctx = analyse("get x")
    assert ctx is not None
    found = path_candidates(ctx, [Entry("x\n\r\t<b>[red]", False)])
    assert [c.display for c in found] == ["x\\012\\015\\011<b>[red]"]


# ------------------------------------------------------- non-UTF-8 names

ODD = [b"caf\xe9", b"\xff\xfe", "café".encode()]


def _odd_tree(remote: Path, local: Path) -> None:
    """Files and a directory with :data:`ODD` names on both sides."""
    for top in (remote, local):
        shutil.rmtree(top, ignore_errors=True)
        os.makedirs(top)
    rem, loc = os.fsencode(remote), os.fsencode(local)
    for name in ODD:
        with open(os.path.join(rem, name), "wb") as handle:
            handle.write(b"remote " + name)
        with open(os.path.join(loc, b"up" + name), "wb") as handle:
            handle.write(b"local " + name)
    os.mkdir(os.path.join(rem, b"dir\xe9"))
    with open(os.path.join(rem, b"dir\xe9", b"in\xfe"), "wb") as handle:
        handle.write(b"inner")
    os.mkdir(os.path.join(loc, b"updir\xe9"))
    with open(os.path.join(loc, b"updir\xe9", b"\xff"), "wb") as handle:
        handle.write(b"inner up")


def test_non_utf8_names_round_trip_over_sshd(
        sshd: PrivateSSHD, remote_dir: Path, tmp_path: Path,
        sftp_bin: str) -> None:
    """ls, get, put (-r too), rename and rm keep the bytes of names."""
    local = tmp_path / "local"
    script = b"".join([
        b'cd "' + os.fsencode(remote_dir) + b'"\n', b"ls -1\n",
        b"get caf\xe9\n", b"get \xff\xfe\n", b"get -r dir\xe9\n",
        b"put upcaf\xe9\n", b"put -r updir\xe9\n",
        b"rename caf\xe9 new\xe9\n", b"rm \xff\xfe\n", b"ls -1\n"])
    environ = clean_environ(tmp_path / "env")
    args = ["-F", str(sshd.ssh_config), "-b", "-", HOST_ALIAS]
    outcomes = []
    for program in ([sftp_bin], PSFTP + ["-n", "3"]):
        _odd_tree(remote_dir, local)
        run = run_env(program + args, stdin=script, cwd=local,
                      environ=environ, timeout=TIMEOUT)
        outcomes.append((run, snapshot_tree(remote_dir),
                         snapshot_tree(local)))
    (theirs, *_), (ours, remote_tree, local_tree) = outcomes
    assert_same(theirs, ours)
    assert outcomes[0][1:] == outcomes[1][1:]
    assert ours.status == 0
    assert b"caf\\351" in ours.stdout and b"\\377\\376" in ours.stdout
    loc, rem = os.fsencode(local), os.fsencode(remote_dir)
    for name in (b"caf\xe9", b"\xff\xfe"):
        with open(os.path.join(loc, name), "rb") as handle:
            assert handle.read() == b"remote " + name
    with open(os.path.join(loc, b"dir\xe9", b"in\xfe"), "rb") as handle:
        assert handle.read() == b"inner"
    with open(os.path.join(rem, b"upcaf\xe9"), "rb") as handle:
        assert handle.read() == b"local caf\xe9"
    with open(os.path.join(rem, b"updir\xe9", b"\xff"), "rb") as handle:
        assert handle.read() == b"inner up"
    names = set(os.listdir(rem))
    assert b"new\xe9" in names and b"caf\xe9" not in names
    assert b"\xff\xfe" not in names
    assert remote_tree and local_tree


# ------------------------------------------------- misbehaving replies

SCRIPT = b"ls\nget big big.copy\ncd nonexistent\n"


@pytest.mark.parametrize("mode", ["shortread", "swap",
                                  "hugestatus"])
@pytest.mark.parametrize("streams", [1, 3])
def test_odd_but_valid_replies_copy_exactly(
        sftp_bin: str, root: Path, mode: str, streams: int) -> None:
    """Short reads, swapped replies, huge messages: same as sftp."""
    theirs, ours = run_both(sftp_bin, root, hostile(mode), SCRIPT,
                            streams=streams, build=_forget("big.copy"))
    assert_same(theirs, ours)
    assert ours.status == 1         # the cd at the end fails
    assert (root / "big.copy").read_bytes() == BIG
    assert leftovers(root) == ["big.copy"]
    if mode == "hugestatus":        # cut as log.c cuts it
        assert len(ours.stderr) < 1100


@pytest.mark.parametrize("mode,message", [
    ("longread", b"Received more data than asked for 32868 > 32768"),
    ("unknownid", b"Unexpected reply "),
    ("toolong", b"Received message too long 300000"),
    ("truncated", b"Connection closed"),
])
@pytest.mark.parametrize("streams", [1, 3])
def test_broken_replies_end_the_session_as_sftp(
        sftp_bin: str, root: Path, mode: str, message: bytes,
        streams: int) -> None:
    """A broken protocol: sftp's message, exit 255, no partial file."""
    theirs, ours = run_both(sftp_bin, root, hostile(mode), SCRIPT,
                            streams=streams, build=_forget("big.copy"))
    assert ours.status == theirs.status == 255
    assert message in ours.stderr
    assert b"Traceback" not in ours.stderr
    if streams == 1:
        assert_same(theirs, ours)
    # sftp leaves an empty big.copy behind after a fatal reply; we don't
    assert leftovers(root) == []


def test_endless_listing_is_abandoned(root: Path, tmp_path: Path) -> None:
    """A server repeating its READDIR batch: a clear error, no hang."""
    environ = clean_environ(tmp_path / "env")
    ours = run_env(PSFTP + hostile("endless") + ["-b", "-"],
                   stdin=b"ls\n-get -r d out\nls -1 d\n", cwd=root,
                   environ=environ, timeout=TIMEOUT)
    assert ours.status == 1         # ls d fails; bare ls ignores errors
    assert ours.stderr.count(b"Server repeats entries during readdir of"
                             ) == 3
    assert b'remote readdir "' + os.fsencode(root) + b'/d" failed' \
        in ours.stderr
    assert sorted(os.listdir(root / "out")) == []
    assert b"Traceback" not in ours.stderr


async def _hostile_client(mode: str, root: Path
                          ) -> tuple[SFTPClient, asyncio.subprocess.Process]:
    """An SFTP client on ``hostile.py`` *mode* serving *root*."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HOSTILE), mode, cwd=root,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    client = SFTPClient(proc.stdout, proc.stdin)
    await asyncio.wait_for(client.start(), TIMEOUT)
    return client, proc


async def test_listing_past_the_entry_cap_is_abandoned(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New names forever: cut off at MAX_DIR_ENTRIES (lowered here)."""
    monkeypatch.setattr(protocol, "MAX_DIR_ENTRIES", 5000)
    client, proc = await _hostile_client("fresh", root)
    errors = io.BytesIO()
    try:
        with pytest.raises(CommandError):
            await asyncio.wait_for(read_directory(
                client, Output(io.BytesIO(), errors), "d"), TIMEOUT)
        assert errors.getvalue() == (
            b'Too many entries (over 5000) during readdir of "d": '
            b"listing abandoned\r\n")
        # the completion menu's quiet listing gives up too
        assert await asyncio.wait_for(list_remote(client, "d"),
                                      TIMEOUT) is None
        # the session is still usable
        assert (await client.stat("big")).size == len(BIG)
    finally:
        await client.close()
        await proc.wait()


async def test_interrupted_listing_stops(root: Path) -> None:
    """Ctrl-C (the interrupted flag) ends an endless listing at once."""
    client, proc = await _hostile_client("fresh", root)
    calls = 0

    def interrupted() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3
    try:
        names = await asyncio.wait_for(read_directory(
            client, Output(io.BytesIO(), io.BytesIO()), "d",
            interrupted=interrupted), TIMEOUT)
        assert names == []      # a partial listing is dropped, as in sftp
    finally:
        await client.close()
        await proc.wait()


def test_a_broken_reply_amid_overlapping_files(sftp_bin: str,
                                               root: Path) -> None:
    """get -r at -n 1 keeps several files in flight, so the request a
    broken server answers with a wrong id is another one than sftp's:
    only that number differs; the status, stdout and the files left are
    sftp's, with nothing partial under a final name."""
    for number in range(6):
        (root / "d" / f"g{number}").write_bytes(b"x" * (5000 + number))
    theirs, ours = run_both(sftp_bin, root, hostile("unknownid"),
                            b"get -r d out\n", build=_forget("out"))
    assert ours.status == theirs.status == 255
    assert ours.stdout == theirs.stdout
    for run in (theirs, ours):
        assert re.fullmatch(rb"Unexpected reply \d+\r\n", run.stderr), \
            run.stderr
    out = root / "out"
    left = [p for p in out.iterdir() if "psftp" not in p.name] \
        if out.exists() else []
    for path in left:
        assert path.read_bytes() == (root / "d" / path.name).read_bytes()
