"""Delivery verification: ``-X verify=size|hash`` and ``verify-exec``.

The settings are parsed as the command line and the config file give
them; the remote hashing command is run for real with ``sh`` and checked
against hashlib.  Copies run on asyncssh's SFTP server with faults
injected by a server subclass (a byte flipped on its way out or in, once
or every time, a size that lies), on the private sshd (read-back and the
remote command) and on ProFTPD (its check-file): a corruption that can
be seen is caught and mended, one that stays fails the command with
nothing under the final name, and every copy is compared byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from psftp_shell.core.errors import FatalError
from psftp_shell.core.observer import NullObserver, TransferJob
from psftp_shell.core.output import Output
from psftp_shell.devserver import HOST_ALIAS, AsyncSSHServer, PrivateSSHD
from psftp_shell.engine.transfer_engine import TEMP_MARK, TransferEngine
from psftp_shell.filecopy.copy_context import CopyContext
from psftp_shell.filecopy.range_hashes import (
    BLOCK,
    MAX_BLOCKS,
    block_for,
    blocks_of,
    exec_script,
    parse_sums,
    runs_of,
)
from psftp_shell.filecopy.verify import Check
from psftp_shell.frontend.config_file import (
    ConfigError,
    parse_config,
    parse_verify,
    parse_verify_exec,
)
from psftp_shell.frontend.options import parse_args
from psftp_shell.sftp.client import OPEN_READ, SFTPClient
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.remote_exec import exec_runner
from psftp_shell.ssh.transport import PipeTransport, SSHTransport
from tests.proftpd import ProFTPD, proftpd  # noqa: F401

T = TypeVar("T")
MIB = 1 << 20
SIZE = 2 * BLOCK + MIB + 12345
"""Three hashed ranges, the last one short; chunked at -n 4."""
SPOT = BLOCK + 777
"""The byte the faulty server flips: in the second range."""


async def within(aw: Awaitable[T], seconds: float = 60) -> T:
    """Await *aw*, failing the test instead of hanging."""
    return await asyncio.wait_for(aw, seconds)


def payload(size: int) -> bytes:
    """Bytes that differ from block to block (no all-zero runs)."""
    block = bytes((i * 131 + 7) % 251 for i in range(65521))
    return (block * (size // len(block) + 1))[:size]


# ---------------------------------------------------------------- settings

def test_verify_values() -> None:
    assert [parse_verify(v) for v in ("size", " HASH ", "none")] == [
        "size", "hash", "none"]
    assert parse_verify_exec("yes") is True
    assert parse_verify_exec(" No") is False
    for bad, parse in (("md5", parse_verify), ("", parse_verify),
                       ("true", parse_verify_exec), ("1", parse_verify_exec)):
        with pytest.raises(ValueError):
            parse(bad)


def test_x_options_on_the_command_line() -> None:
    opts = parse_args(["-X", "verify=hash", "-X", "verify-exec=yes", "h"],
                      "psftp-shell")
    assert opts.x_settings["verify"] == "hash"
    assert opts.x_settings["verify-exec"] is True
    with pytest.raises(FatalError) as info:
        parse_args(["-X", "verify=crc", "h"], "psftp-shell")
    assert str(info.value) == ('Invalid verify value "crc": '
                               "must be size, hash or none")


def test_config_file_keys(tmp_path: Path) -> None:
    config = parse_config("verify = hash\nverify-exec = yes\n",
                          tmp_path / "config")
    assert config.values == {"verify": "hash", "verify-exec": True}
    assert config.warnings == []
    with pytest.raises(ConfigError, match="invalid verify-exec value"):
        parse_config("verify-exec = maybe\n", tmp_path / "config")


# ---------------------------------------------------------------- ranges

def test_blocks_and_runs() -> None:
    assert blocks_of(0) == []
    assert blocks_of(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert runs_of([(0, 4), (4, 8), (12, 16), (16, 18)]) == [
        (0, 8), (12, 18)]


@pytest.mark.parametrize("size", [1, BLOCK * MAX_BLOCKS,
                                  BLOCK * MAX_BLOCKS + 1, 5 << 40])
def test_block_size_bounds_the_number_of_ranges(size: int) -> None:
    block = block_for(size)
    assert block % BLOCK == 0
    assert len(blocks_of(size, block)) <= MAX_BLOCKS
    assert block == BLOCK or len(blocks_of(size, block - BLOCK)) \
        > MAX_BLOCKS


def test_remote_script_hashes_like_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 4096 + 100)
    path = tmp_path / "it's a $(name) with spaces"
    path.write_bytes(data)
    spans = [(0, 4096), (8192, 12288), (12288, len(data))]
    script = exec_script(str(path), spans, 4096)
    done = subprocess.run(["sh", "-c", script], capture_output=True,
                          check=True)
    assert parse_sums(done.stdout, 3) == [
        hashlib.sha256(data[s:e]).digest() for s, e in spans]
    missing = subprocess.run(["sh", "-c", exec_script(
        str(tmp_path / "gone"), spans, 4096)], capture_output=True)
    assert missing.returncode != 0


def test_parse_sums_rejects_what_is_not_sha256sum() -> None:
    line = b"ab" * 32 + b"  -\n"
    assert parse_sums(line * 2, 2) == [b"\xab" * 32] * 2
    assert parse_sums(line, 2) is None
    assert parse_sums(b"ab" * 16 + b"  -\n", 1) is None
    assert parse_sums(b"zz" * 32 + b"  -\n", 1) is None


def test_pipes_have_no_remote_command() -> None:
    assert exec_runner(PipeTransport(["true"])) is None


# ---------------------------------------------------------------- faults

@dataclass
class Faults:
    """What the faulty server does: flip byte *at* on reads or writes.

    *reads* and *writes* count the corruptions still to make (-1: every
    time); *grow* is added to the sizes FSTAT reports.
    """

    at: int = SPOT
    reads: int = 0
    writes: int = 0
    grow: int = 0
    hits: int = 0
    read_from: int | None = None

    def flip(self, left: str, offset: int, data: bytes) -> bytes:
        """*data* at *offset* with byte :attr:`at` flipped, if due."""
        count = getattr(self, left)
        if count == 0 or not offset <= self.at < offset + len(data):
            return data
        setattr(self, left, count - 1 if count > 0 else count)
        self.hits += 1
        spoilt = bytearray(data)
        spoilt[self.at - offset] ^= 0xFF
        return bytes(spoilt)


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def faulty(faults: Faults) -> type[asyncssh.SFTPServer]:
    """An asyncssh SFTP server class that injects *faults*."""

    class Faulty(asyncssh.SFTPServer):
        async def read(self, file_obj: object, offset: int,
                       size: int) -> bytes:
            data = await _value(super().read(file_obj, offset, size))
            if faults.read_from is None:
                faults.read_from = offset
            return faults.flip("reads", offset, data)

        async def write(self, file_obj: object, offset: int,
                        data: bytes) -> int:
            spoilt = faults.flip("writes", offset, data)
            return int(await _value(super().write(file_obj, offset,
                                                  spoilt)))

        async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
            st = await _value(super().fstat(file_obj))
            attrs = asyncssh.SFTPAttrs.from_local(st)
            if attrs.size is not None:
                attrs.size += faults.grow
            return attrs

    return Faulty


class Seen(NullObserver):
    """Records how each finished copy was verified."""

    def __init__(self) -> None:
        self.verified: list[str] = []
        self.errors: list[BaseException | None] = []
        self.streams: set[int] = set()

    def advanced(self, job: TransferJob, nbytes: int, stream: int = 0
                 ) -> None:
        self.streams.add(stream)

    def file_finished(self, job: TransferJob,
                      error: BaseException | None) -> None:
        self.verified.append(job.verified)
        self.errors.append(error)


@dataclass
class Rig:
    """An engine on one server; *prefix* makes its remote paths."""

    engine: TransferEngine
    transport: SSHTransport
    local: Path
    root: Path
    prefix: str
    stderr: io.BytesIO = field(default_factory=io.BytesIO)
    seen: Seen = field(default_factory=Seen)

    def messages(self) -> str:
        return self.stderr.getvalue().decode()

    def remote(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    async def get(self, name: str, dest: str) -> bool:
        return await within(self.engine.download(
            self.remote(name), dest, None, preserve=False, resume=False,
            fsync=False))

    async def put(self, src: str, name: str) -> bool:
        return await within(self.engine.upload(
            src, self.remote(name), preserve=False, resume=False,
            fsync=False))

    def leftovers(self) -> list[str]:
        state = self.local.parent / "state"
        return ([p.name for d in (self.local, self.root)
                 for p in d.iterdir() if TEMP_MARK in p.name]
                + [str(p) for p in state.rglob("*") if p.is_file()])


async def make_rig(config: Path, tmp_path: Path, root: Path, prefix: str,
                   streams: int, verify: str = "hash",
                   verify_exec: bool = False) -> Rig:
    """An engine with *streams* streams on the server *config* names."""
    local = tmp_path / "local"
    local.mkdir(exist_ok=True)
    transport = SSHTransport(Connector(SSHTarget(
        host=HOST_ALIAS, config_file=str(config), batch_mode=True),
        BatchPrompter()))
    client = await within(transport.open_client())
    stderr = io.BytesIO()
    engine = await within(TransferEngine.create(
        client, Output(io.BytesIO(), stderr, quiet=True),
        transport=transport, streams=streams, verify=verify,
        remote_exec=exec_runner(transport) if verify_exec else None))
    engine.local_cwd = str(local)
    engine.ctx.share_min = 0
    engine.ctx.chunk = MIB
    engine.ctx.environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    rig = Rig(engine, transport, local, root, prefix, stderr)
    engine.observer = rig.seen
    return rig


@pytest.fixture
async def faults(tmp_path: Path) -> AsyncIterator[tuple[Faults, Path]]:
    """A faulty asyncssh server: its faults, and its client config."""
    found = Faults()
    server = AsyncSSHServer(tmp_path / "asyncssh",
                            sftp_factory=faulty(found))
    await server.start()
    yield found, server.ssh_config
    await server.stop()


async def faulty_rig(faults: tuple[Faults, Path], tmp_path: Path,
                     streams: int, verify: str = "hash") -> Rig:
    return await make_rig(faults[1], tmp_path, tmp_path / "asyncssh"
                          / "remote", "", streams, verify)


# ---------------------------------------------------------------- asyncssh

@pytest.mark.parametrize("streams", [1, 4])
async def test_hash_round_trip(faults: tuple[Faults, Path],
                               tmp_path: Path, streams: int) -> None:
    rig = await faulty_rig(faults, tmp_path, streams)
    try:
        data = payload(SIZE)
        (rig.local / "src").write_bytes(data)
        assert await rig.put("src", "up")
        assert await rig.get("up", "down")
        assert (rig.root / "up").read_bytes() == data
        assert (rig.local / "down").read_bytes() == data
        assert rig.seen.verified == ["sha256 (read-back)"] * 2
        assert len(rig.seen.streams) == streams     # chunked at -n 4
        assert rig.messages() == "" and rig.leftovers() == []
    finally:
        await rig.transport.close()


async def test_size_is_the_quiet_default(faults: tuple[Faults, Path],
                                         tmp_path: Path) -> None:
    rig = await faulty_rig(faults, tmp_path, 1, verify="size")
    try:
        (rig.local / "src").write_bytes(b"twelve bytes")
        assert await rig.put("src", "up")
        assert await rig.get("up", "down")
        assert (rig.local / "down").read_bytes() == b"twelve bytes"
        assert rig.seen.verified == ["size", "size"]
        assert rig.messages() == ""
    finally:
        await rig.transport.close()


@pytest.mark.parametrize("streams", [1, 4])
async def test_a_chunk_corrupted_on_the_way_in_is_fetched_again(
        faults: tuple[Faults, Path], tmp_path: Path, streams: int) -> None:
    found, _ = faults
    data = payload(SIZE)
    (tmp_path / "asyncssh" / "remote").mkdir(parents=True, exist_ok=True)
    (tmp_path / "asyncssh" / "remote" / "f").write_bytes(data)
    rig = await faulty_rig(faults, tmp_path, streams, verify="size")
    try:
        found.reads = 1                 # sizes alone do not see it
        assert await rig.get("f", "plain")
        assert found.hits == 1
        plain = (rig.local / "plain").read_bytes()
        assert plain != data and len(plain) == len(data)
        rig.engine.ctx.verify = "hash"
        found.reads = 1
        assert await rig.get("f", "checked")
        assert found.hits == 2
        assert (rig.local / "checked").read_bytes() == data
        assert rig.seen.verified == ["size", "sha256 (read-back)"]
        assert rig.messages() == "" and rig.leftovers() == []
    finally:
        await rig.transport.close()


@pytest.mark.parametrize("streams", [1, 4])
async def test_a_chunk_corrupted_once_on_the_way_out_is_sent_again(
        faults: tuple[Faults, Path], tmp_path: Path, streams: int) -> None:
    found, _ = faults
    rig = await faulty_rig(faults, tmp_path, streams)
    try:
        data = payload(SIZE)
        (rig.local / "src").write_bytes(data)
        found.writes = 1
        assert await rig.put("src", "up")
        assert found.hits == 1
        assert (rig.root / "up").read_bytes() == data
        assert rig.messages() == "" and rig.leftovers() == []
    finally:
        await rig.transport.close()


@pytest.mark.parametrize("streams", [1, 4])
async def test_a_corruption_that_stays_fails_the_put(
        faults: tuple[Faults, Path], tmp_path: Path, streams: int) -> None:
    found, _ = faults
    rig = await faulty_rig(faults, tmp_path, streams)
    try:
        (rig.local / "src").write_bytes(payload(SIZE))
        (rig.root / "up").write_bytes(b"the old copy")
        found.writes = -1
        assert not await rig.put("src", "up")
        assert found.hits == 3          # the copy and two repairs
        assert rig.messages() == (
            'verify "/up": sha256 (read-back) differs in bytes '
            f"{BLOCK}-{2 * BLOCK} after 2 retries\r\n")
        assert (rig.root / "up").read_bytes() == b"the old copy"
        assert rig.leftovers() == []
        assert rig.seen.verified == [""]
        assert rig.seen.errors[0] is not None
    finally:
        await rig.transport.close()


async def test_ctrl_c_while_checking_fails_quietly(
        faults: tuple[Faults, Path], tmp_path: Path) -> None:
    found, _ = faults
    rig = await faulty_rig(faults, tmp_path, 1)
    try:
        (rig.local / "src").write_bytes(payload(SIZE))
        rig.engine.is_interrupted = lambda: found.read_from is not None
        assert not await rig.put("src", "up")      # reads: the check
        assert found.read_from == 0
        assert rig.messages() == ""
        assert not (rig.root / "up").exists()
        assert rig.leftovers() == []
    finally:
        await rig.transport.close()


async def test_a_size_that_differs_fails_the_put(
        faults: tuple[Faults, Path], tmp_path: Path) -> None:
    found, _ = faults
    rig = await faulty_rig(faults, tmp_path, 1, verify="size")
    try:
        (rig.local / "src").write_bytes(b"x" * 1000)
        found.grow = 1
        assert not await rig.put("src", "up")
        assert rig.messages() == ('verify "/up": size 1001 differs from '
                                  "source size 1000\r\n")
        assert not (rig.root / "up").exists()
        assert rig.leftovers() == []
        rig.engine.ctx.verify = "none"  # no check, as sftp
        assert await rig.put("src", "up")
        assert rig.seen.verified == ["", ""]
    finally:
        await rig.transport.close()


async def test_batch_mode_exit_status(faults: tuple[Faults, Path],
                                      tmp_path: Path,
                                      clean_ssh_env: None) -> None:
    found, config = faults
    found.writes = -1
    root = tmp_path / "asyncssh" / "remote"
    work = tmp_path / "work"
    work.mkdir()
    (work / "big").write_bytes(payload(SIZE))
    (work / "small").write_bytes(b"small\n")
    (work / "batch").write_text("put big /big\nput small /small\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "psftp_shell", "-F", str(config),
        "-X", "verify=hash", "-b", "batch", HOST_ALIAS, cwd=work,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await within(proc.communicate())
    assert proc.returncode == 1
    assert err.decode() == ('verify "/big": sha256 (read-back) differs '
                            f"in bytes {BLOCK}-{2 * BLOCK} after 2 "
                            "retries\r\n")
    assert out.decode() == "sftp> put big /big\n"
    assert sorted(p.name for p in root.iterdir()) == []


# ---------------------------------------------------------------- sshd

@pytest.mark.sshd
@pytest.mark.parametrize(("streams", "verify_exec", "label"), [
    (1, False, "sha256 (read-back)"), (4, True, "sha256 (remote command)")])
async def test_sshd_round_trip(sshd: PrivateSSHD, remote_dir: Path,
                               tmp_path: Path, streams: int,
                               verify_exec: bool, label: str) -> None:
    rig = await make_rig(sshd.ssh_config, tmp_path, remote_dir,
                         str(remote_dir), streams, verify_exec=verify_exec)
    try:
        data = payload(SIZE)
        (rig.local / "src").write_bytes(data)
        assert await rig.put("src", "up")
        assert await rig.get("up", "down")
        assert (remote_dir / "up").read_bytes() == data
        assert (rig.local / "down").read_bytes() == data
        assert rig.seen.verified == [label, label]
        assert rig.messages() == "" and rig.leftovers() == []
    finally:
        await rig.transport.close()


async def differing_ranges(rig: Rig, remote: Path, local: Path,
                           ctx: CopyContext) -> tuple[str, list[Any]]:
    """Compare *local* with *remote* as a get would, without mending."""
    client: SFTPClient = rig.engine.client
    handle = await within(client.open(str(remote), OPEN_READ))
    fd = os.open(local, os.O_RDONLY)
    try:
        job = TransferJob(False, str(remote), str(local), SIZE)

        async def no_repair(start: int, end: int) -> None:
            raise AssertionError("compare does not mend")

        check = Check(ctx, client, rig.engine.out, job, fd, str(remote),
                      handle, no_repair)
        return await within(check.compare(blocks_of(SIZE)))
    finally:
        os.close(fd)
        await client.close_handle(handle)


@pytest.mark.sshd
async def test_remote_command_finds_the_range_that_differs(
        sshd: PrivateSSHD, remote_dir: Path, tmp_path: Path) -> None:
    rig = await make_rig(sshd.ssh_config, tmp_path, remote_dir,
                         str(remote_dir), 1, verify_exec=True)
    try:
        data = bytearray(payload(SIZE))
        (remote_dir / "f").write_bytes(data)
        data[2 * BLOCK + 5] ^= 1
        (rig.local / "f").write_bytes(data)
        label, bad = await differing_ranges(
            rig, remote_dir / "f", rig.local / "f", rig.engine.ctx)
        assert label == "sha256 (remote command)"
        assert bad == [(2 * BLOCK, SIZE)]
    finally:
        await rig.transport.close()


# ---------------------------------------------------------------- ProFTPD

@pytest.mark.parametrize("streams", [1, 3])
async def test_proftpd_check_file_round_trip(
        proftpd: ProFTPD, tmp_path: Path, streams: int  # noqa: F811
        ) -> None:
    home = proftpd.root / f"verify-{streams}"
    home.mkdir(exist_ok=True)
    rig = await make_rig(proftpd.ssh_config, tmp_path, home, str(home),
                         streams)
    try:
        data = payload(SIZE)
        (rig.local / "src").write_bytes(data)
        assert await rig.put("src", "up")
        assert await rig.get("up", "down")
        assert (home / "up").read_bytes() == data
        assert (rig.local / "down").read_bytes() == data
        label = "sha256 (server check-file)"
        assert rig.seen.verified == [label, label]
        assert rig.messages() == "" and rig.leftovers() == []
    finally:
        await rig.transport.close()


async def test_proftpd_check_file_finds_the_range_that_differs(
        proftpd: ProFTPD, tmp_path: Path) -> None:  # noqa: F811
    home = proftpd.root / "verify-differs"
    home.mkdir(exist_ok=True)
    rig = await make_rig(proftpd.ssh_config, tmp_path, home, str(home), 1)
    try:
        data = bytearray(payload(SIZE))
        (home / "f").write_bytes(data)
        data[BLOCK - 1] ^= 1
        data[2 * BLOCK] ^= 1
        (rig.local / "f").write_bytes(data)
        label, bad = await differing_ranges(
            rig, home / "f", rig.local / "f", rig.engine.ctx)
        assert label == "sha256 (server check-file)"
        assert bad == [(0, BLOCK), (2 * BLOCK, SIZE)]
    finally:
        await rig.transport.close()
