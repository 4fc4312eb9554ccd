"""Whole command lines, psftp-shell against OpenSSH's sftp.

Auto-fetch (``host:file [localdir]``), the start directory
(``host:dir``), the global ``-r -p -a -f`` switches with them, ``-q``
versus the default versus ``-N``, and ``-b`` failures, all against the
private sshd, with the twin-tree harness of :mod:`tests.test_differential`
(local tree = the cwd, remote tree under the sshd's root).  Everything
must be identical: exit status, stdout, stderr and both trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from psftp_shell.devserver import SFTP_SERVER, PrivateSSHD
from tests.test_differential import (
    Setup,
    assert_same,
    make_setup,
    standard,
)
from tests.twins import PSFTP, Arena, Outcome, run_in_arena


@dataclass(frozen=True)
class CommandLine:
    """A command line (after the connection options) and its stdin.

    ``{host}``, ``{remote}`` (the remote tree), ``{rel}`` (the remote
    tree relative to the login directory) and ``{script}`` (a ``-b``
    file holding *stdin*) are expanded.

    :param transfers: it moves several files or resumes one, so it also
        runs at ``-n 4`` (single plain fetches run at ``-n 1`` only: a
        whole process over ssh costs half a second)
    :param direct: run with ``-D sftp-server`` instead of the sshd
    """

    name: str
    args: tuple[str, ...]
    stdin: str = ""
    transfers: bool = False
    direct: bool = False


def fetch(name: str, *args: str) -> CommandLine:
    """An auto-fetch command line of one file (or a failure)."""
    return CommandLine(name, args)


def fetch_many(name: str, *args: str) -> CommandLine:
    """An auto-fetch command line that parallel streams could change."""
    return CommandLine(name, args, transfers=True)


FILE = "{host}:{remote}/r"
SESSION = "pwd\nls -1 sub\nlpwd\ncd\npwd\n"

LINES: list[CommandLine] = [
    fetch("fetch-file", f"{FILE}/a.txt"),
    fetch("fetch-into-dir", f"{FILE}/a.txt", "l"),
    fetch("fetch-rename", f"{FILE}/b.txt", "l/new"),
    fetch("fetch-missing", f"{FILE}/missing"),
    fetch_many("fetch-glob", f"{FILE}/*.txt", "l"),
    fetch("fetch-glob-not-dir", f"{FILE}/*.txt", "l/x.txt"),
    fetch("fetch-dir-with-local", f"{FILE}/sub", "l"),
    fetch("fetch-dir-slash-local", f"{FILE}/sub/", "l"),
    fetch_many("fetch-r", "-r", f"{FILE}/sub", "l"),
    fetch_many("fetch-rp", "-r", "-p", f"{FILE}/sub", "l/copy"),
    fetch("fetch-p", "-p", f"{FILE}/c.dat", "l"),
    fetch("fetch-a-same-size", "-a", f"{FILE}/a.txt", "l/x.txt"),
    fetch("fetch-a-larger", "-a", f"{FILE}/empty", "l/x.txt"),
    fetch_many("fetch-a-missing", "-a", f"{FILE}/big.bin", "l/part"),
    fetch_many("fetch-f-q", "-f", "-q", f"{FILE}/big.bin", "l"),
    fetch("fetch-space", f"{FILE}/sp ace.txt"),
    fetch("fetch-quote", f"{FILE}/quo'te\"s.txt", "l"),
    fetch("fetch-hash", f"{FILE}/hash#name.txt"),
    fetch("fetch-file-slash", f"{FILE}/a.txt/"),
    fetch("fetch-link", f"{FILE}/link", "l"),
    fetch("fetch-invalid-utf8", f"{FILE}/caf\udce9", "l"),
    fetch("fetch-uri", "sftp://{host}/{remote}/r/a.txt", "l"),
    fetch("fetch-relative", "{host}:{rel}/r/a.txt", "l"),
    fetch("fetch-missing-dir-slash", f"{FILE}/nonexist/"),
    CommandLine("start-dir", (FILE,), SESSION),
    CommandLine("start-dir-slash", (FILE + "/",), SESSION),
    CommandLine("start-dir-login", ("{host}:",), "pwd\n"),
    CommandLine("start-dir-relative", ("{host}:{rel}/r",), SESSION),
    CommandLine("start-dir-link", (FILE + "/dirlink",), "pwd\n"),
    CommandLine("start-dir-q", ("-q", FILE), SESSION + "get a.txt l\n"),
    CommandLine("start-dir-bN", ("-N", "-b", "-", FILE),
                SESSION + "get a.txt l\n"),
    CommandLine("start-dir-b-file", ("-b", "{script}", FILE),
                SESSION + "bogus\npwd\n"),
    CommandLine("start-dir-globals", ("-r", "-p", FILE),
                "get sub l/s\nput l/ldir\nls -1 ldir\n", transfers=True),
    CommandLine("plain-q", ("-q", "{host}"), "pwd\n"),
    CommandLine("plain-N", ("-N", "{host}"), "cd {remote}\nget r/a.txt l\n"),
    CommandLine("direct-batch-twice", ("-D", SFTP_SERVER, "-b", "{script}",
                                       "-b", "{script}"), direct=True),
    CommandLine("too-many-args", (f"{FILE}/a.txt", "l", "extra")),
    CommandLine("direct-ignores-destination",
                ("-D", SFTP_SERVER, "elsewhere:/r/a.txt", "l"),
                "pwd\n", direct=True),
    CommandLine("direct-batch-dir", ("-D", SFTP_SERVER, "-b", "/"),
                direct=True),
    CommandLine("direct-batch-dev-null",
                ("-D", SFTP_SERVER, "-b", "/dev/null"), direct=True),
    CommandLine("direct-batch-missing",
                ("-D", SFTP_SERVER, "-b", "/nonexistent/script"),
                direct=True),
]


def arena_for(setup: Setup, line: CommandLine) -> Arena:
    """The arena of *line*: no prelude, the setup's trees."""
    arena = setup.arena("cli-" + line.name)
    if line.direct:
        return Arena(arena.local, arena.local, (), None, b"",
                     arena.environ)
    return Arena(arena.local, arena.remote, arena.connect[:2], arena.host,
                 b"", arena.environ)


def expand(arena: Arena, setup: Setup, line: CommandLine,
           ) -> tuple[list[str], bytes]:
    """The arguments and stdin of *line* in *arena*."""
    rel = ""
    if arena.host is not None and setup.sshd is not None:
        rel = str(arena.remote.relative_to(setup.sshd.root))
    words = {"host": arena.host or "", "remote": str(arena.remote),
             "rel": rel, "script": str(arena.script_path)}
    stdin = line.stdin.format(**words).encode("utf-8", "surrogateescape")
    arena.script_path.parent.mkdir(parents=True, exist_ok=True)
    arena.script_path.write_bytes(stdin)
    args = [word.format(**words) for word in line.args]
    return [*arena.connect, *args], stdin


_THEIRS: dict[str, Outcome] = {}


def run_line_twice(setup: Setup, line: CommandLine, sftp_bin: str,
                   streams: int) -> tuple[Outcome, Outcome]:
    """sftp's outcome (cached) and psftp-shell's at ``-n streams``."""
    arena = arena_for(setup, line)
    args, stdin = expand(arena, setup, line)
    if line.name not in _THEIRS:
        _THEIRS[line.name] = run_in_arena([sftp_bin], arena, standard,
                                          args, stdin)
    ours = run_in_arena([*PSFTP, "-n", str(streams)], arena, standard,
                        args, stdin)
    closed = b"Connection closed"
    for _ in range(2):
        # sftp races its own ssh at exit: now and then it says the
        # connection closed where it normally says nothing; ask again
        if closed not in _THEIRS[line.name].stderr or closed in ours.stderr:
            break
        _THEIRS[line.name] = run_in_arena([sftp_bin], arena, standard,
                                          args, stdin)
    return _THEIRS[line.name], ours


KNOWN: dict[str, pytest.MarkDecorator] = {}
"""Differences reported to the lead, in modules this suite may not fix."""

FIXED_SINCE_9_2: dict[str, str] = {
    "fetch-space": "sp ace.txt",
    "fetch-quote": "l/quo'te\"s.txt",
    "fetch-hash": "hash#name.txt",
}
"""Deliberate differences: OpenSSH 9.2 pastes ``host:path`` into a ``get``
line and parses it again (a space splits it, a quote is unterminated, a
``#`` starts a comment); 10.4 passes the path as it is, and so does
psftp-shell.  The file named is fetched where 9.2 fails: the value is
where it lands in the local tree."""


def _params() -> list[object]:
    params: list[object] = []
    for line in LINES:
        mark = KNOWN.get(line.name)
        params.append(pytest.param(line, 1, marks=[mark] if mark else [],
                                   id=f"{line.name}-n1"))
        if line.transfers:
            params.append(pytest.param(line, 4, id=f"{line.name}-n4"))
    return params


@pytest.fixture(scope="module")
def ssh_setup(tmp_path_factory: pytest.TempPathFactory,
              sshd: PrivateSSHD) -> Setup:
    """The sshd setup (the ``-D`` cases ignore its server)."""
    return make_setup("sshd", tmp_path_factory.mktemp("differential-cli"),
                      sshd)


@pytest.mark.parametrize(("line", "streams"), _params())
def test_command_line(line: CommandLine, streams: int, sftp_bin: str,
                      ssh_setup: Setup) -> None:
    theirs, ours = run_line_twice(ssh_setup, line, sftp_bin, streams)
    if line.name not in FIXED_SINCE_9_2:
        assert_same(theirs, ours)
        return
    landed = FIXED_SINCE_9_2[line.name]
    assert theirs.status == 1 and landed not in theirs.trees[0]
    assert ours.status == 0, ours.stderr
    got, source = ours.trees[0][landed], ours.trees[1]["r/" + landed[
        landed.find("/") + 1:]]
    assert got[3:5] == source[3:5]      # size and digest
