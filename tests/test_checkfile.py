"""check-file: the wire format, and what ProFTPD 1.3.8 really answers.

The pure encode/decode functions are checked byte by byte; the calls run
against the private ProFTPD (tests/proftpd.py) and every hash it returns
is compared with hashlib over the file's own bytes.  OpenSSH's
sftp-server, which has no check-file, must be told apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import asyncssh
import pytest

from psftp_shell.sftp.checkfile import (
    check_file_handle,
    check_file_name,
    decode_reply,
    encode_request,
    hashes_asked,
    max_hashes,
    offers_check_file,
    probe_check_file,
    split_hashes,
)
from psftp_shell.sftp.client import (
    FX_NO_SUCH_FILE,
    FX_OP_UNSUPPORTED,
    OPEN_READ,
    ProtocolError,
    SFTPClient,
    StatusError,
)
from psftp_shell.ssh.channel import open_sftp_channel
from tests.proftpd import ProFTPD, proftpd  # noqa: F401
from tests.test_protocol import spawn, stop

T = TypeVar("T")


async def within(aw: Awaitable[T], seconds: float = 20) -> T:
    """Await *aw* with a time limit, so a hang fails the test."""
    return await asyncio.wait_for(aw, seconds)


# ------------------------------------------------------------ encoding

def test_encode_request_layout() -> None:
    body = encode_request(b"h1", ["sha256", "md5"], 5, 70000, 1024)
    assert body == (b"\0\0\0\x02h1" + b"\0\0\0\x0asha256,md5"
                    + struct.pack(">QQI", 5, 70000, 1024))


@pytest.mark.parametrize(("algorithms", "start", "length", "block"), [
    ([], 0, 0, 0), (["md5,sha1"], 0, 0, 0), ([""], 0, 0, 0),
    (["md5"], -1, 0, 0), (["md5"], 0, 1 << 64, 0), (["md5"], 0, 0, 255),
    (["md5"], 0, 0, 1), (["md5"], 0, 0, 1 << 32)])
def test_encode_request_refuses_bad_fields(
        algorithms: list[str], start: int, length: int, block: int) -> None:
    with pytest.raises(ValueError):
        encode_request(b"h", algorithms, start, length, block)


def test_encode_request_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        encode_request(b"h", "md5", 0, 0, 0)


def _reply(algorithm: bytes, hashes: bytes) -> bytes:
    return struct.pack(">I", len(algorithm)) + algorithm + hashes


def test_decode_reply_splits_by_digest_size() -> None:
    one, two = hashlib.sha1(b"a").digest(), hashlib.sha1(b"b").digest()
    assert decode_reply(_reply(b"sha1", one + two), ["md5", "sha1"]) == (
        "sha1", [one, two])


@pytest.mark.parametrize("body", [
    b"", b"\0\0", b"\0\0\0\x09md5", _reply(b"md5", b""),
    _reply(b"md5", b"x" * 17), _reply(b"sha256", b"x" * 32),
    _reply(b"\xff\xfe", b"x" * 16)])
def test_decode_reply_malformed_is_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(body, ["md5", "sha1"])


def test_split_hashes_unknown_algorithm() -> None:
    with pytest.raises(ProtocolError):
        split_hashes("nosuchhash", b"x" * 16)
    assert split_hashes("sha3_256", b"y" * 64) == [b"y" * 32] * 2


def test_reply_size_bounds() -> None:
    assert hashes_asked(0, 0, 0) == 1
    assert hashes_asked(0, 0, 4096) is None
    assert hashes_asked(100, 1000, 256) == 5    # ceil(1100 / 256)
    assert max_hashes(["md5", "sha512"], 64 + 640) == 10


# ------------------------------------------------------------ ProFTPD

@pytest.fixture
async def pro_client(proftpd: ProFTPD  # noqa: F811
                     ) -> AsyncIterator[SFTPClient]:
    """An SFTP client logged in to the private ProFTPD."""
    conn = await within(asyncssh.connect(
        "127.0.0.1", proftpd.port, username=proftpd.user,
        client_keys=[str(proftpd.client_key)],
        known_hosts=str(proftpd.known_hosts), agent_path=None,
        config=[]))
    reader, writer = await within(open_sftp_channel(conn))
    client = SFTPClient(reader, writer)
    await within(client.start())
    yield client
    await within(client.close())
    conn.close()
    await within(conn.wait_closed())


@pytest.fixture
def data_file(proftpd: ProFTPD, request: pytest.FixtureRequest  # noqa: F811
              ) -> tuple[Path, bytes]:
    """A 10000-byte file of random bytes in ProFTPD's tree."""
    path = proftpd.root / f"checkfile-{request.node.name[:60]}.bin"
    data = os.urandom(10_000)
    path.write_bytes(data)
    return path, data


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def blocks(data: bytes, start: int, size: int, count: int) -> list[bytes]:
    """hashlib's md5 of *count* *size*-byte blocks from *start*."""
    return [md5(data[start + i * size:start + (i + 1) * size])
            for i in range(count)]


async def test_proftpd_does_not_advertise_but_probe_finds_it(
        pro_client: SFTPClient) -> None:
    assert not offers_check_file(pro_client)
    assert await within(probe_check_file(pro_client))
    assert offers_check_file(pro_client)


ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]


async def test_proftpd_algorithms(pro_client: SFTPClient,
                                  data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    for algorithm in ALGORITHMS:
        got = await within(check_file_name(pro_client, str(path),
                                           ["crc32", algorithm], 0, 0, 0))
        assert got == (algorithm, [hashlib.new(algorithm, data).digest()])


async def test_proftpd_picks_first_it_knows(
        pro_client: SFTPClient, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    got = await within(check_file_name(pro_client, str(path),
                                       ["sha256", "md5"], 0, 0, 0))
    assert got == ("sha256", [hashlib.sha256(data).digest()])


async def test_proftpd_refuses_other_algorithms(
        pro_client: SFTPClient, data_file: tuple[Path, bytes]) -> None:
    for algorithms in (["crc32"], ["blake2b"]):
        with pytest.raises(StatusError) as info:
            await within(check_file_name(pro_client, str(data_file[0]),
                                         algorithms, 0, 0, 0))
        assert (info.value.code, info.value.server_message) == (
            FX_OP_UNSUPPORTED, "Invalid parameter")


# (start, length, block size) -> the byte ranges hashed, as measured.
EXACT = [
    ((0, 0, 0), [(0, 10_000)]),
    ((0, 100, 0), [(0, 100)]),
    ((500, 0, 0), [(500, 10_000)]),
    ((9999, 0, 0), [(9999, 10_000)]),
    ((0, 20_000, 0), [(0, 10_000)]),
    ((0, 0, 65536), [(0, 10_000)]),
    ((0, 0, 256), [(i, min(i + 256, 10_000))
                   for i in range(0, 10_000, 256)]),
    ((0, 4096, 1024), [(i, i + 1024) for i in range(0, 4096, 1024)]),
    ((0, 3000, 1024), [(0, 1024), (1024, 2048), (2048, 3072)]),
    ((9000, 0, 1024), [(9000, 10_000)]),
    # start > 0 with a length: the server reads start + length bytes.
    ((100, 1000, 0), [(100, 1200)]),
    ((1000, 3000, 1024), [(1000, 2024), (2024, 3048), (3048, 4072),
                          (4072, 5096)]),
    # blocks past end of file: the hash of no bytes.
    ((8192, 3000, 1024), [(8192, 9216), (9216, 10_000)]
     + [(0, 0)] * 9),
]


async def test_proftpd_ranges(pro_client: SFTPClient,
                              data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    handle = await within(pro_client.open(str(path), OPEN_READ))
    wrong = []
    try:
        for request_, ranges in EXACT:
            got = await within(check_file_handle(pro_client, handle,
                                                 ["md5"], *request_))
            if got != ("md5", [md5(data[s:e]) for s, e in ranges]):
                wrong.append(request_)
    finally:
        await within(pro_client.close_handle(handle))
    assert wrong == []


async def test_proftpd_by_relative_name(
        pro_client: SFTPClient, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    got = await within(check_file_name(pro_client, path.name, ["md5"],
                                       0, 0, 2048))
    assert got == ("md5", blocks(data, 0, 2048, 5))


REFUSED = [(10_000, 0, "start at end of file"), (20_000, 0, "past it"),
           (0, 255, "block size below 256")]


async def test_proftpd_refusals(pro_client: SFTPClient,
                                data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    for start, block, what in REFUSED:
        payload = encode_request(os.fsencode(path), ["md5"], start, 0,
                                 max(block, 256))
        if block:       # encode_request refuses it: build it by hand
            payload = payload[:-4] + struct.pack(">I", block)
        with pytest.raises(StatusError) as info:
            await within(pro_client.extended("check-file-name", payload))
        assert info.value.code == FX_OP_UNSUPPORTED, what


async def test_proftpd_empty_file_cannot_be_checked(
        pro_client: SFTPClient, proftpd: ProFTPD) -> None:  # noqa: F811
    path = proftpd.root / "checkfile-empty"
    path.write_bytes(b"")
    with pytest.raises(StatusError) as info:
        await within(check_file_name(pro_client, str(path), ["md5"],
                                     0, 0, 0))
    assert info.value.code == FX_OP_UNSUPPORTED


async def test_proftpd_missing_directory_bad_handle(
        pro_client: SFTPClient, proftpd: ProFTPD) -> None:  # noqa: F811
    with pytest.raises(StatusError) as info:
        await within(check_file_name(pro_client, str(proftpd.root / "no"),
                                     ["md5"], 0, 0, 0))
    assert info.value.code == FX_NO_SUCH_FILE
    with pytest.raises(StatusError) as info:
        await within(check_file_name(pro_client, str(proftpd.root),
                                     ["md5"], 0, 0, 0))
    assert info.value.text == "Failure"
    with pytest.raises(StatusError) as info:
        await within(check_file_handle(pro_client, b"bogus", ["md5"],
                                       0, 0, 0))
    assert info.value.server_message == "Invalid handle"


async def test_oversized_reply_refused_before_sending(
        pro_client: SFTPClient, data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    with pytest.raises(ValueError):
        await within(check_file_name(pro_client, str(path), ["md5"],
                                     0, 8 << 20, 256))
    # the session is still usable
    assert (await within(pro_client.stat(str(path)))).size == 10_000


# ------------------------------------------------------- OpenSSH

async def test_openssh_has_no_check_file(sftp_server_bin: str,
                                         tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"data")
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    try:
        assert not offers_check_file(client)
        assert not await within(probe_check_file(client))
        assert not offers_check_file(client)
        with pytest.raises(StatusError) as info:
            await within(check_file_name(client, "f", ["md5"], 0, 0, 0))
        assert info.value.code == FX_OP_UNSUPPORTED
    finally:
        await stop(session)
