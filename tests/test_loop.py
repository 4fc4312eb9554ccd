"""Batch and piped input: echo, abort, and the long-line difference."""

from __future__ import annotations

from pathlib import Path

from psftp_shell.frontend.batch_loop import MAX_LINE, decode_line
from tests.twins import psftp, sftp


def test_decode_line_cuts_at_newline_and_nul() -> None:
    assert decode_line(b"ls -l\n") == "ls -l"
    assert decode_line(b"pwd\0rm x\n") == "pwd"
    assert decode_line(b"ls \xff\xfe\n") == "ls \udcff\udcfe"
    assert decode_line(b"x" * MAX_LINE + b"\n") == "x" * MAX_LINE
    assert decode_line(b"x" * (MAX_LINE + 1)) is None


def test_long_line_fails_a_batch(tmp_path: Path,
                                 sftp_server_bin: str) -> None:
    script = b"pwd\nls " + b"a" * 3000 + b"\npwd\n"
    result = psftp(["-D", sftp_server_bin, "-b", "-"], stdin=script,
                   cwd=tmp_path)
    assert result.status == 1
    assert result.stderr == b"Error: input line too long\n"
    assert result.stdout.count(b"sftp> pwd") == 1


def test_long_line_is_skipped_in_piped_input(tmp_path: Path,
                                             sftp_server_bin: str) -> None:
    script = b"pwd\nls " + b"a" * 3000 + b"\npwd\n"
    result = psftp(["-D", sftp_server_bin], stdin=script, cwd=tmp_path)
    assert result.status == 0
    assert result.stdout.count(b"sftp> pwd") == 2
    assert b"Error: input line too long\n" in result.stderr


def test_piped_input_never_aborts_like_sftp(tmp_path: Path, sftp_bin: str,
                                            sftp_server_bin: str) -> None:
    script = (b"bogus\nget nonexistent\n  pwd  \n\n# comment\n@pwd\n"
              b"-ls nothere\nrm\nls -z\nquit\npwd\n")
    args = ["-D", sftp_server_bin]
    ours = psftp(args, stdin=script, cwd=tmp_path)
    theirs = sftp(sftp_bin, args, stdin=script, cwd=tmp_path)
    assert ours.status == theirs.status == 0
    assert ours.stdout == theirs.stdout
    assert ours.stderr.replace(b"Attached to", b"") == \
        theirs.stderr.replace(b"Attached to", b"")


def test_batch_binary_garbage_gives_sftp_errors(tmp_path: Path,
                                                sftp_bin: str,
                                                sftp_server_bin: str) -> None:
    script = (b"-\x01\x02\xff\xfe\n-'unterminated\n-\"\"\n-@\n"
              b"-ls \x1b[31m\npwd\n")
    args = ["-D", sftp_server_bin, "-b", "-"]
    ours = psftp(args, stdin=script, cwd=tmp_path)
    theirs = sftp(sftp_bin, args, stdin=script, cwd=tmp_path)
    assert ours == theirs
    assert b"Traceback" not in ours.stderr
