"""OpenSSH's sftp fixes after 9.2: one test for each decision.

The table in the man page (section on differences from sftp) lists
every security or data-safety change OpenSSH made to ``sftp.c``,
``sftp-client.c``, ``sftp-common.c`` and ``sftp-glob.c`` from 9.2 to
10.5 and whether psftp-shell adopted it, was already safe, or is not
concerned.  Each test here names its release.  The download to a
server-controlled path (10.4) is tested in
:mod:`tests.test_hostile_paths`.
"""

from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.core.output import Output
from psftp_shell.engine.transfer_engine import TransferEngine
from psftp_shell.filecopy.copy_context import DEFAULT_REQUESTS
from psftp_shell.sftp.wire import Limits, decode_attrs
from tests.test_hostile import BIG, hostile, run_both
from tests.twins import PSFTP, clean_environ, run_env

TIMEOUT = 30.0


def _ours(root: Path, mode: str, script: bytes, streams: int
          ) -> tuple[int, bytes, bytes]:
    done = run_env(PSFTP + ["-n", str(streams)] + hostile(mode)
                   + ["-b", "-"], stdin=script, cwd=root,
                   environ=clean_environ(root.parent / "env"),
                   timeout=TIMEOUT)
    return done.status, done.stdout, done.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    top = tmp_path / "area" / "root"
    top.mkdir(parents=True)
    (top / "big").write_bytes(BIG)
    (top / "old").write_bytes(b"the old contents\n")
    return top


# ---- 10.1: a failed WRITE hidden by later successful ones

@pytest.mark.parametrize("streams", [1, 4])
def test_failed_write_fails_the_upload_and_keeps_the_target(
        root: Path, streams: int) -> None:
    """10.1 (sftp 9.2 reports success over a file with a hole): the
    failure is reported, and with posix-rename nothing is left behind:
    no new file, an existing target untouched, no temporary."""
    status, _, err = _ours(root, "writefail+rename",
                           b"-put big new\n-put big old\n", streams)
    assert status == 0              # both lines excused by "-"
    assert err.count(b"Failure") == 2, err
    assert b'write remote "' in err
    assert not (root / "new").exists()
    assert (root / "old").read_bytes() == b"the old contents\n"
    assert sorted(os.listdir(root)) == ["big", "old"]


@pytest.mark.parametrize("streams", [1, 4])
def test_failed_write_in_place_is_reported(root: Path,
                                           streams: int) -> None:
    """Without posix-rename the upload is written in place, as sftp
    does; the failure still ends the batch with status 1."""
    status, _, err = _ours(root, "writefail", b"put big new\npwd\n",
                           streams)
    assert status == 1
    assert b'write remote "' in err and b"Failure" in err


# ---- 10.3: limits' open-handles is not a request depth

class _LimitsClient:
    """Just enough of a client for TransferEngine.create."""

    def __init__(self, handles: int) -> None:
        self.found = Limits(0, 0, 0, handles)

    def has_extension(self, name: str) -> bool:
        return name == "limits@openssh.com"

    async def limits(self) -> Limits:
        return self.found

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.mark.parametrize("handles", [1, 3, 0])
async def test_open_handles_limit_does_not_cut_requests(
        handles: int) -> None:
    """10.3: a server allowing one open handle still gets sftp's default
    number of outstanding requests (9.2 used the handle count)."""
    out = Output(io.BytesIO(), io.BytesIO(), quiet=True)
    engine = await TransferEngine.create(
        _LimitsClient(handles), out)  # type: ignore[arg-type]
    assert engine.ctx.max_requests == DEFAULT_REQUESTS


# ---- 10.4: a server answering READ with zero bytes, forever

@pytest.mark.parametrize("streams", [1, 4])
def test_zero_length_reads_end_the_session(root: Path,
                                           streams: int) -> None:
    """10.4 (sftp 9.2 re-requests forever; psftp-shell took the empty
    DATA for the end of file and reported an empty copy as a success):
    a fatal protocol error, exit 255, no file left."""
    status, _, err = _ours(root, "zeroread", b"get big copy\n", streams)
    assert status == 255
    assert b"server sent zero data length" in err
    assert sorted(os.listdir(root)) == ["big", "old"]


# ---- 10.4: an empty REALPATH reply

def test_empty_realpath_reply_as_sftp(sftp_bin: str, root: Path) -> None:
    """10.4 fixed a one-byte over-read on a NAME reply with no name;
    psftp-shell refuses it with sftp's message and status."""
    theirs, ours = run_both(sftp_bin, root, hostile("emptyname"), b"pwd\n")
    assert (ours.status, ours.stdout, ours.stderr) == (
        theirs.status, theirs.stdout, theirs.stderr)
    assert ours.status == 255
    assert b"Got multiple names (0) from SSH2_FXP_REALPATH" in ours.stderr


# ---- 9.4 and 10.0: resuming with a server that reorders replies

@pytest.mark.parametrize("streams", [1, 4])
def test_resume_over_a_reordering_server_is_exact(root: Path,
                                                  streams: int) -> None:
    """9.4 (truncate at the highest block, not the highest contiguous
    one, when replies come out of order) and 10.0 (a resumed put's
    high-water mark): ``reget`` and ``reput`` against a server that
    swaps its replies give exact copies and no complaint."""
    (root / "part").write_bytes(BIG[:50_000])
    (root / "rpart").write_bytes(BIG[:70_000])
    status, _, err = _ours(root, "swap", b"reget big part\nreput big rpart\n"
                           b"get big whole\n", streams)
    assert (status, err) == (0, b""), err
    for name in ("part", "rpart", "whole"):
        assert (root / name).read_bytes() == BIG, name


# ---- 10.3: a source named ".." goes to the destination itself

def test_dotdot_source_lands_in_the_destination(tmp_path: Path) -> None:
    """10.3: ``get -r ..`` fills the current directory (sftp 9.2 wrote
    into the parent of it) and ``put -r .. dir`` fills *dir*."""
    top = tmp_path / "w"
    (top / "remote" / "sub").mkdir(parents=True)
    (top / "remote" / "t.txt").write_bytes(b"t\n")
    (top / "remote" / "sub" / "s.txt").write_bytes(b"s\n")
    here = top / "local" / "here"
    here.mkdir(parents=True)
    (top / "local" / "up.txt").write_bytes(b"up\n")
    script = (f"cd {top}/remote/sub\nget -r ..\n"
              f"put -r .. {top}/remote/sub/in\n").encode()
    status, _, err = _run_ours(here, script)
    assert status == 0, err
    assert (here / "t.txt").read_bytes() == b"t\n"
    assert (here / "sub" / "s.txt").read_bytes() == b"s\n"
    assert sorted(os.listdir(top / "local")) == ["here", "up.txt"]
    assert (top / "remote" / "sub" / "in" / "up.txt").read_bytes() == \
        b"up\n"
    assert not (top / "remote" / "in").exists()


def _run_ours(cwd: Path, script: bytes) -> tuple[int, bytes, bytes]:
    done = run_env(PSFTP + ["-D", "/usr/lib/openssh/sftp-server", "-b", "-"],
                   stdin=script, cwd=cwd,
                   environ=clean_environ(cwd.parent.parent / "env"),
                   timeout=TIMEOUT)
    return done.status, done.stdout, done.stderr


# ---- 10.3: put -r keeps the mode of a directory it did not make

@pytest.mark.parametrize("flags", ["-r", "-rp"])
def test_put_r_keeps_an_existing_directory_mode(tmp_path: Path,
                                                flags: str) -> None:
    """10.3: ``put -r`` sets the local mode on a remote directory only
    when it made it, or with ``-p`` (sftp 9.2 set it on an existing one
    too, opening a 0700 directory to others)."""
    work = tmp_path / "w" / "x"
    local, remote = work / "local", work / "remote"
    (local / "d" / "made").mkdir(parents=True)
    (local / "d" / "f").write_bytes(b"f\n")
    (remote / "d").mkdir(parents=True)
    for path in (local / "d", local / "d" / "made"):
        path.chmod(0o755)
    (remote / "d").chmod(0o700)
    status, _, err = _run_ours(local, f"put {flags} d {remote}\n".encode())
    assert status == 0, err
    kept = 0o755 if flags == "-rp" else 0o700
    assert (remote / "d").stat().st_mode & 0o777 == kept
    assert (remote / "d" / "made").stat().st_mode & 0o777 == 0o755
    assert (remote / "d" / "f").read_bytes() == b"f\n"


# ---- 10.4: copy-data reading and writing one file

def test_copy_onto_the_same_file_keeps_it(tmp_path: Path) -> None:
    """10.4 made the server refuse a copy-data whose two handles are one
    inode; sftp 9.2 truncates the target before asking, so ``cp f f``
    and ``cp link-to-f f`` leave f empty.  psftp-shell truncates only
    after the copy, to the source's size: f keeps its bytes, and a
    longer target is cut to the copy."""
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    (work / "f").write_bytes(b"precious\n")
    (work / "link").symlink_to("f")
    (work / "long").write_bytes(b"a longer old file\n" * 10)
    status, _, err = _run_ours(
        work, b"-cp f f\n-cp link f\ncp f long\ncp link new\n")
    assert status == 0, err
    assert err.count(b"Couldn't copy file") == 1    # cp f f: refused
    for name in ("f", "long", "new"):
        assert (work / name).read_bytes() == b"precious\n", name


# ---- 9.4: a ridiculous number of extended attributes

def test_extended_attribute_count_is_bounded_by_the_packet() -> None:
    """9.4 capped the count; here the packet bounds it: a count of
    2**32-1 over 8000 bytes fails at once (sftpcore turns the error into
    a protocol error)."""
    started = time.monotonic()
    with pytest.raises(struct.error):
        decode_attrs(b"\x80\x00\x00\x00\xff\xff\xff\xff" + bytes(8000))
    assert time.monotonic() - started < 10    # not minutes of a loop


# ---- 10.4: descriptors to the server are not inherited by ! commands

def test_bang_commands_inherit_no_connection_descriptor(
        tmp_path: Path) -> None:
    """10.4 set close-on-exec on sftp's pipes to ssh: a ``!`` command
    writing on an odd descriptor could break the connection.  A ``!``
    command of psftp-shell sees only 0, 1, 2 (and ls's own listing)."""
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    status, out, err = _run_ours(work, b"!ls /proc/self/fd\npwd\n")
    assert status == 0, err
    listed = out.split(b"\n", 1)[1].split(b"sftp> pwd")[0].split()
    assert listed and set(listed) <= {b"0", b"1", b"2", b"3"}, out
