"""Servers whose sizes and ends of file disagree with their data.

A server that states a file's size short of the data it serves: sftp
reads a download to the end of file, whatever size the server stated,
and copies every byte.  psftp-shell's chunked copy plans its
chunks from the stated size and follows the last one to the end of
file; an FSTAT that still states the short size must not cut the copy
back to it (as it rightly does for a source that really shrank, which
a READ at the stated size tells apart: it meets the end of file).

A server whose connections see different files (a lagging replica
behind a load balancer): the copy fails rather than end where one
connection met an end of file the others read past.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import asyncssh
import pytest

from tests.twins import Run, run_served

SIZE = 12 << 20         # chunked at -n 4 (4 MiB and up is shared)


def _short(attrs: asyncssh.SFTPAttrs) -> asyncssh.SFTPAttrs:
    if attrs.size is not None and attrs.size > 1 << 20:
        attrs.size -= attrs.size // 4
    return attrs


class Understating(asyncssh.SFTPServer):
    """States three quarters of the size of every file over 1 MiB."""

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return _short(asyncssh.SFTPAttrs.from_local(
            os.stat(self.map_path(path))))

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return _short(asyncssh.SFTPAttrs.from_local(
            os.lstat(self.map_path(path))))

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert hasattr(file_obj, "fileno")
        return _short(asyncssh.SFTPAttrs.from_local(
            os.fstat(file_obj.fileno())))


async def _get(tmp_path: Path, factory: type[asyncssh.SFTPServer],
               files: dict[str, bytes], client: str, sftp_bin: str,
               script: bytes) -> tuple[Run, Path]:
    """Serve *files* with *factory*, run *script* with sftp or
    psftp-shell at -n *client*; what it did, and the directory it ran
    in."""
    result, work, _ = await run_served(tmp_path, factory, client, sftp_bin,
                                       script, served=files)
    return result, work


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_download_ends_at_the_end_of_file_not_the_stated_size(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    data = os.urandom(SIZE)
    result, work = await _get(tmp_path, Understating, {"big": data}, client,
                              sftp_bin, b"get big\nget big again\n")
    assert (result.status, result.stderr) == (0, b"")
    assert (work / "big").read_bytes() == data
    assert (work / "again").read_bytes() == data
    assert sorted(p.name for p in work.iterdir()) == ["again", "big"]


def _read(file_obj: object, offset: int, size: int) -> bytes:
    """What asyncssh's own READ gives."""
    assert hasattr(file_obj, "seek") and hasattr(file_obj, "read")
    file_obj.seek(offset)
    return bytes(file_obj.read(size))


class Lagging(asyncssh.SFTPServer):
    """Its second to fourth sessions see every file end at 5 MiB (STAT
    and FSTAT state the whole size on every session)."""

    sessions = itertools.count(1)

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes],
                 chroot: bytes | None = None) -> None:
        super().__init__(chan, chroot=chroot)
        self.session = next(Lagging.sessions)

    async def read(self, file_obj: object, offset: int, size: int
                   ) -> bytes:
        if 2 <= self.session <= 4 and offset >= 5 << 20:
            return b""
        return _read(file_obj, offset, size)


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_connections_that_disagree_on_the_end_fail_the_copy(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    data = os.urandom(10 << 20)
    Lagging.sessions = itertools.count(1)
    result, work = await _get(tmp_path, Lagging, {"big": data}, client,
                              sftp_bin, b"get big\n")
    if client != "4" or result.status == 0:
        # one connection reads the whole file; at -n 4 (the control and
        # streams 2 to 5), only if no stream read past 5 MiB
        assert (result.status, result.stderr) == (0, b"")
        assert (work / "big").read_bytes() == data
        return
    assert result.status == 1
    assert re.fullmatch(
        rb'download "/big": the server ended the file at \d+ bytes on '
        rb"one connection and has data past that on another\r\n",
        result.stderr), result.stderr
    assert list(work.iterdir()) == []


class EndsFirst(asyncssh.SFTPServer):
    """Answers the first READ of each session with an end of file (a file
    being replaced), then serves the data; STAT states 3000 bytes."""

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        attrs = asyncssh.SFTPAttrs.from_local(os.stat(self.map_path(path)))
        attrs.size = 3000
        return attrs

    lstat = stat

    async def read(self, file_obj: object, offset: int, size: int
                   ) -> bytes:
        if not getattr(self, "answered", False):
            self.answered = True
            return b""
        return _read(file_obj, offset, size)


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_no_data_from_past_an_end_of_file_met(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    """sftp's copy is empty; psftp-shell's small-file reads (the data
    and the end of file asked at once) kept the reply from past the end
    of file, after 3000 zero bytes."""
    result, work = await _get(tmp_path, EndsFirst, {"f": os.urandom(5000)},
                              client, sftp_bin, b"get f\n")
    assert (result.status, result.stderr) == (0, b"")
    assert (work / "f").read_bytes() == b""


class Ticking(asyncssh.SFTPServer):
    """States a new mtime at every STAT, LSTAT and FSTAT (as a server
    that states the time of the request would, second by second); counts
    the bytes its READs give, by file."""

    tick = itertools.count(1_700_000_000)
    served: dict[str, int] = {}

    def _now(self, attrs: asyncssh.SFTPAttrs) -> asyncssh.SFTPAttrs:
        attrs.mtime = next(Ticking.tick)
        return attrs

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._now(asyncssh.SFTPAttrs.from_local(
            os.stat(self.map_path(path))))

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._now(asyncssh.SFTPAttrs.from_local(
            os.lstat(self.map_path(path))))

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        assert hasattr(file_obj, "fileno") and hasattr(file_obj, "name")
        return self._now(asyncssh.SFTPAttrs.from_local(
            os.fstat(file_obj.fileno())))

    async def read(self, file_obj: object, offset: int, size: int
                   ) -> bytes:
        data = _read(file_obj, offset, size)
        name = os.path.basename(os.fsdecode(getattr(file_obj, "name", b"")))
        Ticking.served[name] = Ticking.served.get(name, 0) + len(data)
        return data


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_an_mtime_that_moves_unasked_is_not_a_rewrite(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    """At -n 4 each file was read four times (three passes again after
    a new mtime) and reported as changed, where sftp reads it once.
    Now the pass made again finds the same bytes and ends the copy:
    twice each, and nothing reported."""
    files = {"a": os.urandom(SIZE), "b": os.urandom(SIZE)}
    Ticking.served = {}
    result, work = await _get(tmp_path, Ticking, files, client, sftp_bin,
                              b"get a\nget b\n")
    assert (result.status, result.stderr) == (0, b""), result.stderr
    for name, data in files.items():
        assert (work / name).read_bytes() == data
    reads = 2 if client == "4" else 1
    assert Ticking.served == {"a": reads * SIZE, "b": reads * SIZE}


class Rewriting(asyncssh.SFTPServer):
    """Touches ``touched`` (a new mtime, the same bytes) at every READ
    at offset 0; writes ``rewritten`` over in place (the same size, new
    bytes, a new mtime) after its first READ at offset 0."""

    when = 1_700_000_000
    new = b""
    done = False

    async def read(self, file_obj: object, offset: int, size: int
                   ) -> bytes:
        data = _read(file_obj, offset, size)
        path = os.fsdecode(getattr(file_obj, "name", b""))
        name = os.path.basename(path)
        if offset == 0 and name == "touched" or \
                offset == 0 and name == "rewritten" and not Rewriting.done:
            if name == "rewritten":
                Rewriting.done = True
                with open(path, "r+b") as rewrite:
                    rewrite.write(Rewriting.new)
            Rewriting.when += 10
            os.utime(path, (Rewriting.when, Rewriting.when))
        return data


async def test_a_touched_file_says_nothing_of_the_next(
        tmp_path: Path, sftp_bin: str) -> None:
    """Same bytes read again after a new mtime end that file's copy; a
    later file rewritten mid-copy is still copied again whole (a first
    version let one touched file turn the check off for the session,
    and the next file ended torn, old and new bytes, with exit 0)."""
    old, Rewriting.new = os.urandom(SIZE), os.urandom(SIZE)
    Rewriting.done = False
    result, work = await _get(
        tmp_path, Rewriting, {"touched": os.urandom(SIZE), "rewritten": old},
        "4", sftp_bin, b"get touched\nget rewritten\n")
    assert result.status == 0
    assert result.stderr == b'Source file "/rewritten" changed during ' \
        b"transfer\r\n"
    assert (work / "rewritten").read_bytes() == Rewriting.new
