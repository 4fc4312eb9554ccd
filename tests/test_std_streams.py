"""Standard streams that are closed or cannot be written, as a cron job
or a daemon may leave them: sftp runs its script whatever becomes of its
output, and so must psftp-shell (:mod:`psftp_shell.frontend.std_streams`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD

SCRIPT = "pwd\nput up.txt fp1\n-ls /nonexist\nput up.txt fp2\n"
REDIRECTIONS = {
    "stdout full": ">/dev/full",
    "stdout closed": ">&-",
    "stderr full": "2>/dev/full",
    "stderr closed": "2>&-",
    "both closed": ">&- 2>&-",
}


def _run(program: list[str], args: list[str], redirection: str,
         cwd: Path, stdin: str = "<&-") -> int:
    """Run *program* with *args* under a shell's *redirection*."""
    line = 'exec "$@" ' + redirection + " " + stdin
    return subprocess.run(["sh", "-c", line, "sh", *program, *args],
                          cwd=cwd, timeout=60,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def _programs(sftp_bin: str) -> dict[str, list[str]]:
    return {"sftp": [sftp_bin],
            "psftp-shell": [sys.executable, "-m", "psftp_shell"]}


@pytest.mark.parametrize("redirection", list(REDIRECTIONS.values()),
                         ids=list(REDIRECTIONS))
def test_the_script_runs_whatever_becomes_of_its_output(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path,
        redirection: str) -> None:
    (tmp_path / "up.txt").write_text("data\n")
    batch = tmp_path / "script"
    batch.write_text(SCRIPT)
    args = ["-F", str(sshd.ssh_config), "-b", str(batch), HOST_ALIAS]
    done = {}
    for name, program in _programs(sftp_bin).items():
        for made in ("fp1", "fp2"):
            (sshd.root / made).unlink(missing_ok=True)
        status = _run(program, args, redirection, tmp_path)
        done[name] = (status, sorted(p.name for p in sshd.root.iterdir()
                                     if p.name.startswith("fp")))
    assert done["psftp-shell"] == done["sftp"] == (0, ["fp1", "fp2"])


def test_a_closed_stdin_is_an_empty_script(sshd: PrivateSSHD, sftp_bin: str,
                                           tmp_path: Path) -> None:
    args = ["-F", str(sshd.ssh_config), "-b", "-", HOST_ALIAS]
    statuses = {name: _run(program, args, "", tmp_path)
                for name, program in _programs(sftp_bin).items()}
    assert statuses == {"sftp": 0, "psftp-shell": 0}


def test_closed_fds_are_opened_on_dev_null() -> None:
    """What psftp-shell opens later never takes fd 1's number."""
    code = ("import os, sys\n"
            "from psftp_shell.frontend import std_streams\n"
            "std_streams.install()\n"
            "print(os.readlink('/proc/self/fd/1'), sys.stdout is not None,\n"
            "      file=open(sys.argv[1], 'w'))\n")
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"fd1-{os.getpid()}"
    try:
        subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable,
                        "-c", code, str(out)], check=True, timeout=60)
        assert out.read_text().split() == [os.devnull, "True"]
    finally:
        out.unlink(missing_ok=True)
