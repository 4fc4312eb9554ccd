"""A file name with a NUL in a server's reply ends the session, as sftp
ends it (``parse filenames: invalid format``): the name cannot reach the
system whole, and psftp-shell crashed on it with a traceback halfway
through a tree."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from psftp_shell.sftp.client import ProtocolError, SFTPError
from psftp_shell.sftp.replies import on_names
from psftp_shell.sftp.wire import FXP_NAME, INVALID
from tests.test_engine import start_rig, stop_rig, within

NAME = b"target"
WITH_NUL = b"tar\0et"               # the same length: lengths stay right


def _name_reply(filename: bytes) -> bytes:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    # a NAME reply's body after its id: one entry, no attributes
    return struct.pack(">I", 1) + s(filename) + \
        s(b"-rw-r--r-- " + filename) + struct.pack(">I", 0)


def test_a_nul_in_a_name_is_a_protocol_error() -> None:
    good = on_names(FXP_NAME, _name_reply(NAME), None)
    assert good is not None and good[0].filename == "target"
    with pytest.raises(ProtocolError, match=INVALID):
        on_names(FXP_NAME, _name_reply(WITH_NUL), None)


async def test_get_r_ends_cleanly_on_a_nul_name(tmp_path: Path,
                                                sftp_server_bin: str
                                                ) -> None:
    def mangle(ptype: int, body: bytes) -> tuple[int, bytes]:
        if ptype == FXP_NAME:
            body = body.replace(NAME, WITH_NUL)
        return ptype, body
    (tmp_path / "remote" / "d").mkdir(parents=True)
    (tmp_path / "remote" / "d" / "target").write_bytes(b"x")
    rig = await start_rig(tmp_path, sftp_server_bin, mangle)
    try:
        with pytest.raises(SFTPError):
            await within(rig.engine.download_dir(
                str(rig.remote / "d"), "d", None, preserve=False,
                resume=False, fsync=False))
    finally:
        await stop_rig(rig)
    made = list((rig.local / "d").iterdir()) if (rig.local / "d").exists() \
        else []
    assert made == []
