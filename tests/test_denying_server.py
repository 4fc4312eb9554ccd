"""A server that refuses some requests, as configured servers do.

OpenSSH's sftp-server takes ``-P`` with request names to refuse (a NAS
without fsetstat, a server without setstat or with CLOSE refused).
sftp and psftp-shell (at ``-n 1`` and ``-n 4``, where a 6 MB file goes
in chunks) run the same one-command batch against the same trees:
status, stdout, stderr and the trees left behind must be identical.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from tests.twins import (
    FIXED_TIME,
    PSFTP,
    Outcome,
    clean_environ,
    run_env,
    snapshot_tree,
)

BIG = 6_000_000         # past the 4 MiB a parallel copy splits


def _build(local: Path, remote: Path) -> None:
    """The two trees, afresh, every entry at :data:`FIXED_TIME`."""
    rand = random.Random(7)
    files = {local / "small.txt": (b"local small\n", 0o640),
             local / "big.bin": (rand.randbytes(BIG), 0o640),
             remote / "rsmall.txt": (b"remote small\n", 0o604),
             remote / "rbig.bin": (rand.randbytes(BIG), 0o644),
             remote / "rold.txt": (b"a longer old remote file\n", 0o600),
             remote / "rold.bin": (b"old remote bin\n", 0o600)}
    for root in (local, remote):
        root.mkdir(parents=True)
    for path, (data, mode) in files.items():
        path.write_bytes(data)
        path.chmod(mode)
        os.utime(path, (FIXED_TIME, FIXED_TIME))


def _twin(tmp_path: Path, program: list[str], server_bin: str,
          deny: str, line: str) -> Outcome:
    """Run *line* with *program* against ``sftp-server -P deny``."""
    base = tmp_path / "arena"
    local, remote = base / "local", base / "remote"
    shutil.rmtree(base, ignore_errors=True)
    _build(local, remote)
    server = base / "server"       # sftp's -D runs a path, no arguments
    server.write_text(f'#!/bin/sh\ncd "{remote}" || exit 1\n'
                      f"exec {server_bin} -P {deny}\n")
    server.chmod(0o755)
    environ = clean_environ(tmp_path / "env")
    environ["XDG_STATE_HOME"] = str(tmp_path / "env" / "state")
    done = run_env(program + ["-D", str(server), "-b", "-"],
                   stdin=line.encode() + b"\n", cwd=local,
                   environ=environ)
    return Outcome(done.status, done.stdout, done.stderr,
                   (snapshot_tree(local), snapshot_tree(remote)))

CASES = [
    # cp truncates the target with FSETSTAT after copy-data; sftp opens it
    # with O_TRUNC and needs neither FSTAT nor FSETSTAT
    ("fstat", "cp rsmall.txt rold.txt"),
    ("fsetstat", "cp rsmall.txt rold.txt"),
    ("fsetstat,setstat", "cp rsmall.txt rold.txt"),
    ("fsetstat,setstat", "cp rbig.bin rcopy.bin"),
    # a replaced file keeps its mode, as sftp's in-place copy keeps it
    ("fsetstat", "put small.txt rold.txt"),
    ("fsetstat", "put big.bin rold.bin"),
    ("fsetstat,setstat", "put big.bin rold.bin"),
    ("fsetstat,setstat", "put -p small.txt rold.txt"),
    # -p in chunks sets times with SETSTAT; refused, with FSETSTAT
    ("setstat", "put -p big.bin"),
    # a download whose every byte arrived is kept when CLOSE fails
    ("close", "get rsmall.txt"),
    ("close", "get rbig.bin"),
]


@pytest.mark.parametrize("streams", ["1", "4"])
@pytest.mark.parametrize(("deny", "line"), CASES)
def test_refused_requests_as_sftp(tmp_path: Path, sftp_bin: str,
                                  sftp_server_bin: str, deny: str,
                                  line: str, streams: str) -> None:
    theirs = _twin(tmp_path, [sftp_bin], sftp_server_bin, deny, line)
    ours = _twin(tmp_path, PSFTP + ["-n", streams], sftp_server_bin,
                 deny, line)
    assert ours == theirs
