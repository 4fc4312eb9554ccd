"""Started in a directory that has since been removed: sftp runs its
script, and only what needs that directory fails (``lpwd``, a relative
local path); psftp-shell crashed before its first command."""

from __future__ import annotations

import os
from pathlib import Path

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.filecopy.copy_context import PROCESS_CWD, process_cwd
from tests.twins import PSFTP, run

SCRIPT = """pwd
-lpwd
put {up} gone-put
-get gone-put rel-got
get gone-put {out}/abs-got
"""
START_IN_GONE = '#!/bin/sh\ncd "$1" && rmdir "$1" && shift && exec "$@"\n'
"""Starts a program in a directory, removed just before the exec."""


def test_a_removed_start_directory_fails_only_what_needs_it(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    up = tmp_path / "up.txt"
    up.write_text("data\n")
    out = tmp_path / "out"
    out.mkdir()
    batch = tmp_path / "script"
    batch.write_text(SCRIPT.format(up=up, out=out))
    wrapper = tmp_path / "start-in-gone"
    wrapper.write_text(START_IN_GONE)
    wrapper.chmod(0o755)
    args = ["-F", str(sshd.ssh_config), "-b", str(batch), HOST_ALIAS]
    results = []
    for program in ([sftp_bin], PSFTP):
        gone = tmp_path / "gone"
        gone.mkdir()
        result = run([str(wrapper), str(gone), *program, *args],
                     cwd=tmp_path)
        results.append((result, (out / "abs-got").read_text(),
                        (sshd.root / "gone-put").read_text()))
        (out / "abs-got").unlink()
        (sshd.root / "gone-put").unlink()
    theirs, ours = results
    assert ours == theirs
    assert theirs[0].status == 0
    assert b"Couldn't get local cwd: No such file or directory" in \
        theirs[0].stderr
    assert b'open local "rel-got": No such file or directory' in \
        theirs[0].stderr


def test_process_cwd_reaches_a_removed_directory(tmp_path: Path) -> None:
    """Without the directory, getcwd fails; the path still opens it."""
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(gone)
        gone.rmdir()
        assert process_cwd() == PROCESS_CWD
        assert os.stat(process_cwd()).st_nlink == 0
    finally:
        os.fchdir(here)
        os.close(here)
    assert process_cwd() == os.getcwd()
