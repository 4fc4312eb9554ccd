"""ssh_config ``Match`` lines as ssh 9.2 reads them, on a real connection
(and the ``%`` tokens their ``exec`` commands and other values expand).

asyncssh reads the config files again itself when it connects
(``asyncssh.connect(config=...)``), so a Match line must reach the
private sshd with psftp-shell as it does with OpenSSH's sftp: a trailing
comment, an empty quoted word, a quoted ``exec`` command with ``=`` in
it.  Each line's block holds the sshd's port and a block after it a
closed one, so a condition read the wrong way round fails to connect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD, free_port
from psftp_shell.ssh.match_check import match_words
from tests.twins import client_argv

pytestmark = [pytest.mark.sshd, pytest.mark.usefixtures("clean_ssh_env")]

OURS = [sys.executable, "-m", "psftp_shell"]

# (Match line, whether it holds for the sshd's host)
MATCH_LINES = [
    ("Match host 127.0.0.1 # c", True),
    ('Match host 127.0.0.1 ""', True),
    ("Match all # trailing", True),
    ('Match host x !exec "false" # c', False),
    ('Match !host x !exec "false" # c', True),
    ('Match exec "test 1 = 1"', True),
    ('Match exec "test 1 = 2"', False),
    ('Match exec "test 1 = 1" # =x', True),
    # an exec command's tokens, from what the file said before the line
    # (the sshd's HostName and User; no Port yet: 22)
    ('Match exec "test %h = 127.0.0.1 -a %n = psftp-test"', True),
    ('Match exec "test %p%% = 22%%"', True),
    ('Match exec "test %r = $(id -un) -a %u = $(id -un)"', True),
    ('Match exec "test -d %d -a %i = $(id -u)"', True),
    ('Match exec "test %h = a"', False),
    ('Match host x exec "test %h = 127.0.0.1"', False),
]


def _match_config(sshd: PrivateSSHD, path: Path, line: str, holds: bool
                  ) -> Path:
    """The sshd's client config without its Port, then *line* with the
    port that connects when the condition *holds*, then the other."""
    host = [text for text in sshd.ssh_config.read_text().splitlines()
            if text.split()[:1] != ["Port"]]
    good, bad = sshd.port, free_port()
    first, then = (good, bad) if holds else (bad, good)
    path.write_text("\n".join([*host, line, f"  Port {first}",
                               "Match all", f"  Port {then}", ""]))
    return path


def _pwd(program: list[str], config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*program, "-F", str(config), "-b", "-",
                           HOST_ALIAS], input=b"pwd\n", capture_output=True,
                          timeout=60, env=dict(os.environ))


@pytest.mark.parametrize(("line", "holds"), MATCH_LINES,
                         ids=[line for line, _ in MATCH_LINES])
def test_match_line_connects_like_sftp(sshd: PrivateSSHD, sftp_bin: str,
                                       tmp_path: Path, line: str,
                                       holds: bool) -> None:
    config = _match_config(sshd, tmp_path / "config", line, holds)
    for program in ([sftp_bin], OURS):
        done = _pwd(program, config)
        assert done.returncode == 0, (program, done.stderr)
        assert b"Remote working directory: " in done.stdout, program


def test_an_unknown_token_in_exec_stops_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    config = _match_config(sshd, tmp_path / "config",
                           'Match host x exec "echo %z"', True)
    done = [_pwd(program, config) for program in ([sftp_bin], OURS)]
    assert done[0].returncode == done[1].returncode == 255
    assert done[1].stderr == done[0].stderr == (
        b"vdollar_percent_expand: unknown key %z\r\n"
        b"percent_expand: failed\r\nConnection closed\r\n")


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
def test_an_exec_command_runs_once(sshd: PrivateSSHD, sftp_bin: str,
                                   tmp_path: Path, client: str) -> None:
    """Once for the whole session, as ssh runs it once: not again for
    each connection of ``-n`` (asyncssh reads the files again for each)."""
    runs = tmp_path / "runs"
    config = _match_config(sshd, tmp_path / "config",
                           f'Match exec "echo x >> {runs}"', True)
    (sshd.root / "once").mkdir(exist_ok=True)
    for name in "abcdef":
        (sshd.root / "once" / name).write_bytes(os.urandom(1000))
    program = client_argv(client, sftp_bin)
    done = subprocess.run(
        [*program, "-F", str(config), "-b", "-", HOST_ALIAS],
        input=f"get -r {sshd.root}/once {tmp_path}/copy\n".encode(),
        capture_output=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    assert len(list((tmp_path / "copy").iterdir())) == 6
    assert runs.read_text() == "x\n"


@pytest.mark.parametrize("value", [
    "${PSFTP_UNCLOSED", "${}", "a%", "%z", "x${%h}"])
def test_identity_file_token_errors_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, value: str) -> None:
    """ssh's lines for a ``%`` or ``${`` it cannot expand (misc.c's
    vdollar_percent_expand), after the connection, where ssh expands
    IdentityFile."""
    done = [subprocess.run(
        [*program, "-F", str(sshd.ssh_config), "-o", f"IdentityFile={value}",
         "-b", "-", HOST_ALIAS], input=b"pwd\n", capture_output=True,
        timeout=60) for program in ([sftp_bin], OURS)]
    assert done[0].returncode == done[1].returncode == 255
    assert done[1].stderr == done[0].stderr


@pytest.mark.parametrize(("condition", "words"), [
    ("host a # c", ["host", "a"]),
    ('host a "" user b', ["host", "a"]),
    ('exec "test %h = a" user=b', ["exec", "test %h = a", "user", "b"]),
    ("all #", ["all"]),
    ("host a#b", ["host", "a#b"]),
    ('exec "unclosed', ["exec"]),
])
def test_match_words_as_ssh_reads_them(condition: str, words: list[str]
                                       ) -> None:
    assert match_words(condition) == words
