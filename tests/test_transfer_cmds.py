"""get/put/reget/reput compared with OpenSSH's sftp on twin trees.

Each case builds a scratch tree, runs a batch through the real
``sftp -D sftp-server`` in it, records stdout, stderr, the exit status
and the resulting tree, then rebuilds the same tree at the same path and
runs the same batch through psftp-shell's command loop on its own
sftp-server.  Everything must be byte-identical.  Local and remote live in
the one tree, as they do with ``-D``.

:func:`twin_runs` is the reusable part: give it a tree builder and a
batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from psftp_shell.core.output import Output
from psftp_shell.engine.transfer_engine import (
    MAX_BUFFER,
    TEMP_MARK,
    TransferEngine,
)
from psftp_shell.frontend.batch_loop import run_lines
from psftp_shell.sftp.client import SFTPClient
from psftp_shell.shell.command_line import FAILED, run_line
from psftp_shell.shell.context import Settings, Shell
from psftp_shell.shell.remote_session import RemoteSession
from psftp_shell.ssh.transport import PipeTransport
from tests.test_engine import MIB, PipeWriter, payload, within

FIXED_TIME = 1_000_000_000
"""Setup stamps every file with this mtime; later mtimes count as fresh."""
FRESH = 1_500_000_000

Builder = Callable[[Path], None]


@dataclass(frozen=True)
class Outcome:
    """What one program did to a tree."""

    status: int
    stdout: bytes
    stderr: bytes
    tree: dict[str, tuple[object, ...]]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Describe every entry under *root*: type, mode, content, mtime.

    An mtime is kept only when it is an old, fixed one (preserved by -p
    or untouched); fresh ones differ between runs and become "fresh".
    """
    tree: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        mtime: object = int(st.st_mtime)
        if st.st_mtime >= FRESH:
            mtime = "fresh"
        rel = str(path.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            tree[rel] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            tree[rel] = ("file", oct(st.st_mode), st.st_size, digest,
                         mtime)
        else:
            tree[rel] = ("other", oct(st.st_mode), mtime)
    return tree


def stamp(root: Path) -> None:
    """Give everything under *root* the fixed time (links untouched)."""
    for path in sorted(root.rglob("*"), reverse=True):
        if not path.is_symlink():
            os.utime(path, (FIXED_TIME, FIXED_TIME))


def sftp_flags(settings: Settings) -> list[str]:
    """sftp's command-line switches for the session-wide settings."""
    pairs = [("-a", settings.resume), ("-f", settings.fsync),
             ("-p", settings.preserve), ("-r", settings.recursive)]
    return [flag for flag, on in pairs if on]


def run_sftp(sftp_bin: str, server: str, root: Path, batch: str,
             settings: Settings) -> Outcome:
    """Run the real sftp on *batch* in *root* (``-b`` or piped stdin)."""
    script = root.parent / "batch"
    script.write_text(batch)
    argv = [sftp_bin, "-D", server, *sftp_flags(settings)]
    if settings.batch:
        argv += ["-b", str(script)]
    with open(script, "rb") as stdin:
        done = subprocess.run(argv, stdin=stdin, cwd=root,
                              capture_output=True, timeout=120)
    # psftp-shell's front end prints this; the command loop does not.
    attached = f"Attached to {server}.\n".encode()
    stderr = done.stderr.replace(attached, b"", 1)
    return Outcome(done.returncode, done.stdout, stderr, snapshot(root))


async def run_ours(server: str, root: Path, batch: str,
                   settings: Settings) -> Outcome:
    """Run psftp-shell's command loop on *batch* in *root*.

    With ``settings.streams`` > 1 the copies run on that many more
    sftp-server processes, in chunks of two blocks from 256 KiB on, so
    that even these small trees are cut up and spread.
    """
    proc = await asyncio.create_subprocess_exec(
        server, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=root)
    assert proc.stdin is not None and proc.stdout is not None
    client = SFTPClient(proc.stdout, PipeWriter(proc.stdin))
    pool = PipeTransport([server])
    stdout, stderr = io.BytesIO(), io.BytesIO()
    try:
        await within(client.start())
        out = Output(stdout, stderr, quiet=settings.batch)
        remote = RemoteSession(client, out)
        await within(remote.start())
        engine = await within(TransferEngine.create(
            client, out, transport=pool, streams=settings.streams))
        engine.ctx.chunk = 2 * MAX_BUFFER
        engine.ctx.share_min = 256 * 1024
        shell = Shell(out, remote, engine, str(root), settings)
        result = await within(run_lines(
            shell, io.BytesIO(batch.encode()), abort=settings.batch))
        if settings.streams > 1:    # the copies did run on the pool
            assert len(pool.processes) == settings.streams
    finally:
        await client.close()
        await proc.wait()
        await pool.close()
    return Outcome(1 if result else 0, stdout.getvalue(),
                   stderr.getvalue(), snapshot(root))


async def twin_runs(tmp_path: Path, sftp_bin: str, server: str,
                    build: Builder, batch: str,
                    settings: Settings | None = None
                    ) -> tuple[Outcome, Outcome]:
    """Run *batch* through sftp and psftp-shell on twin trees.

    Both runs happen in the same directory (so absolute paths in the
    messages agree), each on a fresh tree made by *build* and stamped
    with :data:`FIXED_TIME`.
    """
    settings = settings or Settings(batch=True)
    root = tmp_path / "w"
    outcomes = []
    for ours in (False, True):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        build(root)
        stamp(root)
        if ours:
            outcomes.append(await run_ours(server, root, batch, settings))
        else:
            outcomes.append(run_sftp(sftp_bin, server, root, batch,
                                     settings))
    return outcomes[0], outcomes[1]


def assert_same(theirs: Outcome, ours: Outcome) -> None:
    """Byte-identical output, the same status, the same tree."""
    assert ours.stdout.decode() == theirs.stdout.decode()
    assert ours.stderr.decode() == theirs.stderr.decode()
    assert ours.status == theirs.status
    assert ours.tree == theirs.tree
    assert not [name for name in ours.tree if TEMP_MARK in name]


async def compare(tmp_path: Path, sftp_bin: str, server: str,
                  build: Builder, batch: str,
                  settings: Settings | None = None, *,
                  streams: int = 1) -> Outcome:
    settings = replace(settings or Settings(batch=True), streams=streams)
    theirs, ours = await twin_runs(tmp_path, sftp_bin, server, build,
                                   batch, settings)
    assert_same(theirs, ours)
    return ours


@pytest.fixture(params=[1, 3], ids=["n1", "n3"])
def streams(request: pytest.FixtureRequest) -> int:
    """Run a differential test with one stream, and with three."""
    return int(request.param)


# ---------------------------------------------------------------- trees

def flat(root: Path) -> None:
    """Files of awkward sizes and a few local destinations."""
    r, local = root / "r", root / "l"
    r.mkdir()
    local.mkdir()
    for name, size in [("a", 0), ("b", 1), ("c.txt", 261119),
                       ("d.txt", 261121), ("e.bin", 3 * 261120 + 5)]:
        (r / name).write_bytes(payload(size, seed=len(name) + size))
    (r / "e.bin").chmod(0o640)
    (r / "dir").mkdir()
    (r / "dir" / "inner").write_bytes(b"inner\n")
    (r / "link_to_b").symlink_to("b")
    (r / "dangling").symlink_to("nowhere")
    (local / "existing").write_bytes(b"old contents\n")
    (local / "existing").chmod(0o600)
    (local / "target").write_bytes(b"target\n")
    (local / "link_to_target").symlink_to("target")


def flat_big(root: Path) -> None:
    """:func:`flat` plus a 20 MiB local file."""
    flat(root)
    (root / "l" / "big").write_bytes(payload(20 * MIB, seed=3))


def nested(root: Path) -> None:
    """A tree with nested and empty directories, links and a FIFO."""
    top = root / "src"
    (top / "one" / "two" / "three").mkdir(parents=True)
    (top / "empty").mkdir()
    (top / "ro").mkdir()
    (top / "one" / "f1").write_bytes(payload(300_000))
    (top / "one" / "two" / "f2").write_bytes(b"two\n")
    (top / "one" / "two" / "three" / "f3").write_bytes(b"")
    (top / "ro" / "r").write_bytes(b"read only dir\n")
    (top / "ro").chmod(0o555)
    (top / "sticky").mkdir()
    (top / "sticky").chmod(0o1775)
    (top / "one" / "f1").chmod(0o604)
    (top / "sym").symlink_to("one/f1")
    (top / "symdir").symlink_to("one")
    os.mkfifo(top / "fifo")
    # names sftp escapes: invalid UTF-8, control characters
    (top / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name\n")
    os.mkfifo(top / "tab\there")
    (top / "ctl\x01dir").mkdir()
    (top / "ctl\x01dir" / "new\nline").write_bytes(b"x")
    (root / "dst").mkdir()
    (root / "afile").write_bytes(b"not a dir\n")


# ---------------------------------------------------------------- get

GET_BATCH = """\
get r/a
get r/b l
get r/c.txt l/newname
get r/e.bin l/existing
get r/*.txt l
mget r/[ab] l/
-get r/[ab] l/existing
-get r/nonexist
-get r/*.none
-get /nonexist/*
-get r/dir
get r/link_to_b l/via_link
-get r/dangling l/x
get r/d.txt l/link_to_target
get -p r/e.bin l/preserved
-get r/b /dev/full
get r/e.bin /dev/null
"""


async def test_get_matches_sftp(tmp_path: Path, sftp_bin: str,
                                sftp_server_bin: str, streams: int) -> None:
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, flat,
                         GET_BATCH, streams=streams)
    assert ours.tree["l/newname"][2] == 261119
    assert ours.tree["l/preserved"][1] == "0o100640"
    assert ours.tree["l/link_to_target"] == ("link", "target")
    assert b"Multiple source paths" in ours.stderr


async def test_get_messages_when_not_quiet(tmp_path: Path, sftp_bin: str,
                                           sftp_server_bin: str, streams: int
                                           ) -> None:
    batch = ("get r/b l/x\nreget r/b l/x\nget -a r/c.txt l/y\n"
             "get r/dir/ l\nget r/* l\n")
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, flat, batch,
                         Settings(batch=False), streams=streams)
    assert b"Fetching " in ours.stdout and b"Resuming " in ours.stdout


async def test_get_recursive_matches_sftp(tmp_path: Path, sftp_bin: str,
                                          sftp_server_bin: str, streams: int
                                          ) -> None:
    batch = ("get -r src dst\nget -r src/one\nget -R src dst/renamed\n"
             "get -rp src dst/kept\n-get -r src/one/two/f2 afile\n"
             "-get -r src afile\n")
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, nested,
                         batch, streams=streams)
    assert ours.tree["dst/src/empty"][0] == "other"
    assert int(str(ours.tree["dst/src/sticky"][1]), 8) & stat.S_ISVTX
    assert "dst/src/sym" not in ours.tree
    assert b"Retrieving " in ours.stdout


async def test_global_recursive_and_preserve(tmp_path: Path, sftp_bin: str,
                                             sftp_server_bin: str, streams: int
                                             ) -> None:
    batch = "get src dst\nput src dst/up\n"
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, nested,
                         batch, Settings(batch=True, recursive=True,
                                         preserve=True), streams=streams)
    assert ours.tree["dst/up/one/f1"][4] == FIXED_TIME


# ---------------------------------------------------------------- put

PUT_BATCH = """\
put l/existing
put l/target r
put l/target r/newname
put l/existing r/e.bin
put l/big r/big
put l/big r/big
put l/big r/dir
mput l/*t r/dir
-put l/[et]* r/a
-put l/nonexist
-put l/nonexist* r
-put l
put -p l/existing r/preserved
put l/link_to_target r/linked
-put l/target /dev/full
"""


async def test_put_matches_sftp(tmp_path: Path, sftp_bin: str,
                                sftp_server_bin: str, streams: int) -> None:
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, flat_big,
                         PUT_BATCH, streams=streams)
    # an existing remote file keeps its mode unless -p
    assert ours.tree["r/e.bin"][1] == "0o100640"
    assert ours.tree["r/preserved"][1] == "0o100600"
    assert b"Multiple paths match" in ours.stderr


async def test_put_messages_when_not_quiet(tmp_path: Path, sftp_bin: str,
                                           sftp_server_bin: str, streams: int
                                           ) -> None:
    batch = ("put l/target r/x\nreput l/target r/x\nput l/* r/dir\n"
             "put -a l/existing r/e.bin\nput l/big r/dir\n"
             "put l/big r/big2\n")
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, flat_big,
                         batch, Settings(batch=False), streams=streams)
    assert b"Uploading " in ours.stdout
    assert b"Resuming upload of " in ours.stdout


async def test_put_recursive_matches_sftp(tmp_path: Path, sftp_bin: str,
                                          sftp_server_bin: str, streams: int
                                          ) -> None:
    batch = ("put -r src dst\nput -r src/one/two\n"
             "put -R src dst/renamed\n"
             "put -rp src dst/kept\n-put -r src afile\n")
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, nested,
                         batch, streams=streams)
    assert ours.tree["dst/src/ro"][1] == "0o40555"
    assert "dst/src/sym" not in ours.tree
    assert b"exists but is not a directory" in ours.stderr


# ---------------------------------------------------------------- resume

def partial(root: Path) -> None:
    """Remote and local copies cut short, equal, and too long."""
    data = payload(3 * 261120 + 11, seed=9)
    (root / "r").mkdir()
    (root / "l").mkdir()
    for side in ("r", "l"):
        (root / side / "full").write_bytes(data)
        (root / side / "half").write_bytes(data[:300_000])
        (root / side / "same").write_bytes(data)
        (root / side / "longer").write_bytes(data + b"tail")


RESUME_BATCH = """\
reget r/full l/half
-reget r/full l/same
-reget r/full l/longer
reget r/full l/absent
reput l/full r/half
-reput l/full r/same
-reput l/full r/longer
-reput l/full r/absent
get -a r/full l/viaflag
-put -a l/half r/full
"""


async def test_resume_matches_sftp(tmp_path: Path, sftp_bin: str,
                                   sftp_server_bin: str, streams: int) -> None:
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, partial,
                         RESUME_BATCH, streams=streams)
    assert ours.tree["l/half"][3] == ours.tree["r/full"][3]
    assert ours.tree["r/half"][3] == ours.tree["r/full"][3]
    assert b"was not modified" in ours.stderr


async def test_global_resume_flag(tmp_path: Path, sftp_bin: str,
                                  sftp_server_bin: str, streams: int) -> None:
    batch = "get r/full l/half\n-put l/full r/same\n"
    await compare(tmp_path, sftp_bin, sftp_server_bin, partial, batch,
                  Settings(batch=True, resume=True), streams=streams)


async def test_batch_aborts_on_failed_transfer(
        tmp_path: Path, sftp_bin: str, sftp_server_bin: str,
        streams: int) -> None:
    batch = "get r/a l/a1\nget r/nonexist\nget r/b l/b1\n"
    ours = await compare(tmp_path, sftp_bin, sftp_server_bin, flat, batch,
                         streams=streams)
    assert ours.status == 1
    assert "l/b1" not in ours.tree


@pytest.mark.parametrize("command", ["get", "put"])
async def test_interrupt_stops_the_match_loop(tmp_path: Path,
                                              sftp_server_bin: str,
                                              command: str,
                                              streams: int) -> None:
    root = tmp_path / "w"
    root.mkdir()
    flat(root)
    (root / "r2").mkdir()
    batch = ("get r/*.txt r/../l2" if command == "get"
             else "put r/*.txt r2")
    (root / "l2").mkdir()
    proc = await asyncio.create_subprocess_exec(
        sftp_server_bin, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=root)
    assert proc.stdin is not None and proc.stdout is not None
    client = SFTPClient(proc.stdout, PipeWriter(proc.stdin))
    pool = PipeTransport([sftp_server_bin])
    try:
        await within(client.start())
        stderr = io.BytesIO()
        out = Output(io.BytesIO(), stderr, quiet=True)
        remote = RemoteSession(client, out)
        await within(remote.start())
        engine = await within(TransferEngine.create(
            client, out, transport=pool, streams=streams))
        shell = Shell(out, remote, engine, str(root),
                      Settings(batch=True, streams=streams))

        class Stop:
            def command_started(self, *, streams: int) -> None:
                pass

            def command_finished(self) -> None:
                pass

            def file_started(self, job: object) -> None:
                shell.interrupted = True

            def advanced(self, job: object, nbytes: int,
                         stream: int = 0) -> None:
                pass

            def file_finished(self, job: object,
                              error: BaseException | None) -> None:
                pass

        engine.observer = Stop()
        result = await within(run_line(shell, batch, echo=False,
                                       abort=True))
    finally:
        await client.close()
        await proc.wait()
        await pool.close()
    target = root / ("l2" if command == "get" else "r2")
    assert [p.name for p in target.iterdir()] == []
    assert stderr.getvalue() == b""
    assert result == FAILED
