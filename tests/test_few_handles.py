"""A server that holds few open handles per session.

sftp's upload holds one handle: its OPEN of the target.  psftp-shell's
holds two for a moment: its temporary's, and the OPEN of the target that
asks whether sftp's copy would have been allowed.  A server that allows
one handle at a time refuses the second with a plain failure; that is
not a refusal of sftp's OPEN, and the upload must go through as sftp's
does.  A real refusal (permission denied) still stops it.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from tests.twins import Run, run_served


class OneHandle(asyncssh.SFTPServer):
    """Refuses an OPEN with FX_FAILURE while a file of its session is
    open (a server with a handle limit of one)."""

    refused = 0

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes],
                 chroot: bytes | None = None) -> None:
        super().__init__(chan, chroot=chroot)
        self.open_files = 0

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if self.open_files:
            OneHandle.refused += 1
            raise asyncssh.SFTPFailure("Too many open handles")
        file_obj = super().open(path, pflags, attrs)
        self.open_files += 1
        return file_obj

    def close(self, file_obj: object) -> None:
        self.open_files -= 1
        super().close(file_obj)


class ReadOnlyTarget(OneHandle):
    """Also refuses to open ``target`` for writing (as for a read-only
    file, whoever runs the test)."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs
             ) -> object:
        if path.endswith(b"/target") and pflags & asyncssh.FXF_WRITE:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        return super().open(path, pflags, attrs)


async def _put(tmp_path: Path, client: str, sftp_bin: str, data: bytes,
               old: bytes, factory: type[OneHandle] = OneHandle
               ) -> tuple[Run, Path]:
    """Upload *data* over a target holding *old* with sftp or psftp-shell
    at ``-n`` *client*; what it did, and the server's directory."""
    OneHandle.refused = 0
    result, _, root = await run_served(
        tmp_path, factory, client, sftp_bin, b"put new target\n",
        served={"target": old}, local={"new": data})
    return result, root


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
@pytest.mark.parametrize("size", [3000, 12 << 20])
async def test_an_upload_over_a_file_passes_one_handle_at_a_time(
        tmp_path: Path, sftp_bin: str, client: str, size: int) -> None:
    data = os.urandom(size)
    result, root = await _put(tmp_path, client, sftp_bin, data, b"old")
    assert (result.status, result.stderr) == (0, b"")
    assert (root / "target").read_bytes() == data
    assert sorted(p.name for p in root.iterdir()) == ["target"]
    if client != "sftp":
        assert OneHandle.refused >= 1    # the server's limit was met


@pytest.mark.parametrize("client", ["sftp", "1", "4"])
async def test_a_target_refused_for_writing_still_stops_the_upload(
        tmp_path: Path, sftp_bin: str, client: str) -> None:
    result, root = await _put(tmp_path, client, sftp_bin, b"new" * 1000,
                              b"old", ReadOnlyTarget)
    assert result.status == 1
    assert result.stderr == b'dest open "/target": Permission denied\r\n'
    assert OneHandle.refused == 0
    assert (root / "target").read_bytes() == b"old"
    assert sorted(p.name for p in root.iterdir()) == ["target"]
