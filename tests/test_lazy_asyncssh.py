"""asyncssh is imported only when an SSH connection is made: the -S and
-D transports never need it (about 0.1 s of CPU at every start), and the
library warnings filter of ``-v`` is set before its first import."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> bool:
    probe = code + "\nimport sys\nprint('asyncssh' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", probe], check=True,
                          capture_output=True, text=True, timeout=60)
    answer = done.stdout.splitlines()[-1]   # after what the code printed
    assert answer in ("True", "False"), done.stdout
    return answer == "True"


def test_the_command_line_front_end_does_not_import_asyncssh() -> None:
    assert not _loaded_after("import psftp_shell.frontend.cli")


def test_a_pipe_session_never_imports_asyncssh(sftp_server_bin: str
                                               ) -> None:
    code = ("import io, sys\n"
            "from psftp_shell.frontend import cli\n"
            "sys.stdin = io.TextIOWrapper(io.BytesIO(b'pwd\\n'))\n"
            f"assert cli.main(['psftp-shell', '-D', {sftp_server_bin!r}, "
            "'-b', '-']) == 0\n")
    assert not _loaded_after(code)
