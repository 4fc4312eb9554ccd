"""The per-file path of small files: what it asks of the server.

A small file's data and its EOF are asked for together (one round trip
where sftp takes two); a file that grew meanwhile is still followed to
its EOF, and one that shrank still ends where its data ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, cast

from psftp_shell.core.observer import TransferJob
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.request_pipeline import pull
from tests.twins import PSFTP

BLOCK = 32768


class Reads:
    """A stand-in client that records READs and answers on demand."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int, asyncio.Future[bytes]]] = []

    def read_nowait(self, handle: bytes, offset: int, length: int
                    ) -> asyncio.Future[bytes]:
        """Record the READ; the test answers it."""
        fut: asyncio.Future[bytes] = \
            asyncio.get_running_loop().create_future()
        self.asked.append((offset, length, fut))
        return fut

    def give_back(self, data: bytes) -> None:
        """The pipeline is done with a READ's data (kept by the real
        client for reuse)."""


async def _until_asked(reads: Reads, count: int) -> None:
    for _ in range(100):
        if len(reads.asked) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"asked {[(o, n) for o, n, _ in reads.asked]}")


async def _pull(tmp_path: Path, size: int, answers: dict[int, bytes]
                ) -> tuple[bytes, list[tuple[int, int]]]:
    """Pull a file of expected *size*; answer each READ at an offset from
    *answers* (missing: EOF), only once the READs in flight are known."""
    reads = Reads()
    ctx = CopyContext(read_size=BLOCK)
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    job = TransferJob(False, "/r/f", "f", size)
    task = asyncio.ensure_future(pull(ctx, cast(Any, reads), b"h", fd, 0,
                                      size, job))
    answered = 0
    try:
        while not task.done():
            await _until_asked(reads, answered + 1)
            offset, length, fut = reads.asked[answered]
            data = answers.get(offset, b"")[:length]
            fut.set_result(data)
            answered += 1
            await asyncio.sleep(0)
        pulled = await task
        assert pulled.highwater == os.fstat(fd).st_size
        return (os.pread(fd, 1 << 20, 0),
                [(o, n) for o, n, _ in reads.asked])
    finally:
        os.close(fd)


async def test_a_small_file_asks_for_its_data_and_eof_at_once(
        tmp_path: Path) -> None:
    data = os.urandom(1500)
    reads = Reads()
    ctx = CopyContext(read_size=BLOCK)
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    task = asyncio.ensure_future(pull(
        ctx, cast(Any, reads), b"h", fd, 0, 1500,
        TransferJob(False, "/r/f", "f", 1500)))
    await _until_asked(reads, 2)
    assert [(o, n) for o, n, _ in reads.asked] == [(0, 1500), (1500, BLOCK)]
    reads.asked[0][2].set_result(data)
    reads.asked[1][2].set_result(b"")
    pulled = await task
    os.close(fd)
    assert pulled.highwater == 1500 and len(reads.asked) == 2
    assert (tmp_path / "out").read_bytes() == data


async def test_a_small_file_that_grew_is_followed(tmp_path: Path) -> None:
    data = os.urandom(1500 + BLOCK + 10)
    got, asked = await _pull(tmp_path, 1500, {
        0: data[:1500], 1500: data[1500:1500 + BLOCK],
        1500 + BLOCK: data[1500 + BLOCK:]})
    assert got == data
    assert asked[:2] == [(0, 1500), (1500, BLOCK)]


async def test_a_small_file_that_shrank_ends_with_its_data(
        tmp_path: Path) -> None:
    data = os.urandom(700)
    got, asked = await _pull(tmp_path, 1500, {0: data})
    assert got == data
    assert asked[:2] == [(0, 1500), (1500, BLOCK)]
    assert (700, 800) in asked          # the rest asked again, as sftp


def test_rate_limit_charges_what_small_files_hold(tmp_path: Path,
                                                  sftp_server_bin: str,
                                                  sftp_bin: str) -> None:
    """-l 8000 (1 MB/s) over 200 files of 2000 bytes: 400 KB, well
    under a second's worth, as sftp takes it.  Charging each READ its
    full block made every file wait a quarter of a second (50 s here)."""
    src = tmp_path / "src"
    for number in range(200):
        sub = src / f"d{number // 100}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{number:03d}").write_bytes(b"y" * 2000)
    (tmp_path / "batch").write_text("get -r src dst\n")
    times = {}
    for name, program in (("sftp", [sftp_bin]), ("ours", PSFTP + ["-n", "4"])):
        shutil.rmtree(tmp_path / "dst", ignore_errors=True)
        began = time.monotonic()
        done = subprocess.run(
            program + ["-q", "-l", "8000", "-D", sftp_server_bin, "-b",
                       "batch"], cwd=tmp_path, capture_output=True,
            timeout=120)
        times[name] = time.monotonic() - began
        assert done.returncode == 0, done.stderr
        assert len(list((tmp_path / "dst").rglob("f*"))) == 200
    assert times["ours"] < max(3 * times["sftp"], 5.0), times
