"""psftp-shell against OpenSSH's sftp, both talking to ProFTPD's mod_sftp.

ProFTPD is a second real server with its own extensions (no
``limits@openssh.com``, ``copy-data``, ``lsetstat``, ``expand-path`` or
``users-groups-by-id``) and its own error texts.  Whatever sftp does
against it, psftp-shell must do too: the scripts of
tests/test_differential.py run through both programs against the
private ProFTPD (tests/proftpd.py), from identical twin trees, and exit
status, stdout, stderr and the resulting local and remote trees must be
identical (the harness is tests/twins.py; the allowed differences are
those of test_differential's :func:`describe`).  Scripts that transfer
run at ``-n 1`` and at ``-n 4``, one with files large enough to be cut
into chunks and multi-file gets and puts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS
from psftp_shell.filecopy.copy_context import SHARE_MIN
from tests.proftpd import ProFTPD, proftpd  # noqa: F401
from tests.test_differential import (
    DF,
    GLOBALS_XFER,
    LS_DIR,
    LS_PATHS,
    MODIFY,
    NAVIGATION,
    SYMLINKS,
    TRANSFERS,
    Script,
    assert_same,
    blob,
    put_file,
    script_args,
)
from tests.twins import PSFTP, Arena, Outcome, clean_environ, run_in_arena

BIG = SHARE_MIN + 1_234_567
"""Larger than the chunking threshold, and not a multiple of a chunk."""

MANY = 6
"""Files in each multi-file transfer."""


def big_tree(root: Path) -> None:
    """Big files on both sides, and a few middling ones to get and put."""
    r, loc = root / "r", root / "l"
    for d in (r / "in", loc / "out", loc / "got", r / "put"):
        d.mkdir(parents=True)
    put_file(r / "huge.bin", blob(BIG, 7), 0o640)
    put_file(loc / "huge.loc", blob(BIG + 999, 8), 0o600)
    put_file(loc / "part.bin", blob(BIG, 7)[:1_500_000])
    put_file(r / "part.loc", blob(BIG + 999, 8)[:2_500_000])
    for i in range(MANY):
        put_file(r / "in" / f"m{i}.dat", blob(50_000 + i * 70_001, i))
        put_file(loc / "out" / f"n{i}.dat", blob(40_000 + i * 90_001, i))


BIG_SCRIPT = """\
get r/huge.bin l/huge.bin
put l/huge.loc r/huge.loc
get r/in/* l/got
put l/out/* r/put
get -r r/in l/rin
-put -r l/out r/rout
mkdir r/out
put -r l/out r
reget r/huge.bin l/part.bin
reput l/huge.loc r/part.loc
-reget r/huge.bin l/huge.bin
-reput l/huge.loc r/huge.loc
get -p r/huge.bin l/kept.bin
put -p l/huge.loc r/kept.loc
ls -1 r/put
"""

"""``put -r`` into a directory that does not exist yet fails against
ProFTPD, with sftp as with psftp-shell: ProFTPD's realpath refuses a
missing path, which OpenSSH's sftp-server allows."""

SCRIPTS = [
    Script("navigation", NAVIGATION),
    Script("ls-dir", "cd r\n" + LS_DIR),
    Script("ls-paths", LS_PATHS),
    Script("modify", MODIFY),
    Script("symlinks", SYMLINKS),
    Script("df", DF),
    Script("transfers", TRANSFERS),
    Script("globals-rp", GLOBALS_XFER, flags=("-r", "-p")),
    Script("globals-a", GLOBALS_XFER, flags=("-a",)),
    Script("big", BIG_SCRIPT, mode="file", build=big_tree),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's base directory for the local trees."""
    path = tmp_path_factory.mktemp("proftpd-twins")
    (path / "home").mkdir()
    return path


def arena(server: ProFTPD, scratch: Path, case: Script) -> Arena:
    """Twin trees for *case*: local under *scratch*, remote in ProFTPD's."""
    environ = clean_environ(scratch)
    environ["HOME"] = str(scratch / "home")
    environ.update(dict(case.env))
    remote = server.root / "differential" / case.name
    return Arena(scratch / "local" / case.name, remote,
                 ("-F", str(server.ssh_config)), HOST_ALIAS,
                 f'@cd "{remote}"\n'.encode(), environ)


_THEIRS: dict[str, Outcome] = {}


def theirs(server: ProFTPD, scratch: Path, case: Script,
           sftp_bin: str) -> Outcome:
    """sftp's outcome for *case* against ProFTPD (run once)."""
    if case.name not in _THEIRS:
        place = arena(server, scratch, case)
        args, stdin = script_args(place, case)
        _THEIRS[case.name] = run_in_arena([sftp_bin], place, case.build,
                                          args, stdin)
    return _THEIRS[case.name]


def ours(server: ProFTPD, scratch: Path, case: Script,
         streams: int) -> Outcome:
    """psftp-shell's outcome for *case* with ``-n streams``."""
    place = arena(server, scratch, case)
    args, stdin = script_args(place, case)
    return run_in_arena([*PSFTP, "-n", str(streams)], place, case.build,
                        args, stdin)


def _params() -> list[object]:
    """Every script at ``-n 1``; those that transfer at ``-n 4`` too."""
    return [pytest.param(case, streams, id=f"{case.name}-n{streams}")
            for case in SCRIPTS
            for streams in ([1, 4] if case.transfers else [1])]


@pytest.mark.parametrize(("case", "streams"), _params())
def test_script(proftpd: ProFTPD, scratch: Path,  # noqa: F811
                case: Script, streams: int, sftp_bin: str) -> None:
    expected = theirs(proftpd, scratch, case, sftp_bin)
    assert_same(expected, ours(proftpd, scratch, case, streams))


def test_big_files_really_moved(proftpd: ProFTPD,  # noqa: F811
                                scratch: Path, sftp_bin: str) -> None:
    """The chunked case compared what it should: the data arrived."""
    case = next(c for c in SCRIPTS if c.name == "big")
    done = ours(proftpd, scratch, case, 4)
    place = arena(proftpd, scratch, case)
    assert b"rout" in done.stderr       # the one failing line
    assert (place.local / "l" / "huge.bin").read_bytes() == blob(BIG, 7)
    assert (place.local / "l" / "part.bin").read_bytes() == blob(BIG, 7)
    for name in ("huge.loc", "part.loc"):
        assert (place.remote / "r" / name).read_bytes() == \
            blob(BIG + 999, 8)
    for i in range(MANY):
        data = blob(50_000 + i * 70_001, i)
        for where in ("got", "rin"):
            assert (place.local / "l" / where / f"m{i}.dat").read_bytes() \
                == data
        data = blob(40_000 + i * 90_001, i)
        for where in ("put", "out"):
            assert (place.remote / "r" / where / f"n{i}.dat"
                    ).read_bytes() == data

