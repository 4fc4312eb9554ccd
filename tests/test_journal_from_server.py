"""A server can send a file named as a resume journal was until
2026-12-07 (``.<name>.psftp-journal``, beside its target).  It is a
file like any other: copied as it is, never read as a journal, and its
``temp`` never makes a later ``reget`` or ``get -a`` write, rename or
remove a file outside that destination.  (Journals are kept in the
state directory now; the check on ``temp`` stays.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from psftp_shell.engine.get_chunks import ours
from tests.twins import psftp

MTIME = 1_700_000_000
DATA = bytes(range(256)) * 6


def _share(tmp_path: Path, victim: Path) -> Path:
    """A remote directory with a file and a journal naming *victim*."""
    share = tmp_path / "remote" / "share"
    share.mkdir(parents=True)
    report = share / "report.pdf"
    report.write_bytes(DATA)
    os.utime(report, (MTIME, MTIME))
    (share / ".report.pdf.psftp-journal").write_text(json.dumps({
        "version": 1, "source": str(report), "size": len(DATA),
        "mtime": MTIME, "temp": str(victim), "done": []}) + "\n")
    return share


@pytest.mark.parametrize("streams", ["1", "4"])
@pytest.mark.parametrize("resume", ["reget -r", "get -a -r"])
def test_a_journal_from_the_server_cannot_reach_other_files(
        sftp_server_bin: str, tmp_path: Path, streams: str,
        resume: str) -> None:
    victim = tmp_path / "home" / "authorized_keys"
    victim.parent.mkdir()
    victim.write_text("the user's own\n")
    share = _share(tmp_path, victim)
    local = tmp_path / "local"
    local.mkdir()
    script = f"get -r {share}\n{resume} {share}\n".encode()
    run = psftp(["-n", streams, "-D", sftp_server_bin, "-b", "-"],
                stdin=script, cwd=local)
    assert run.status == 0, run.stderr
    assert victim.read_text() == "the user's own\n"
    assert (local / "share" / "report.pdf").read_bytes() == DATA
    planted = ".report.pdf.psftp-journal"
    assert (local / "share" / planted).read_bytes() == \
        (share / planted).read_bytes()


def test_nor_remove_another_copys_temporary(sftp_server_bin: str,
                                            tmp_path: Path) -> None:
    """A journal that is not used is removed with its temporary only if
    that is a temporary of its own target: here it names the one an
    interrupted copy of another file left beside it."""
    local = tmp_path / "local"
    other = local / "share" / ".other.psftp-0123456789abcdef"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"half of another file")
    share = _share(tmp_path, other)
    script = f"get -r {share}\nreget -r {share}\n".encode()
    run = psftp(["-n", "4", "-D", sftp_server_bin, "-b", "-"],
                stdin=script, cwd=local)
    assert run.status == 0, run.stderr
    assert other.read_bytes() == b"half of another file"


@pytest.mark.parametrize("streams", ["1", "4"])
def test_a_file_named_as_a_journal_is_copied_like_any_other(
        sftp_server_bin: str, tmp_path: Path, streams: str) -> None:
    """Beside a file big enough to be copied in chunks: until 2026-12-07
    the copy's own journal took its name, and it was lost."""
    share = tmp_path / "remote" / "share"
    share.mkdir(parents=True)
    (share / "big").write_bytes(os.urandom(5 << 20))
    (share / ".big.psftp-journal").write_bytes(b"the user's notes\n")
    local = tmp_path / "local"
    local.mkdir()
    for command in ("get -r", "get -r", "reget -r", "get -a -r"):
        run = psftp(["-n", streams, "-D", sftp_server_bin, "-b", "-"],
                    stdin=f"{command} {share}\n".encode(), cwd=local)
        assert run.status == 0, run.stderr
        for name in ("big", ".big.psftp-journal"):
            assert (local / "share" / name).read_bytes() == \
                (share / name).read_bytes(), (command, name)
        assert sorted(p.name for p in (local / "share").iterdir()) == \
            [".big.psftp-journal", "big"]


def test_ours_names_only_a_temporary_of_the_target(tmp_path: Path) -> None:
    final = str(tmp_path / "big")
    temp = str(tmp_path / ".big.psftp-0123456789abcdef")
    assert ours(temp, final)
    assert ours(str(tmp_path / "." / ".big.psftp-0123456789abcdef"), final)
    assert not ours(str(tmp_path / ".bog.psftp-0123456789abcdef"), final)
    assert not ours("/etc/.big.psftp-0123456789abcdef", final)
    assert not ours(str(tmp_path / "victim"), final)
    assert not ours(str(tmp_path / ".big.psftp-0123"), final)
