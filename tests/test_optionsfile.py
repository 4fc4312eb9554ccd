"""The ``-o`` options leave nothing on disk, however a session ends.

psftp-shell runs against the private sshd with ``-o`` options and its
own TMPDIR; it is ended by SIGTERM, SIGHUP, SIGPIPE (its output read by
something that stops reading, as ``| head -1`` does) and by a normal
exit.  Nothing may be left in TMPDIR, and the options must still be
honoured (a wrong ``-o Port`` fails the login).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD, free_port
from psftp_shell.ssh.options_file import OptionsFile

PSFTP = [sys.executable, "-m", "psftp_shell"]
REPO = Path(__file__).resolve().parents[1]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(tmp.parent),
               PYTHONPATH=str(REPO))
    env.pop("SSH_AUTH_SOCK", None)
    return env


def _argv(sshd: PrivateSSHD, *options: str) -> list[str]:
    args = [*PSFTP, "-F", str(sshd.ssh_config), "-b", "-"]
    for option in ("Compression=no", "ServerAliveInterval=30", *options):
        args += ["-o", option]
    return [*args, HOST_ALIAS]


@pytest.fixture
def tmpdir_(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


@pytest.mark.sshd
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_leaves_nothing_in_tmp(sshd: PrivateSSHD, tmpdir_: Path,
                                      signum: int) -> None:
    proc = subprocess.Popen(_argv(sshd), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(tmpdir_))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"pwd\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    line = b""
    while b"Remote working directory" not in line and \
            time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
    assert b"Remote working directory" in line   # connected, options read
    proc.send_signal(signum)
    proc.wait(timeout=20)
    proc.stdin.close()
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert proc.returncode != 0
    assert list(tmpdir_.iterdir()) == []


@pytest.mark.sshd
def test_sigpipe_and_exit_leave_nothing_in_tmp(sshd: PrivateSSHD,
                                               tmpdir_: Path) -> None:
    script = "pwd\n" * 20000
    argv = " ".join(f"'{a}'" for a in _argv(sshd))
    done = subprocess.run(f"{argv} | head -1", shell=True,
                          input=script.encode(), capture_output=True,
                          env=_env(tmpdir_), timeout=120)
    assert done.stdout == b"sftp> pwd\n"
    assert list(tmpdir_.iterdir()) == []
    ok = subprocess.run(_argv(sshd), input=b"pwd\n", capture_output=True,
                        env=_env(tmpdir_), timeout=60)
    assert ok.returncode == 0 and b"Remote working directory" in ok.stdout
    assert list(tmpdir_.iterdir()) == []
    # the options are read: a closed port fails the connection
    bad = subprocess.run(_argv(sshd, f"Port={free_port()}"), input=b"",
                         capture_output=True, env=_env(tmpdir_), timeout=60)
    assert bad.returncode == 255
    assert b"Connection refused" in bad.stderr
    assert list(tmpdir_.iterdir()) == []


@pytest.mark.parametrize("memory", [True, False])
def test_options_file_reads_again_and_goes(tmpdir_: Path, memory: bool,
                                           monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setenv("TMPDIR", str(tmpdir_))
    monkeypatch.setattr("tempfile.tempdir", None)
    options = OptionsFile(["Port 1", "User x"], memory=memory)
    assert options.in_memory is memory
    for _ in range(2):
        assert Path(options.path).read_text() == "Port 1\nUser x\n"
    assert bool(list(tmpdir_.iterdir())) is not memory
    options.close()
    options.close()
    assert list(tmpdir_.iterdir()) == []
    if not memory:
        assert not Path(options.path).exists()
