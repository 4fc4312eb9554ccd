"""The quick exit: no interpreter teardown once the program is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD

# A script that leaves a mark when the interpreter's teardown runs (an
# object's __del__ at shutdown), prints without flushing, and exits with
# a status, armed or not.
SCRIPT = """\
import atexit, os, sys
mode = sys.argv[3]
if mode == "handler-first":
    atexit.register(lambda: print("earlier handler ran"))
import psftp_shell
from psftp_shell.core import quick_exit

mark = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)

class Teardown:
    def __del__(self, write=os.write, fd=mark):
        write(fd, b"torn down")

class FailingFlush:
    def write(self, text):
        return len(text)
    def flush(self):
        raise OSError("flush failed")

keep = Teardown()
atexit.register(lambda: print("late handler ran"))
print("unflushed line", end="")
if mode == "bad-flush":
    sys.stdout = FailingFlush()
status = int(sys.argv[2])
sys.exit(status if mode == "plain" else quick_exit.leave_with(status))
"""


def _run(tmp_path: Path, mode: str
         ) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run SCRIPT in *mode*; its result and what the teardown marked."""
    mark = tmp_path / "mark"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(mark), "3", mode],
        capture_output=True, timeout=60)
    return done, mark.read_text()


def test_armed_exit_skips_teardown_but_keeps_output_and_handlers(
        tmp_path: Path) -> None:
    done, mark = _run(tmp_path, "armed")
    assert done.returncode == 3
    assert done.stdout == b"unflushed linelate handler ran\n"
    assert done.stderr == b""
    assert mark == ""


def test_unarmed_exit_tears_down_as_usual(tmp_path: Path) -> None:
    """Importing psftp-shell (a library user, pytest) changes nothing."""
    done, mark = _run(tmp_path, "plain")
    assert done.returncode == 3
    assert done.stdout == b"unflushed linelate handler ran\n"
    assert mark == "torn down"


def test_handlers_registered_before_psftp_shell_keep_the_normal_exit(
        tmp_path: Path) -> None:
    """Exit handlers of whoever runs psftp-shell (coverage, a host
    program), registered before it was imported, still run."""
    done, mark = _run(tmp_path, "handler-first")
    assert done.returncode == 3
    assert done.stdout == (b"unflushed linelate handler ran\n"
                           b"earlier handler ran\n")
    assert mark == "torn down"


def test_a_program_running_psftp_shell_with_runpy_carries_on(
        tmp_path: Path) -> None:
    """``runpy.run_module('psftp_shell')`` from another program (as
    bench/cpuprofile.py does) returns to it, which exits as it likes."""
    code = ("import runpy, sys\n"
            "sys.argv = ['psftp-shell', '-Z']\n"
            "try:\n"
            "    runpy.run_module('psftp_shell', run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    print('psftp-shell said', exc.code)\n"
            "print('the host carries on')\n"
            "sys.exit(0)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout == b"psftp-shell said 1\nthe host carries on\n"


def test_a_failing_flush_falls_back_to_the_normal_exit(
        tmp_path: Path) -> None:
    """Output that cannot be written is reported by Python's own
    shutdown, with its status, as before the quick exit."""
    done, mark = _run(tmp_path, "bad-flush")
    assert done.returncode == 120       # Python's "flush failed" status
    assert b"flush failed" in done.stderr
    assert mark == "torn down"


@pytest.mark.sshd
def test_the_program_exits_quickly_with_sftps_status(
        sshd: PrivateSSHD, tmp_path: Path, remote_dir: Path) -> None:
    """``python -m psftp_shell`` arms it: all output arrives, the status
    is sftp's, and no teardown runs (an object's __del__ at shutdown,
    made by a sitecustomize, leaves no mark)."""
    (remote_dir / "f").write_bytes(b"data")
    batch = tmp_path / "batch"
    batch.write_text(f"get {remote_dir}/f\nget {remote_dir}/missing\n")
    mark = tmp_path / "mark"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os\n"
        f"fd = os.open({str(mark)!r}, os.O_WRONLY | os.O_CREAT)\n"
        "class Teardown:\n"
        "    def __del__(self, write=os.write, fd=fd):\n"
        "        write(fd, b'torn down')\n"
        "keep = Teardown()\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "psftp_shell", "-F", str(sshd.ssh_config),
         "-b", str(batch), HOST_ALIAS], cwd=tmp_path, capture_output=True,
        env=env, timeout=60)
    assert done.returncode == 1
    assert done.stdout.decode().splitlines() == [
        f"sftp> get {remote_dir}/f",
        f"sftp> get {remote_dir}/missing"]
    assert done.stderr.decode() == (
        f'File "{remote_dir}/missing" not found.\r\n')
    assert (tmp_path / "f").read_bytes() == b"data"
    assert mark.read_text() == ""
