"""The SFTP v3 client protocol against OpenSSH's sftp-server and fakes.

Most tests run the real ``sftp-server`` over pipes in a scratch directory
and check results against the local file system; the malformed-packet
tests use a scripted fake server on a socketpair.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import random
import signal
import socket
import stat
import struct
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from psftp_shell.devserver import PrivateSSHD
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    FX_EOF,
    FX_FAILURE,
    FX_NO_SUCH_FILE,
    FX_OP_UNSUPPORTED,
    FX_PERMISSION_DENIED,
    OPEN_APPEND,
    OPEN_CREAT,
    OPEN_EXCL,
    OPEN_READ,
    OPEN_TRUNC,
    OPEN_WRITE,
    ConnectionLost,
    ProtocolError,
    SFTPClient,
    SFTPError,
    StatusError,
    decode_attrs,
    encode_attrs,
    fx2txt,
)
from psftp_shell.sftp.replies import on_status
from psftp_shell.sftp.wire import FX_OK

T = TypeVar("T")
TIMEOUT = 20.0
FXP_STAT = 17
FXP_VERSION = 2
FXP_STATUS = 101
FXP_HANDLE = 102
FXP_DATA = 103
FXP_NAME = 104
FXP_ATTRS = 105
# The extensions and versions spec §6.1 lists (what sftp 9.2 accepts).
SFTP_EXTENSIONS = {
    "posix-rename@openssh.com": "1", "statvfs@openssh.com": "2",
    "fstatvfs@openssh.com": "2", "hardlink@openssh.com": "1",
    "fsync@openssh.com": "1", "lsetstat@openssh.com": "1",
    "limits@openssh.com": "1", "expand-path@openssh.com": "1",
    "copy-data": "1", "users-groups-by-id@openssh.com": "1",
}


async def within(aw: Awaitable[T], timeout: float = TIMEOUT) -> T:
    """Await *aw*, failing the test instead of hanging."""
    return await asyncio.wait_for(aw, timeout)


@dataclass
class Session:
    """A client talking to a real sftp-server subprocess."""

    client: SFTPClient
    proc: asyncio.subprocess.Process
    root: Path


async def spawn(server_bin: str, root: Path, **kwargs: Any) -> Session:
    """Start sftp-server in *root* and an initialised client on it."""
    proc = await asyncio.create_subprocess_exec(
        server_bin, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=root, **kwargs)
    assert proc.stdout is not None and proc.stdin is not None
    client = SFTPClient(proc.stdout, proc.stdin)
    await within(client.start())
    return Session(client, proc, root)


async def stop(session: Session) -> None:
    """Close the client and reap the server."""
    await within(session.client.close())
    try:
        await within(session.proc.wait(), 5)
    except TimeoutError:
        session.proc.kill()
        await session.proc.wait()


@pytest.fixture
async def sess(sftp_server_bin: str, tmp_path: Path
               ) -> AsyncIterator[Session]:
    """A session whose server's working directory is an empty tmp dir."""
    root = tmp_path / "root"
    root.mkdir()
    session = await spawn(sftp_server_bin, root)
    yield session
    await stop(session)


async def put_file(client: SFTPClient, path: str, data: bytes) -> None:
    """Create *path* with *data* through the protocol."""
    handle = await client.open(path, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC)
    for off in range(0, len(data), 200_000):
        await client.write(handle, off, data[off:off + 200_000])
    await client.close_handle(handle)


async def expect_status(aw: Awaitable[Any], code: int, text: str
                        ) -> StatusError:
    """Await *aw*, which must fail with status *code* and *text*."""
    with pytest.raises(StatusError) as info:
        await within(aw)
    assert info.value.code == code
    assert info.value.text == text
    assert str(info.value) == text
    return info.value


# ------------------------------------------------------------ texts, attrs

def test_fx2txt_matches_sftp_texts() -> None:
    expected = ["No error", "End of file", "No such file or directory",
                "Permission denied", "Failure", "Bad message",
                "No connection", "Connection lost", "Operation unsupported"]
    assert [fx2txt(code) for code in range(9)] == expected
    assert fx2txt(9) == "Unknown status"
    assert fx2txt(-1) == "Unknown status"


def test_attrs_encoding_round_trip() -> None:
    attrs = Attrs(size=2**40 + 3, uid=1000, gid=100,
                  permissions=0o100644, atime=1700000000, mtime=1700000001)
    raw = encode_attrs(attrs)
    assert raw[:4] == struct.pack(">I", 0x0F)
    assert len(raw) == 4 + 8 + 8 + 4 + 8
    assert decode_attrs(raw) == attrs
    assert encode_attrs(Attrs()) == b"\0\0\0\0"
    assert encode_attrs(Attrs(permissions=0o755)) == struct.pack(
        ">II", 4, 0o755)


def test_attrs_decoding_skips_extended_pairs() -> None:
    raw = (struct.pack(">IQ", 0x80000001, 42) + struct.pack(">I", 2)
           + struct.pack(">I", 3) + b"foo" + struct.pack(">I", 1) + b"x"
           + struct.pack(">I", 0) + struct.pack(">I", 0))
    assert decode_attrs(raw) == Attrs(size=42)


def test_attrs_pairs_must_be_complete() -> None:
    with pytest.raises(ValueError):
        encode_attrs(Attrs(uid=5))
    with pytest.raises(ValueError):
        encode_attrs(Attrs(mtime=5))


# ------------------------------------------------------------ session start

async def test_version_and_extensions(sess: Session) -> None:
    client = sess.client
    assert client.version == 3
    for name, version in SFTP_EXTENSIONS.items():
        assert client.extensions[name] == version
        assert client.has_extension(name), name
    assert not client.has_extension("no-such@example.com")
    assert not client.closed


async def test_limits(sess: Session) -> None:
    limits = await within(sess.client.limits())
    assert limits.max_packet_len == 256 * 1024
    assert limits.max_read_len == 261120
    assert limits.max_write_len == 261120
    assert limits.max_open_handles > 0


async def test_realpath(sess: Session) -> None:
    client = sess.client
    (sess.root / "sub").mkdir()
    assert await within(client.realpath(".")) == str(sess.root)
    assert await client.realpath("sub/../sub/") == str(sess.root / "sub")
    assert await client.realpath("/") == "/"
    error = await expect_status(client.realpath("nope/deeper"),
                                FX_NO_SUCH_FILE, "No such file or directory")
    assert error.server_message == "No such file"


# ------------------------------------------------------------ stat family

def assert_matches(attrs: Attrs, st: os.stat_result) -> None:
    assert attrs.size == st.st_size
    assert attrs.uid == st.st_uid
    assert attrs.gid == st.st_gid
    assert attrs.permissions == st.st_mode
    assert attrs.mtime == int(st.st_mtime)
    assert attrs.atime == int(st.st_atime)


async def test_stat_lstat_files_dirs_symlinks(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "file").write_bytes(b"x" * 1234)
    (root / "dir").mkdir()
    (root / "link").symlink_to("file")
    (root / "dangling").symlink_to("missing")
    for name in ("file", "dir", "link"):
        assert_matches(await within(client.stat(name)),
                       os.stat(root / name))
        assert_matches(await client.lstat(name), os.lstat(root / name))
    assert (await client.stat("file")).is_reg()
    assert (await client.stat("dir")).is_dir()
    assert (await client.lstat("link")).is_link()
    assert (await client.stat("link")).size == 1234
    assert (await client.lstat("dangling")).is_link()
    await expect_status(client.stat("dangling"), FX_NO_SUCH_FILE,
                        "No such file or directory")


async def test_setstat_fstat_fsetstat(sess: Session) -> None:
    client, root = sess.client, sess.root
    path = root / "f"
    path.write_bytes(b"0123456789")
    await within(client.setstat("f", Attrs(permissions=0o640,
                                            atime=1000000, mtime=2000000)))
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (int(st.st_atime), int(st.st_mtime)) == (1000000, 2000000)
    handle = await client.open("f", OPEN_READ | OPEN_WRITE)
    assert_matches(await client.fstat(handle), os.stat(path))
    await client.fsetstat(handle, Attrs(size=4))
    assert (await client.fstat(handle)).size == 4
    await client.close_handle(handle)
    assert path.read_bytes() == b"0123"


# ------------------------------------------------------------ data transfer

async def test_pipelined_reads_awaited_out_of_order(sess: Session) -> None:
    client = sess.client
    data = random.randbytes(3 * 1024 * 1024 + 12345)
    (sess.root / "big").write_bytes(data)
    handle = await within(client.open("big", OPEN_READ))
    chunk = 100_000
    futures = {off: client.read_nowait(handle, off, chunk)
               for off in range(0, len(data) + chunk, chunk)}
    order = list(futures)
    random.shuffle(order)
    parts = {}
    for off in order:
        parts[off] = await within(futures[off])
    assert b"".join(parts[off] for off in sorted(parts)) == data
    assert parts[max(parts)] == b""          # wholly past the end: EOF
    await client.close_handle(handle)


async def test_read_eof_and_short_reads(sess: Session) -> None:
    client = sess.client
    (sess.root / "small").write_bytes(b"hello world")
    (sess.root / "empty").write_bytes(b"")
    handle = await within(client.open("small", OPEN_READ))
    assert await client.read(handle, 0, 5) == b"hello"
    assert await client.read(handle, 6, 100) == b"world"
    assert await client.read(handle, 11, 100) == b""
    assert await client.read(handle, 10**12, 100) == b""
    await client.close_handle(handle)
    handle = await client.open("empty", OPEN_READ)
    assert await client.read(handle, 0, 4096) == b""
    await client.close_handle(handle)


async def test_pipelined_writes_in_random_order(sess: Session) -> None:
    client = sess.client
    data = random.randbytes(4 * 1024 * 1024 + 777)
    handle = await within(client.open(
        "out", OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC,
        Attrs(permissions=0o600)))
    sizes = [261120, 1000, 40_000]     # split and joined write paths
    pieces: list[tuple[int, bytes]] = []
    off = 0
    while off < len(data):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append((off, data[off:off + size]))
        off += size
    random.shuffle(pieces)
    futures = [client.write_nowait(handle, off, memoryview(piece))
               for off, piece in pieces]
    await client.drain()
    assert await within(asyncio.gather(*futures)) == [None] * len(pieces)
    await client.close_handle(handle)
    assert (sess.root / "out").read_bytes() == data
    assert stat.S_IMODE(os.stat(sess.root / "out").st_mode) == 0o600


async def test_open_flags(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "f").write_bytes(b"abc")
    handle = await within(client.open("f", OPEN_WRITE | OPEN_APPEND))
    await client.write(handle, 0, b"def")
    await client.close_handle(handle)
    assert (root / "f").read_bytes() == b"abcdef"
    await expect_status(
        client.open("f", OPEN_WRITE | OPEN_CREAT | OPEN_EXCL),
        FX_FAILURE, "Failure")
    await expect_status(client.open("missing", OPEN_READ),
                        FX_NO_SUCH_FILE, "No such file or directory")


# ------------------------------------------------------------ directories

async def test_readdir_large_directory(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "d").mkdir()
    expected = {f"entry-{i:04d}" for i in range(250)}
    for name in expected:
        (root / "d" / name).write_bytes(name.encode())
    handle = await within(client.opendir("d"))
    batches = []
    while (batch := await within(client.readdir(handle))) is not None:
        batches.append(batch)
    await client.close_handle(handle)
    assert len(batches) >= 3                 # OpenSSH sends 100 per reply
    names = [entry.filename for batch in batches for entry in batch]
    assert sorted(names) == sorted(expected | {".", ".."})
    listed = await client.listdir("d")
    assert sorted(e.filename for e in listed) == sorted(names)
    entry = next(e for e in listed if e.filename == "entry-0007")
    assert entry.attrs.size == len("entry-0007")
    assert entry.longname.startswith("-rw")
    assert entry.longname.endswith(" entry-0007")


async def test_mkdir_rmdir_remove(sess: Session) -> None:
    client, root = sess.client, sess.root
    await within(client.mkdir("new", Attrs(permissions=0o700)))
    assert stat.S_IMODE(os.stat(root / "new").st_mode) == 0o700
    await client.rmdir("new")
    assert not (root / "new").exists()
    (root / "f").write_bytes(b"")
    await client.remove("f")
    assert not (root / "f").exists()


async def test_non_utf8_names_round_trip(sess: Session) -> None:
    client, root = sess.client, sess.root
    raw = b"caf\xe9-\xff\xfe.bin"
    (root / "d").mkdir()
    with open(os.path.join(bytes(root / "d"), raw), "wb") as out:
        out.write(b"latin")
    names = [e.filename for e in await within(client.listdir("d"))]
    (name,) = [n for n in names if n not in (".", "..")]
    assert name.encode("utf-8", "surrogateescape") == raw
    handle = await client.open("d/" + name, OPEN_READ)
    assert await client.read(handle, 0, 100) == b"latin"
    await client.close_handle(handle)
    await client.rename("d/" + name, "d/" + name + "\udc80")
    assert os.listdir(bytes(root / "d")) == [raw + b"\x80"]
    await put_file(client, "\u00e9t\u00e9", b"utf8")
    assert (root / "\u00e9t\u00e9").read_bytes() == b"utf8"
    assert "été".encode() in os.listdir(bytes(root))


# ------------------------------------------------------------ errors

async def test_error_codes_and_texts(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "file").write_bytes(b"")
    (root / "dir").mkdir()
    enoent = (FX_NO_SUCH_FILE, "No such file or directory")
    await expect_status(client.stat("missing"), *enoent)
    await expect_status(client.lstat("missing"), *enoent)
    await expect_status(client.opendir("missing"), *enoent)
    await expect_status(client.remove("missing"), *enoent)
    await expect_status(client.rmdir("file"), *enoent)      # ENOTDIR
    await expect_status(client.mkdir("dir"), FX_FAILURE, "Failure")
    await expect_status(client.mkdir("file"), FX_FAILURE, "Failure")
    await expect_status(client.remove("dir"), FX_FAILURE, "Failure")
    await expect_status(client.stat("x" * 300), 5, "Bad message")
    await expect_status(client.extended("nonesuch@example.com", b""),
                        FX_OP_UNSUPPORTED, "Operation unsupported")
    # Linux refuses to hard-link a directory with EPERM, even for root.
    await expect_status(client.hardlink("dir", "dirlink"),
                        FX_PERMISSION_DENIED, "Permission denied")


async def test_permission_denied_as_unprivileged_user(
        sftp_server_bin: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start the server as nobody")
    root = tmp_path / "open"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    (root / "secret").write_bytes(b"s")
    (root / "secret").chmod(0)
    (root / "locked").mkdir(mode=0o755)
    (root / "locked" / "f").write_bytes(b"")
    nobody = pwd.getpwnam("nobody")
    session = await spawn(sftp_server_bin, root, user=nobody.pw_uid,
                          group=nobody.pw_gid, extra_groups=[])
    client = session.client
    try:
        denied = (FX_PERMISSION_DENIED, "Permission denied")
        await expect_status(client.open("secret", OPEN_READ), *denied)
        await expect_status(client.mkdir("locked/new"), *denied)
        await expect_status(client.remove("locked/f"), *denied)
        await expect_status(client.setstat("locked", Attrs(
            permissions=0o777)), *denied)
    finally:
        await stop(session)
    assert (root / "locked" / "f").exists()


async def test_rename_plain_and_posix(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "a").write_bytes(b"A")
    (root / "b").write_bytes(b"B")
    await expect_status(client.rename("a", "b"), FX_FAILURE, "Failure")
    assert (root / "b").read_bytes() == b"B"
    await client.posix_rename("a", "b")
    assert (root / "b").read_bytes() == b"A"
    assert not (root / "a").exists()
    await client.rename("b", "c")
    assert (root / "c").read_bytes() == b"A"


async def test_symlink_wire_order_and_readlink(sess: Session) -> None:
    client, root = sess.client, sess.root
    await within(client.symlink("target/path", "link"))
    assert os.readlink(root / "link") == "target/path"
    assert await client.readlink("link") == "target/path"
    await expect_status(client.readlink("missing"), FX_NO_SUCH_FILE,
                        "No such file or directory")


async def test_hardlink(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "orig").write_bytes(b"data")
    await within(client.hardlink("orig", "twin"))
    assert os.stat(root / "twin").st_ino == os.stat(root / "orig").st_ino
    await expect_status(client.hardlink("orig", "twin"), FX_FAILURE,
                        "Failure")


async def test_statvfs_and_fstatvfs(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "f").write_bytes(b"")
    local = os.statvfs(root)
    for result in (await within(client.statvfs(".")),
                   await client.fstatvfs(await client.open("f", OPEN_READ))):
        assert result.bsize == local.f_bsize
        assert result.frsize == local.f_frsize
        assert result.blocks == local.f_blocks
        assert result.files == local.f_files
        assert result.namemax == local.f_namemax
        assert result.fsid == local.f_fsid
    await expect_status(client.statvfs("missing"), FX_NO_SUCH_FILE,
                        "No such file or directory")


async def test_fsync(sess: Session) -> None:
    client = sess.client
    handle = await within(client.open("f", OPEN_WRITE | OPEN_CREAT))
    await client.write(handle, 0, b"synced")
    await client.fsync(handle)
    await client.close_handle(handle)
    # A stale handle is EBADF on the server, which maps to "No such file".
    await expect_status(client.fsync(handle), FX_NO_SUCH_FILE,
                        "No such file or directory")
    assert (sess.root / "f").read_bytes() == b"synced"


async def test_lsetstat_changes_link_not_target(sess: Session) -> None:
    client, root = sess.client, sess.root
    (root / "target").write_bytes(b"")
    (root / "link").symlink_to("target")
    before = os.stat(root / "target").st_mtime
    await within(client.lsetstat("link", Attrs(atime=1111, mtime=2222)))
    assert int(os.lstat(root / "link").st_mtime) == 2222
    assert os.stat(root / "target").st_mtime == before
    assert (await client.lstat("link")).mtime == 2222


async def test_copy_data(sess: Session) -> None:
    client, root = sess.client, sess.root
    data = random.randbytes(300_000)
    (root / "src").write_bytes(data)
    src = await within(client.open("src", OPEN_READ))
    dst = await client.open("dst", OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC)
    await client.copy_data(src, 0, 0, dst, 0)            # up to EOF
    await client.copy_data(src, 1000, 50, dst, 400_000)
    await client.close_handle(src)
    await client.close_handle(dst)
    copied = (root / "dst").read_bytes()
    assert copied[:300_000] == data
    assert copied[300_000:400_000] == bytes(100_000)
    assert copied[400_000:] == data[1000:1050]


async def test_users_groups_by_id(sess: Session) -> None:
    client = sess.client
    unknown = 3_999_999_999
    users, groups = await within(
        client.users_groups_by_id([0, unknown], [0]))
    assert users == [pwd.getpwuid(0).pw_name, ""]
    assert groups == [grp.getgrgid(0).gr_name]
    assert users[0] == "root" and groups[0] == "root"
    assert await client.users_groups_by_id([], []) == ([], [])


async def test_raw_request(sess: Session) -> None:
    (sess.root / "f").write_bytes(b"abc")
    payload = struct.pack(">I", 1) + b"f"
    ptype, body = await within(sess.client.request(FXP_STAT, payload))
    assert ptype == FXP_ATTRS
    assert decode_attrs(body).size == 3


async def test_extended_generic(sess: Session) -> None:
    client = sess.client
    body = await within(client.extended(
        "expand-path@openssh.com", struct.pack(">I", 1) + b".",
        reply=FXP_NAME))
    assert body is not None
    (count,) = struct.unpack_from(">I", body)
    assert count == 1
    assert str(sess.root).encode() in body
    with pytest.raises(ProtocolError, match=r"EXTENDED_REPLY\(201\).*104$"):
        await within(client.extended(
            "expand-path@openssh.com", struct.pack(">I", 1) + b"."))


# ------------------------------------------------------------ lifecycle

async def test_close_is_idempotent_and_fails_pending(sess: Session) -> None:
    client = sess.client
    os.kill(sess.proc.pid, signal.SIGSTOP)
    try:
        pending = client.stat(".")
        task = asyncio.ensure_future(pending)
        await asyncio.sleep(0.05)
        await within(client.close())
        await within(client.close())
        assert client.closed
        with pytest.raises(ConnectionLost):
            await within(task)
    finally:
        os.kill(sess.proc.pid, signal.SIGCONT)
    with pytest.raises(ConnectionLost):
        await within(client.stat("."))
    with pytest.raises(ConnectionLost):
        await within(client.read_nowait(b"h", 0, 1))
    assert isinstance(await within(client.wait_closed()), ConnectionLost)


async def test_server_killed_mid_request(sftp_server_bin: str,
                                         tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(bytes(4 * 1024 * 1024))
    session = await spawn(sftp_server_bin, tmp_path)
    client = session.client
    lost: list[SFTPError] = []
    client.on_lost = lost.append
    handle = await within(client.open("big", OPEN_READ))
    os.kill(session.proc.pid, signal.SIGSTOP)
    futures = [client.read_nowait(handle, off, 32768)
               for off in range(0, 2 * 1024 * 1024, 32768)]
    await asyncio.sleep(0.05)
    session.proc.kill()
    results = await within(asyncio.gather(*futures, return_exceptions=True))
    assert all(isinstance(r, ConnectionLost) for r in results)
    assert str(results[0]) == "Connection closed"
    assert client.closed
    assert len(lost) == 1 and isinstance(lost[0], ConnectionLost)
    assert await within(client.wait_closed()) is lost[0]
    with pytest.raises(ConnectionLost):
        await within(client.realpath("."))
    await stop(session)


async def test_outbound_message_too_long(sess: Session) -> None:
    handle = await within(sess.client.open("f", OPEN_WRITE | OPEN_CREAT))
    with pytest.raises(ProtocolError, match=r"^Outbound message too long"):
        sess.client.write_nowait(handle, 0, bytes(300_000))
    await sess.client.write(handle, 0, bytes(261120))   # the limit fits
    await sess.client.close_handle(handle)
    assert (sess.root / "f").stat().st_size == 261120


# ------------------------------------------------------------ fake server

def packet(ptype: int, rid: int | None, body: bytes) -> bytes:
    """Frame a server packet."""
    head = bytes([ptype]) + (b"" if rid is None else struct.pack(">I", rid))
    return struct.pack(">I", len(head) + len(body)) + head + body


def status(code: int, message: str = "") -> bytes:
    text = message.encode()
    return struct.pack(">II", code, len(text)) + text + struct.pack(">I", 0)


class FakeServer:
    """The server end of a socketpair, driven by the test."""

    def __init__(self, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def recv(self) -> tuple[int, int, bytes]:
        """Return (type, id, payload) of the client's next request."""
        (length,) = struct.unpack(">I", await within(
            self.reader.readexactly(4)))
        body = await within(self.reader.readexactly(length))
        if body[0] == 1:                        # INIT has no id
            return 1, 0, body[1:]
        return body[0], struct.unpack_from(">I", body, 1)[0], body[5:]

    def send(self, data: bytes) -> None:
        self.writer.write(data)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[SFTPClient, FakeServer]]:
    """A client (not yet started) wired to a fake server."""
    left, right = socket.socketpair()
    c_reader, c_writer = await asyncio.open_connection(sock=left)
    s_reader, s_writer = await asyncio.open_connection(sock=right)
    client = SFTPClient(c_reader, c_writer)
    yield client, FakeServer(s_reader, s_writer)
    await within(client.close())
    s_writer.close()


def version_packet(*exts: tuple[str, str]) -> bytes:
    body = struct.pack(">I", 3)
    for name, value in exts:
        body += struct.pack(">I", len(name)) + name.encode()
        body += struct.pack(">I", len(value)) + value.encode()
    return packet(FXP_VERSION, None, body)


async def started(fake: tuple[SFTPClient, FakeServer],
                  *exts: tuple[str, str]) -> tuple[SFTPClient, FakeServer]:
    client, server = fake
    server.send(version_packet(*exts))
    await within(client.start())
    assert await server.recv() == (1, 0, struct.pack(">I", 3))
    return client, server


async def test_fake_extension_versions_must_match(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, _ = await started(fake, ("statvfs@openssh.com", "1"),
                              ("hardlink@openssh.com", "1"),
                              ("check-file", "1"))
    assert not client.has_extension("statvfs@openssh.com")
    assert client.has_extension("hardlink@openssh.com")
    assert client.has_extension("check-file")
    assert client.extensions["statvfs@openssh.com"] == "1"


async def test_fake_out_of_order_replies(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = await started(fake)
    futures = [client.read_nowait(b"H", off, 10) for off in (0, 10, 20)]
    requests = [await server.recv() for _ in futures]
    assert [r[1] for r in requests] == [1, 2, 3]       # sequential ids
    assert requests[0][2] == struct.pack(">I", 1) + b"H" + struct.pack(
        ">QI", 0, 10)
    for _, rid, _ in reversed(requests):
        data = f"reply-{rid}".encode()
        server.send(packet(FXP_DATA, rid, struct.pack(">I", len(data))
                           + data))
    assert await within(asyncio.gather(*futures)) == [
        b"reply-1", b"reply-2", b"reply-3"]


async def test_fake_status_texts_and_server_message(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = await started(fake)
    task = asyncio.ensure_future(client.realpath("x"))
    _, rid, _ = await server.recv()
    server.send(packet(FXP_STATUS, rid, status(2, "Nope, not here")))
    error = await expect_status(task, 2, "No such file or directory")
    assert error.server_message == "Nope, not here"
    read = asyncio.ensure_future(client.read(b"H", 0, 5))
    _, rid, _ = await server.recv()
    server.send(packet(FXP_STATUS, rid, struct.pack(">I", FX_EOF)))
    assert await within(read) == b""       # a bare v3 status parses too


async def test_fake_more_data_than_asked(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = await started(fake)
    first = client.read_nowait(b"H", 0, 4)
    second = client.read_nowait(b"H", 4, 4)
    _, rid, _ = await server.recv()
    server.send(packet(FXP_DATA, rid, struct.pack(">I", 5) + b"12345"))
    with pytest.raises(ProtocolError,
                       match=r"^Received more data than asked for 5 > 4$"):
        await within(first)
    with pytest.raises(ProtocolError):
        await within(second)
    assert client.closed


async def test_fake_message_too_long_mid_session(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = await started(fake)
    task = asyncio.ensure_future(client.stat("x"))
    await server.recv()
    server.send(struct.pack(">I", 0x10000000) + b"\x65junk")
    with pytest.raises(ProtocolError) as info:
        await within(task)
    assert str(info.value).splitlines() == [
        "Received message too long 268435456",
        "Ensure the remote shell produces no output for non-interactive "
        "sessions."]
    assert isinstance(await within(client.wait_closed()), ProtocolError)


async def test_fake_message_too_long_at_start(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = fake
    server.send(b"This is a shell banner\n")
    with pytest.raises(ProtocolError,
                       match=r"^Received message too long 1416128883\n"):
        await within(client.start())
    assert client.closed


async def test_fake_wrong_reply_to_init(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = fake
    server.send(packet(FXP_STATUS, 0, status(0)))
    with pytest.raises(ProtocolError,
                       match=r"^Invalid packet back from SSH2_FXP_INIT "
                             r"\(type 101\)"):
        await within(client.start())


async def test_fake_eof_before_version(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = fake
    server.writer.close()
    with pytest.raises(ConnectionLost, match="^Connection closed$"):
        await within(client.start())


@pytest.mark.parametrize("reply, message", [
    (lambda rid: packet(FXP_HANDLE, rid, struct.pack(">I", 1) + b"h"),
     r"^Expected SSH2_FXP_ATTRS\(105\) packet, got 102$"),
    (lambda rid: packet(FXP_ATTRS, rid + 7, struct.pack(">I", 0)),
     r"^Unexpected reply 8$"),
    (lambda rid: packet(FXP_ATTRS, rid, struct.pack(">IQ", 1, 5)[:7]),
     r"incomplete message"),
    (lambda rid: struct.pack(">I", 2) + b"\0" * 16,
     r"incomplete message"),
])
async def test_fake_garbage_is_a_protocol_error(
        fake: tuple[SFTPClient, FakeServer], reply: Any, message: str
        ) -> None:
    client, server = await started(fake)
    lost: list[SFTPError] = []
    client.on_lost = lost.append
    task = asyncio.ensure_future(client.stat("x"))
    other = asyncio.ensure_future(client.lstat("y"))
    _, rid, _ = await server.recv()
    await server.recv()
    server.send(reply(rid))
    for aw in (task, other):
        with pytest.raises(ProtocolError, match=message):
            await within(aw)
    assert client.closed
    assert len(lost) == 1 and isinstance(lost[0], ProtocolError)


async def test_fake_cancelled_request_reply_is_dropped(
        fake: tuple[SFTPClient, FakeServer]) -> None:
    client, server = await started(fake)
    task = asyncio.ensure_future(client.stat("x"))
    _, first, _ = await server.recv()
    task.cancel()
    later = asyncio.ensure_future(client.stat("y"))
    _, second, _ = await server.recv()
    attrs = struct.pack(">IQ", 1, 9)
    server.send(packet(FXP_ATTRS, first, attrs))
    server.send(packet(FXP_ATTRS, second, attrs))
    assert (await within(later)).size == 9
    assert not client.closed


# ------------------------------------------------------------ over SSH

@pytest.mark.sshd
@pytest.mark.slow
async def test_pipelined_download_over_ssh_channel(
        sshd: PrivateSSHD, remote_dir: Path) -> None:
    size = 50 * 1024 * 1024
    data = random.randbytes(size)
    (remote_dir / "big").write_bytes(data)
    async with asyncssh.connect(
            "127.0.0.1", port=sshd.port, username=sshd.user,
            client_keys=[str(sshd.identity)],
            known_hosts=str(sshd.known_hosts), config=[]) as conn:
        proc = await conn.create_process(subsystem="sftp", encoding=None)
        client = SFTPClient(proc.stdout, proc.stdin)
        await within(client.start())
        assert client.has_extension("limits@openssh.com")
        path = await client.realpath(str(remote_dir / "big"))
        handle = await within(client.open(path, OPEN_READ))
        chunk = (await client.limits()).max_read_len
        out = bytearray(size)
        started_at = time.perf_counter()
        window: list[tuple[int, asyncio.Future[bytes]]] = []
        offset = 0
        while offset < size or window:
            while offset < size and len(window) < 64:
                window.append((offset,
                               client.read_nowait(handle, offset, chunk)))
                offset += chunk
            off, fut = window.pop(0)
            piece = await within(fut)
            assert len(piece) == min(chunk, size - off)
            out[off:off + len(piece)] = piece
        elapsed = time.perf_counter() - started_at
        await client.close_handle(handle)
        await client.close()
        assert client.closed
    assert out == data
    print(f"\nSFTP over SSH: {size / elapsed / 1e6:.1f} MB/s "
          f"({size >> 20} MiB in {elapsed:.2f} s)")


def test_an_ok_status_is_taken_from_its_code_alone() -> None:
    """As sftp's get_status: an OK's message is not read (a put's
    replies are mostly OKs); any other status still raises with its
    message, and a status too short for its code is broken."""
    ok = struct.pack(">I", FX_OK)
    assert on_status(FXP_STATUS, ok + struct.pack(">I", 99), None) is None
    assert on_status(FXP_STATUS, ok, None) is None
    with pytest.raises(StatusError) as caught:
        on_status(FXP_STATUS, struct.pack(">II", 4, 7) + b"no way"
                  + struct.pack(">I", 0), None)
    assert (caught.value.code, caught.value.text) == (4, "Failure")
    with pytest.raises(struct.error):
        on_status(FXP_STATUS, b"\0\0", None)
