"""``put -a -R``: complete files skipped, missing ones sent whole.

A deliberate difference from sftp 9.2, which fails both (``resume ...:
destination file same size or larger`` and ``stat remote: No such file
or directory``), so that a resumed tree upload finishes the job the way a
resumed tree download already does in sftp.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOURCES = {"a": b"a" * 5000, "b": b"b" * 7000, "c": b"c" * 300,
           "sub/d": b"d" * 10, "sub/e": b""}
PARTIAL = {"a": b"a" * 5000, "b": b"b" * 100, "sub/e": b""}


def _arena(root: Path) -> Path:
    for name, data in SOURCES.items():
        (root / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / name).write_bytes(data)
    for name, data in PARTIAL.items():
        (root / "dst/src" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "dst/src" / name).write_bytes(data)
    (root / "batch").write_text("put -a -R src dst\n")
    return root


def _run(argv: list[str], root: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*argv, "-b", "batch"], cwd=root,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("streams", ["1", "4"])
def test_resumed_tree_upload_finishes_where_sftp_fails(
        tmp_path: Path, sftp_bin: str, sftp_server_bin: str,
        streams: str) -> None:
    theirs_root = _arena(tmp_path / "theirs")
    ours_root = _arena(tmp_path / "ours")
    theirs = _run([sftp_bin, "-D", sftp_server_bin], theirs_root)
    ours = _run([sys.executable, "-m", "psftp_shell", "-n", streams,
                 "-D", sftp_server_bin], ours_root)
    # sftp: the complete file and the missing ones fail
    assert theirs.returncode == 1
    assert b"destination file same size or larger" in theirs.stderr
    assert b"stat remote: No such file or directory" in theirs.stderr
    assert (theirs_root / "dst/src/b").read_bytes() == SOURCES["b"]
    assert not (theirs_root / "dst/src/c").exists()
    # psftp-shell: the same lines on stdout, no error, every file whole
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == b""
    assert ours.stdout == theirs.stdout
    for name, data in SOURCES.items():
        assert (ours_root / "dst/src" / name).read_bytes() == data, name


def test_single_reput_of_a_complete_file_still_fails_like_sftp(
        tmp_path: Path, sftp_bin: str, sftp_server_bin: str) -> None:
    runs = []
    for who, argv in (("theirs", [sftp_bin]),
                      ("ours", [sys.executable, "-m", "psftp_shell"])):
        root = _arena(tmp_path / who)
        (root / "batch").write_text("reput src/a dst/src/a\n")
        result = _run([*argv, "-D", sftp_server_bin], root)
        runs.append((result.returncode, result.stdout, result.stderr))
    assert runs[0] == runs[1]
    assert runs[1][0] == 1
    assert b"destination file same size or larger" in runs[1][2]
