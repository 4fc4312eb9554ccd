"""The command line end to end: psftp-shell against OpenSSH's sftp."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD, free_port
from tests.twins import psftp, same_usage, sftp


def test_batch_pwd_is_byte_identical(sshd: PrivateSSHD, sftp_bin: str
                                     ) -> None:
    args = ["-F", str(sshd.ssh_config), "-b", "-", HOST_ALIAS]
    ours = psftp(args, stdin=b"pwd\n")
    theirs = sftp(sftp_bin, args, stdin=b"pwd\n")
    assert ours == theirs
    assert ours.stdout == (b"sftp> pwd\nRemote working directory: "
                           + bytes(sshd.root) + b"\n")


@pytest.mark.parametrize("args", [
    ["-h"], ["-Z", "host"], ["-B"], [], ["a", "b", "c"], ["-l", "0", "h"],
    ["user@:x"], ["-P", "x", "h"], ["-B", "0", "h"], ["-X", "foo", "h"],
])
def test_bad_command_lines_fail_like_sftp(args: list[str], sftp_bin: str
                                          ) -> None:
    ours = psftp(args)
    theirs = sftp(sftp_bin, args)
    assert ours.status == theirs.status
    assert ours.stdout == theirs.stdout == b""
    assert same_usage(ours.stderr) == same_usage(theirs.stderr)


def test_usage_names_the_connections_option() -> None:
    result = psftp(["-h"])
    assert result.status == 1
    assert b"[-n connections]" in result.stderr
    assert result.stderr.startswith(b"usage: ")


def test_bad_connection_count_is_a_usage_error() -> None:
    result = psftp(["-n", "65", "h"])
    assert result.status == 1
    assert b'invalid -n value "65"' in result.stderr


def test_direct_server_batch_matches_sftp(tmp_path: Path, sftp_bin: str,
                                          sftp_server_bin: str) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "sub").mkdir()
    # An hour old: a fresh stamp can be ahead of time(2) for a tick, and
    # then sftp shows the year, which our later run would not see.
    hour_ago = time.time() - 3600
    os.utime(tmp_path / "a.txt", (hour_ago, hour_ago))
    script = (b"pwd\nls\nls -l a.txt\n-rm nonexistent\nmkdir d1\n"
              b"rmdir d1\nversion\nbogus\n")
    args = ["-D", sftp_server_bin, "-b", "-"]
    theirs = sftp(sftp_bin, args, stdin=script, cwd=tmp_path)
    ours = psftp(args, stdin=script, cwd=tmp_path)
    assert ours == theirs
    assert theirs.status == 1       # `bogus` ended the batch


def test_connection_refused_exits_255(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "cfg"
    config.write_text(f"Host x\n  HostName 127.0.0.1\n  Port {port}\n"
                      "  StrictHostKeyChecking yes\n"
                      f"  UserKnownHostsFile {tmp_path}/kh\n")
    result = psftp(["-F", str(config), "-b", "-", "x"], stdin=b"pwd\n")
    assert result.status == 255
    assert result.stderr == (
        f"ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        "\r\nConnection closed\r\n").encode()


def test_batch_run_never_imports_the_repl(tmp_path: Path,
                                          sftp_server_bin: str) -> None:
    """The engine and loop are imported in a thread during the login;
    a batch run must still leave prompt_toolkit and rich alone."""
    import subprocess
    import sys
    batch = tmp_path / "batch"
    batch.write_text("pwd\n")
    code = ("import sys\nfrom psftp_shell.frontend import cli\n"
            f"rc = cli.main(['psftp-shell', '-b', {str(batch)!r}, '-D', "
            f"{sftp_server_bin!r}])\n"
            "print([m for m in ('prompt_toolkit', 'rich') "
            "if m in sys.modules], rc, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[] 0"
    assert "Remote working directory:" in done.stdout
