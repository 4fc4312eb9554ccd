"""psftp-shell against sftp on rclone's and Green End's SFTP servers.

The twin-tree harness of :mod:`tests.test_differential`, against
``rclone serve sftp`` (Go's pkg/sftp) and the private sshd with the
Green End server as its subsystem (:mod:`tests.moreservers`).  A
representative subset of the differential scripts runs on each, at
``-n 1`` and ``-n 4`` (:data:`SCRIPTS`: navigation, listings, the
modifying commands, links, transfers and the global switches; the
locale, prefix and line-splitting scripts test the client alone and stay
with ``-D``), plus :data:`GO_CASES`, the three commands that once
differed on rclone's server.  Exit status, output and both trees must be
identical (``-n 4`` where a script transfers, see :func:`_params`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import pytest

from psftp_shell.devserver import HOST_ALIAS
from tests.moreservers import gesftp_sshd, rclone  # noqa: F401
from tests.test_differential import (
    GLOBALS_XFER,
    LS_DIR,
    LS_PATHS,
    MODIFY,
    NAVIGATION,
    SYMLINKS,
    TRANSFERS,
    Script,
    assert_same,
    script_args,
)
from tests.twins import PSFTP, Arena, Outcome, clean_environ, run_in_arena

GO_CASES = """\
cd r
mkdir d1
rename a.txt d1/a2.txt
ls -1 d1
put ../l/x.txt one.log
put ../l/big.loc two.log
ls -1 *.log
ls -l *.txt
ls -ln b.txt
rm *.log
ls -1 *.log
rename d1/a2.txt a.txt
"""
"""``rename`` into a directory, ``rm`` of a glob and ``ls -l`` of a glob
on a server that sends no owner names (rclone sends no ids at all)."""

REVERSED_SYMLINKS = """\
-ln -s {root}/r/a.txt {root}/r/soft
-ln -s {root}/r/new {root}/r/soft2
-symlink {root}/r/b.txt {root}/r/sub
ls -1 r/new r/soft r/soft2
"""
"""The Green End server reads SYMLINK's two paths in the draft's order
(link first), OpenSSH's clients send the target first: for any client
of the two, ``ln -s`` makes the link at the target's name.  Full paths
keep it inside the tree (the shared :data:`SYMLINKS` script would make
links outside it, such as ``/nowhere``, when the tests run as root)."""

NEW = ("rclone", "gesftp")

LOOP_CRASH = "ls -1 r/sub\ncd r/loop\npwd\n"
"""The Green End server dies on REALPATH of a symbolic link to itself
(any client): both must end with sftp's ``Connection closed`` and status
255.  sftp prints its ``\\rConnection closed.`` notice only when its
SIGCHLD comes before the failed read (a race), so that line is ignored
(:func:`_without_notice`), and ``cd r/loop`` is left out of the
``ls-paths`` script there."""

SCRIPTS = [
    Script("navigation", NAVIGATION, where=NEW),
    Script("ls-dir", "cd r\n" + LS_DIR, where=NEW),
    Script("ls-paths", LS_PATHS, where=("rclone",)),
    Script("ls-paths-no-loop", LS_PATHS.replace("cd r/loop\n", ""),
           where=("gesftp",)),
    Script("loop-crash", LOOP_CRASH, where=("gesftp",)),
    Script("modify", MODIFY, where=NEW),
    Script("symlinks", SYMLINKS, where=("rclone",)),
    Script("reversed-symlinks", REVERSED_SYMLINKS, where=("gesftp",)),
    Script("transfers", TRANSFERS, where=NEW),
    Script("globals-rp", GLOBALS_XFER, flags=("-r", "-p"), where=NEW),
    Script("globals-a", GLOBALS_XFER, flags=("-a",), where=NEW),
    Script("go-cases", GO_CASES, where=NEW),
]


class Served(Protocol):
    """What the arena needs of a server: its tree and its ssh_config."""

    root: Path
    ssh_config: Path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's base directory for the local trees."""
    path = tmp_path_factory.mktemp("more-twins")
    (path / "home").mkdir()
    return path


def arena(kind: str, server: Served, scratch: Path, case: Script) -> Arena:
    """Twin trees for *case*: local under *scratch*, remote in the
    server's tree (rclone serves it at ``/``)."""
    environ = clean_environ(scratch)
    environ["HOME"] = str(scratch / "home")
    environ.update(dict(case.env))
    remote = server.root / "differential" / case.name
    view = f"/differential/{case.name}" if kind == "rclone" else str(remote)
    return Arena(scratch / kind / case.name, remote,
                 ("-F", str(server.ssh_config)), HOST_ALIAS,
                 f'@cd "{view}"\n'.encode(), environ, view)


_THEIRS: dict[tuple[str, str], Outcome] = {}


def run_twice(kind: str, server: Served, scratch: Path, case: Script,
              sftp_bin: str, streams: int) -> tuple[Outcome, Outcome]:
    """sftp's outcome (run once per server) and psftp-shell's."""
    place = arena(kind, server, scratch, case)
    args, stdin = script_args(place, case)
    if (kind, case.name) not in _THEIRS:
        _THEIRS[kind, case.name] = run_in_arena(
            [sftp_bin], place, case.build, args, stdin)
    return _THEIRS[kind, case.name], run_in_arena(
        [*PSFTP, "-n", str(streams)], place, case.build, args, stdin)


def _without_notice(outcome: Outcome) -> Outcome:
    """*outcome* without sftp's racy SIGCHLD notice."""
    return dataclasses.replace(outcome, stderr=outcome.stderr.replace(
        b"\rConnection closed.  \n", b""))


def _params() -> list[object]:
    """Each script at ``-n 1``; at ``-n 4`` too when it transfers, and
    the two sentinels (a script without get or put runs the same code at
    ``-n 4``, see :func:`tests.test_differential._params`)."""
    return [pytest.param(kind, case, streams,
                         id=f"{kind}-{case.name}-n{streams}")
            for case in SCRIPTS for kind in case.where
            for streams in ((1, 4) if case.transfers
                            or case.name in ("navigation", "modify")
                            else (1,))]


@pytest.mark.parametrize(("kind", "case", "streams"), _params())
def test_script(kind: str, case: Script, streams: int, scratch: Path,
                sftp_bin: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(
        "rclone" if kind == "rclone" else "gesftp_sshd")
    theirs, ours = run_twice(kind, server, scratch, case, sftp_bin, streams)
    if case.name == "loop-crash":
        theirs, ours = _without_notice(theirs), _without_notice(ours)
        assert ours.status == 255
        assert ours.stderr.endswith(b"Connection closed\r\n")
    assert_same(theirs, ours)
    if case.name == "reversed-symlinks":    # the server's order, stated
        view = arena(kind, server, scratch, case).remote_view
        assert theirs.trees[1]["r/new"] == ("link", f"{view}/r/soft2",
                                            theirs.trees[1]["r/new"][2])
