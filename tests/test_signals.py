"""SIGTERM, SIGHUP and Ctrl-C in the middle of a transfer.

psftp-shell runs as a subprocess against sftp-server behind a throttling
relay (``-D``), so the copy is slow enough to interrupt.  The real sftp
is put in the same situation for its exit status and messages: it exits
1 on SIGTERM and SIGHUP (its handler kills its child and ``_exit(1)``),
and in batch mode Ctrl-C interrupts the command (``Interrupt``), which
then fails the batch.  psftp-shell must do the same, after closing its
handles, removing temporaries or flushing the journal of a chunked copy
so that ``reget``/``reput`` move only the missing ranges; nothing is
ever left under the final name.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from tests.test_localfaults import (
    MIB,
    PSFTP,
    Result,
    act_during,
    env_for,
    leftovers,
    programs,
    random_file,
    relay,  # noqa: F401
    run,
)

SIZE = 12 * MIB
RATE = 2 * MIB


def signal_during(argv: list[str], cwd: Path, env: dict[str, str],
                  started: Callable[[], bool], signum: int) -> Result:
    """Run *argv*; once *started* holds, send it *signum*; return how it
    ended."""
    return act_during(argv, cwd, env, started,
                      lambda proc: proc.send_signal(signum), timeout=20)


def has_data(directory: Path, least: int) -> Callable[[], bool]:
    """True once the files in *directory* reach *least* bytes in all.

    Sizes, not blocks: a chunked download reserves its blocks at once,
    and its size grows only as data is written (at any offset).
    """
    def check() -> bool:
        try:
            return sum(p.stat().st_size for p in directory.iterdir()
                       if p.is_file()) >= least
        except FileNotFoundError:
            return False
    return check


def get_journal(home: Path, final: str) -> Path:
    """Where a download to *final* (from *home*, with :func:`env_for`'s
    environment) keeps its journal."""
    return Path(journal.download_path(
        {"XDG_STATE_HOME": str(home / "state")}, str(home / final)))


def check_journal(jpath: Path, source: bytes) -> journal.Journal | None:
    """The journal at *jpath*, if any; its done ranges must hold the
    source's bytes in its temporary."""
    found = journal.load(str(jpath))
    if found is None:
        return None
    temp = Path(found.temp).read_bytes()
    assert found.done.total > 0
    for start, end in found.done:
        assert temp[start:end] == source[start:end], (start, end)
    return found


@pytest.mark.parametrize(("signum", "name"), [
    (signal.SIGTERM, "sftp"), (signal.SIGTERM, "n1"),
    (signal.SIGTERM, "n4"), (signal.SIGHUP, "sftp"),
    (signal.SIGHUP, "n4")])     # one handler: SIGHUP at -n 1 adds nothing
def test_signal_during_get(tmp_path: Path, sftp_bin: str,
                           sftp_server_bin: str,
                           relay: Callable[[int], str],  # noqa: F811
                           name: str, signum: int) -> None:
    """Exit 1 as sftp; no file under the final name; the journal lets
    ``reget`` finish with the rest only (at -n 1 it holds the bytes
    received in order, as sftp's partial file would)."""
    data = random_file(tmp_path / "src" / "big", SIZE).read_bytes()
    (tmp_path / "out").mkdir()
    (tmp_path / "batch").write_text("get src/big out/big\n")
    env = env_for(tmp_path)
    argv = programs(sftp_bin)[name] + ["-D", relay(RATE), "-b", "batch"]
    result = signal_during(argv, tmp_path, env,
                           has_data(tmp_path / "out", MIB), signum)
    assert result.status == 1, result.stderr
    assert result.stdout == b"sftp> get src/big out/big\n"
    assert result.stderr == b""
    final = tmp_path / "out" / "big"
    if name == "sftp":
        assert final.stat().st_size < SIZE      # sftp's partial file
        return
    assert not final.exists()
    found = check_journal(get_journal(tmp_path, "out/big"), data)
    assert found is not None, "the copy kept no journal"
    if name == "n1":
        assert list(found.done) == [(0, found.done.total)]
    (tmp_path / "batch2").write_text("reget src/big out/big\n")
    streams = "1" if name == "n1" else "4"
    again = run(PSFTP + ["-n", streams, "-D", sftp_server_bin, "-b",
                         "batch2"], tmp_path, env)
    assert again.status == 0, again.stderr
    assert final.read_bytes() == data
    assert leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("name", ["sftp", "n1", "n4"])
def test_sigterm_during_put(tmp_path: Path, sftp_bin: str,
                            sftp_server_bin: str,
                            relay: Callable[[int], str],  # noqa: F811
                            name: str) -> None:
    """Exit 1 as sftp; the remote final name never appears; a remote
    temporary stays only with a journal, and then reput finishes."""
    data = random_file(tmp_path / "big", SIZE).read_bytes()
    there = tmp_path / "there"
    there.mkdir()
    (tmp_path / "batch").write_text("put big there/big\n")
    env = env_for(tmp_path)
    argv = programs(sftp_bin)[name] + ["-D", relay(RATE), "-b", "batch"]
    result = signal_during(argv, tmp_path, env, has_data(there, MIB),
                           signal.SIGTERM)
    assert result.status == 1, result.stderr
    assert result.stderr == b""
    if name == "sftp":
        assert (there / "big").stat().st_size < SIZE
        return
    assert not (there / "big").exists()
    state = tmp_path / "state" / "psftp-shell" / "journal"
    journals = sorted(state.glob("*.json")) if state.is_dir() else []
    found = [check_journal(path, data) for path in journals]
    assert len(found) == 1 and found[0] is not None, "no journal kept"
    if name == "n1":
        assert list(found[0].done) == [(0, found[0].done.total)]
    assert leftovers(there) == [Path(found[0].temp).name]
    (tmp_path / "batch2").write_text("reput big there/big\n")
    streams = "1" if name == "n1" else "4"
    # the same server command: upload journals are kept per server
    again = run(PSFTP + ["-n", streams, "-D", relay(RATE), "-b",
                         "batch2"], tmp_path, env)
    assert again.status == 0, again.stderr
    assert (there / "big").read_bytes() == data
    assert leftovers(there) == []


@pytest.mark.parametrize("name", ["sftp", "n1", "n4"])
def test_ctrl_c_in_batch_mode(tmp_path: Path, sftp_bin: str,
                              sftp_server_bin: str,
                              relay: Callable[[int], str],  # noqa: F811
                              name: str) -> None:
    """Ctrl-C interrupts the command with sftp's ``Interrupt`` line and
    the batch fails (status 1), even when started with SIGINT ignored
    (a background job); the journal is kept for ``reget``."""
    data = random_file(tmp_path / "src" / "big", SIZE).read_bytes()
    (tmp_path / "out").mkdir()
    (tmp_path / "batch").write_text("get src/big out/big\nls\n")
    env = env_for(tmp_path)
    argv = programs(sftp_bin)[name] + ["-D", relay(RATE), "-b", "batch"]
    result = signal_during(
        ["sh", "-c", 'trap "" INT; exec "$@"', "sh"] + argv, tmp_path, env,
        has_data(tmp_path / "out", MIB), signal.SIGINT)
    assert result.status == 1
    assert result.stdout == b"sftp> get src/big out/big\n"
    assert result.stderr == b"\rInterrupt  \n"
    if name == "sftp":
        return
    assert not (tmp_path / "out" / "big").exists()
    found = check_journal(get_journal(tmp_path, "out/big"), data)
    assert found is not None, "no journal kept"
    (tmp_path / "batch2").write_text("reget src/big out/big\n")
    streams = "1" if name == "n1" else "4"
    again = run(PSFTP + ["-n", streams, "-D", sftp_server_bin, "-b",
                         "batch2"], tmp_path, env)
    assert again.status == 0, again.stderr
    assert (tmp_path / "out" / "big").read_bytes() == data


def test_journal_ranges_are_the_source(tmp_path: Path) -> None:
    """The helper that checks journals fails on a wrong range."""
    temp = tmp_path / ".f.psftp-1"
    temp.write_bytes(b"abcdXXgh")
    entry = journal.Journal("/src/f", 8, None, str(temp),
                            RangeSet([(0, 4), (6, 8)]))
    assert journal.save(str(tmp_path / "j"), entry)
    assert check_journal(tmp_path / "j", b"abcdefgh") is not None
    entry.done = RangeSet([(0, 6)])
    assert journal.save(str(tmp_path / "j"), entry)
    with pytest.raises(AssertionError):
        check_journal(tmp_path / "j", b"abcdefgh")
    os.unlink(tmp_path / "j")
    assert check_journal(tmp_path / "j", b"") is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_ends_the_transport_programs(tmp_path: Path,
                                            sftp_server_bin: str,
                                            relay: Callable[[int], str],  # noqa: F811
                                            signum: int) -> None:
    """As sftp's killchild: no -D program outlives psftp-shell.  A server
    that does not read its stdin (the relay, busy writing) would
    otherwise keep running, and keep its caller's pipes open."""
    random_file(tmp_path / "src" / "big", SIZE)
    (tmp_path / "out").mkdir()
    (tmp_path / "batch").write_text("get src/big out/big\n")
    pids = tmp_path / "pids"
    server = f"sh -c 'echo $$ >> {pids}; exec {relay(RATE)}'"
    result = signal_during(PSFTP + ["-n", "4", "-D", server, "-b", "batch"],
                           tmp_path, env_for(tmp_path),
                           has_data(tmp_path / "out", MIB), signum)
    assert result.status == 1
    alive = []
    for pid in map(int, pids.read_text().split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
        if state != "Z":
            alive.append(pid)
    assert alive == []
