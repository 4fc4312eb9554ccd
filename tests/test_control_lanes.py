"""At ``-n 1`` a tree's files are in flight together on the one connection.

sftp copies a tree one file after another, a round trip per request;
psftp-shell keeps :data:`CONTROL_LANES` files going on the control
connection, so a file's OPEN goes out while another's data comes back.
These tests watch the requests the client writes to a real sftp-server
(at most 8 files open at once, and more than one), check that every
copy is whole, and that what the command prints (errors included)
comes out exactly as with one file at a time.  sftp's meter (a terminal
at ``-n 1``) draws the files one after the other while they overlap,
each line at its file's place among the messages, as sftp's would be.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.engine import job_board, transfer_engine, trees
from psftp_shell.engine.transfer_engine import TEMP_MARK
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.chunk_ranges import RangeSet
from psftp_shell.frontend.progress import SftpMeter
from tests.test_engine import (
    StdinWriter,
    payload,
    start_rig,
    stop_rig,
    within,
)

FXP_OPEN, FXP_CLOSE, FXP_OPENDIR = 3, 4, 11
FILES = 24


class CountingWriter(StdinWriter):
    """The client's side of the pipe, counting the files it opens (a
    directory's handle counts while it is open)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self._pending = bytearray()
        self.open_now = 0
        self.most_open = 0
        self.opens = 0

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= 5:
            size = struct.unpack_from(">I", self._pending)[0]
            if len(self._pending) < 4 + size:
                break
            kind = self._pending[4]
            del self._pending[:4 + size]
            if kind == FXP_OPEN:
                self.opens += 1
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
            elif kind == FXP_OPENDIR:
                self.open_now += 1
            elif kind == FXP_CLOSE:
                self.open_now -= 1
        super().write(data)


async def _run(tmp_path: Path, server: str, op: str,
               meter: bool = False) -> tuple[CountingWriter, str, str]:
    """Copy a tree of :data:`FILES` files with ``op`` (``get``/``put``)
    over a fresh sftp-server; return the writer, stdout and stderr.

    *meter*: sftp's meter draws, and stdout, stderr and the meter share
    one stream, as on a terminal (it is returned as stdout)."""
    tmp_path.mkdir(exist_ok=True)
    made: list[CountingWriter] = []

    def counting(stdin: asyncio.StreamWriter) -> CountingWriter:
        made.append(CountingWriter(stdin))
        return made[-1]

    rig = await start_rig(tmp_path, server, writer=counting)
    remote, local, engine = rig.remote, rig.local, rig.engine
    source = (remote if op == "get" else local) / "tree"
    source.mkdir()
    for i in range(FILES):
        (source / f"f{i:02d}").write_bytes(payload(100 + 997 * i, seed=i))
    if meter:
        engine.out.stderr = engine.out.stdout
        engine.observer = SftpMeter(engine.out.stdout, columns=lambda: 80,
                                    timer=False)
    flags = {"preserve": False, "resume": False, "fsync": False}
    if op == "get":
        # two targets that cannot be written: their errors, in order
        (local / "copy").mkdir()
        for i in (5, 17):
            (local / "copy" / f"f{i:02d}").mkdir()
        await within(engine.download_dir(str(remote / "tree"), "copy",
                                         None, **flags))
    else:
        await within(engine.upload_dir(str(local / "tree"),
                                       str(remote / "copy"), **flags))
    await stop_rig(rig)
    copy = (local if op == "get" else remote) / "copy"
    for i in range(FILES):
        if op == "get" and i in (5, 17):
            continue
        name = f"f{i:02d}"
        assert (copy / name).read_bytes() == (source / name).read_bytes()
    return made[0], rig.stdout.getvalue().decode(), \
        rig.stderr.getvalue().decode()


@pytest.mark.parametrize("op", ["get", "put"])
async def test_files_of_a_tree_are_in_flight_together(
        tmp_path: Path, sftp_server_bin: str, op: str) -> None:
    writer, _, _ = await _run(tmp_path, sftp_server_bin, op)
    assert writer.opens >= FILES
    assert 2 < writer.most_open <= transfer_engine.CONTROL_LANES
    assert writer.open_now == 0


@pytest.mark.parametrize("op", ["get", "put"])
async def test_output_is_that_of_one_file_at_a_time(
        tmp_path: Path, sftp_server_bin: str, op: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    together = await _run(tmp_path / "together", sftp_server_bin, op)
    monkeypatch.setattr(transfer_engine, "CONTROL_LANES", 1)
    alone = await _run(tmp_path / "alone", sftp_server_bin, op)
    assert alone[0].most_open == 1
    strip = [tuple(t.replace(str(tmp_path / w), "T") for t in run[1:])
             for w, run in (("together", together), ("alone", alone))]
    assert strip[0] == strip[1]
    if op == "get":
        errors = strip[0][1]
        assert errors.index("f05") < errors.index("f17")
        assert errors.count("Download of file") == 2


def _screen(drawn: str, top: str) -> list[str]:
    """What a terminal shows of *drawn*: each line as its last ``\r``
    left it, the meter's rate and time cut off (they vary)."""
    shown = []
    for line in drawn.replace("\r\n", "\n").split("\n"):
        line = line.rsplit("\r", 1)[-1].replace(top, "T")
        shown.append(re.sub(r"(\d+%\s+\S+)\s.*", r"\1", line))
    return shown


@pytest.mark.parametrize("op", ["get", "put"])
async def test_sftps_meter_draws_overlapping_files_in_turn(
        tmp_path: Path, sftp_server_bin: str, op: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Files overlap while the meter draws (they went one at a time,
    and an interactive ``get -r`` of 2,000 small files took 2.5 times
    the batch run); the terminal shows what one at a time shows: a
    line per file, at 100%, with the two errors of the get between
    them where they belong."""
    writer, drawn, _ = await _run(tmp_path / "together", sftp_server_bin,
                                  op, meter=True)
    assert 2 < writer.most_open <= transfer_engine.CONTROL_LANES
    monkeypatch.setattr(transfer_engine, "CONTROL_LANES", 1)
    alone, serial, _ = await _run(tmp_path / "alone", sftp_server_bin, op,
                                  meter=True)
    assert alone.most_open == 1
    shown = _screen(drawn, str(tmp_path / "together"))
    assert shown == _screen(serial, str(tmp_path / "alone"))
    finals = [line for line in shown if line.startswith("f")]
    assert len(finals) == FILES - (2 if op == "get" else 0)
    assert all("100%" in line for line in finals), finals
    if op == "get":
        errors = [n for n, line in enumerate(shown) if "f05" in line
                  and "Download of file" in line]
        at = errors[0]
        assert shown[at - 1] == 'open local "copy/f05": Is a directory'
        assert "100%" in shown[at - 2] and "100%" in shown[at + 1]


async def test_a_resume_of_many_journals_ends(
        tmp_path: Path, sftp_server_bin: str) -> None:
    """``reget -r`` at -n 1 of a tree whose files were each left half
    done: every journal's copy goes on in chunks on the one connection,
    and a lead that finds the stream busy with another file's run is
    helped by the other lanes (it waited for ever: campaign 82:6)."""
    rig = await start_rig(tmp_path, sftp_server_bin)
    remote, local = rig.remote, rig.local
    (remote / "tree").mkdir()
    (local / "copy").mkdir()
    for i in range(12):
        data = payload(150_000 + 7919 * i, seed=i)
        source = remote / "tree" / f"f{i:02d}"
        source.write_bytes(data)
        temp = local / "copy" / f".f{i:02d}{TEMP_MARK}{i:016x}"
        temp.write_bytes(data[:60_000] + bytes(len(data) - 60_000))
        jpath = journal.download_path(rig.engine.ctx.environ,
                                      str(local / "copy" / source.name))
        assert journal.save(jpath, journal.Journal(
            str(source), len(data), int(source.stat().st_mtime), str(temp),
            RangeSet([(0, 60_000)])))
    try:
        assert await within(rig.engine.download_dir(
            str(remote / "tree"), "copy", None, preserve=False,
            resume=True, fsync=False), 30)
    finally:
        await stop_rig(rig)
    for i in range(12):
        name = f"f{i:02d}"
        assert (local / "copy" / name).read_bytes() == \
            (remote / "tree" / name).read_bytes()
    assert sorted(p.name for p in (local / "copy").iterdir()) == \
        [f"f{i:02d}" for i in range(12)]
    state = Path(journal.state_dir(rig.engine.ctx.environ))
    assert list(state.iterdir()) == []


class _Marked(io.BytesIO):
    """A terminal's stream that notes which writes came after a mark."""

    def __init__(self) -> None:
        super().__init__()
        self.marked = False
        self.late: list[bytes] = []

    def write(self, data: Any) -> int:
        if self.marked:
            self.late.append(bytes(data))
        return super().write(data)


@pytest.mark.parametrize("preserve", [False, True])
async def test_a_subdirectory_holds_back_no_later_file(
        tmp_path: Path, sftp_server_bin: str, preserve: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A subdirectory's epilogue (its mode, its times with -p) runs in
    its turn, once its files are in: it waited for the end of the whole
    command, and every file listed after it was held back with it (no
    meter while it copied, everything drawn at the end)."""
    rig = await start_rig(tmp_path, sftp_server_bin)
    tree = rig.remote / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "inner").write_bytes(b"x" * 10)
    os.utime(tree / "sub", (1_000_000, 1_000_000))
    for i in range(FILES):
        (tree / f"f{i:02d}").write_bytes(payload(1000 + i, seed=i))
    listing = trees.read_directory

    async def dirs_first(*args: Any, **kwargs: Any) -> Any:
        return sorted(await listing(*args, **kwargs),
                      key=lambda n: not n.attrs.is_dir())
    monkeypatch.setattr(trees, "read_directory", dirs_first)
    shown = _Marked()
    rig.engine.observer = SftpMeter(shown, columns=lambda: 80, timer=False)
    finish = job_board.Board.finish

    async def marking(board: job_board.Board) -> bool:
        ok = await finish(board)
        shown.marked = True
        return ok
    monkeypatch.setattr(job_board.Board, "finish", marking)
    try:
        assert await within(rig.engine.download_dir(
            str(tree), "copy", None, preserve=preserve, resume=False,
            fsync=False))
    finally:
        await stop_rig(rig)
    lines = shown.getvalue().decode().count("100%")
    assert lines == FILES + 1 and shown.late == []
    made = rig.local / "copy" / "sub"
    assert (made / "inner").read_bytes() == b"x" * 10
    if preserve:
        assert made.stat().st_mtime == 1_000_000
