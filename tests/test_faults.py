"""Connection faults: the relay itself, replacement streams, keepalives.

The first tests check :mod:`tests.faultrelay` against a small echo
server.  The pool's replacement streams are checked with a fake
transport; then psftp-shell runs against the private sshd through the
relay, which resets, closes or silences chosen connections mid-transfer.
Every copy is compared byte for byte with its source, and no temporary
may stay under the final name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.engine.pool import ATTEMPTS
from psftp_shell.filecopy import journal
from psftp_shell.filecopy.ratelimit import RateLimiter, kbps_to_bytes
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport
from tests.faultrelay import (
    DOWN,
    UP,
    FaultRelay,
    Rule,
    relay_config,
    until,
)
from tests.test_engine import payload, within
from tests.test_parallel import PRig, leftovers, make_rig

MIB = 1 << 20
KEEPALIVE = ["ServerAliveInterval=1", "ServerAliveCountMax=2"]

# ---------------------------------------------------------------- relay


async def _echo(reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    """Echo everything; a first line ``send N`` asks for N bytes."""
    with contextlib.suppress(OSError):
        first = await reader.readline()
        if first.startswith(b"send "):
            writer.write(b"x" * int(first.split()[1]))
        else:
            writer.write(first)
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def relayed(*rules: Rule) -> AsyncIterator[FaultRelay]:
    """An echo server behind a relay with *rules*."""
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    relay = FaultRelay(server.sockets[0].getsockname()[1], list(rules))
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()
        server.close()


async def _open(relay: FaultRelay
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", relay.port)


async def _read_all(reader: asyncio.StreamReader) -> bytes | Exception:
    """Everything until EOF, or the error that ended the reading."""
    got = b""
    try:
        while data := await asyncio.wait_for(reader.read(1 << 16), 5):
            got += data
    except (OSError, TimeoutError) as exc:
        return exc
    return got


async def test_relay_passes_data_and_counts_it() -> None:
    async with relayed() as relay:
        reader, writer = await _open(relay)
        writer.write(b"hello\n")
        assert await reader.readexactly(6) == b"hello\n"
        writer.write(b"more")
        assert await reader.readexactly(4) == b"more"
        writer.close()
        await asyncio.sleep(0.05)
        assert relay.moved(0, UP) == 10 and relay.moved(0, DOWN) == 10


@pytest.mark.parametrize("action", ["close", "reset"])
async def test_relay_cuts_after_a_byte_count(action: str) -> None:
    async with relayed(Rule(1, after=100_000, action=action)) as relay:
        first, second = await _open(relay), await _open(relay)
        for _, writer in (first, second):
            writer.write(b"send 300000\n")
        whole = await first[0].readexactly(300_000)
        assert whole == b"x" * 300_000       # rules pick by index
        got = await _read_all(second[0])
        if action == "close":
            assert got == b"x" * 100_000
        else:
            assert isinstance(got, ConnectionResetError) or \
                (isinstance(got, bytes) and len(got) <= 100_000)
        assert relay.moved(1, DOWN) == 100_000
        for _, writer in (first, second):
            writer.close()


async def test_relay_goes_silent_but_keeps_the_socket() -> None:
    async with relayed(Rule(0, after=5, direction=UP,
                            action="silent")) as relay:
        reader, writer = await _open(relay)
        writer.write(b"hi\n")
        assert await reader.readexactly(3) == b"hi\n"
        writer.write(b"lost words\n")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
        assert not reader.at_eof()
        assert relay.moved(0, UP) == 5      # the rest was dropped
        writer.close()
        await until(lambda: relay.links[0].state == "done", 5)
        assert relay.links[0].state == "done"


async def test_relay_watches_one_connection_to_cut_another() -> None:
    rule = Rule(0, after=50_000, watch=1, action="close")
    async with relayed(rule) as relay:
        control = await _open(relay)
        stream = await _open(relay)
        stream[1].write(b"send 80000\n")
        assert len(await stream[0].readexactly(80_000)) == 80_000
        assert await _read_all(control[0]) == b""
        assert rule.fired
        stream[1].close()


async def test_relay_refuses_a_connection() -> None:
    async with relayed(Rule(0, refuse=True)) as relay:
        reader, writer = await _open(relay)
        got = await _read_all(reader)
        assert got == b"" or isinstance(got, ConnectionResetError)
        second = await _open(relay)
        second[1].write(b"ok\n")
        assert await second[0].readexactly(3) == b"ok\n"
        assert relay.links[0].state == "done"
        writer.close()
        second[1].close()


# ---------------------------------------------------------------- sshd


@dataclass
class Site:
    """The private sshd behind a relay, and an ssh_config through it."""

    relay: FaultRelay
    config: Path
    remote: Path
    local: Path
    tmp: Path

    def rules(self, *rules: Rule) -> None:
        """Apply *rules* to the connections made from now on."""
        self.relay.apply(list(rules))

    async def rig(self, streams: int = 4, options: list[str] | None = None
                  ) -> PRig:
        """An engine on *streams* streams through the relay."""
        target = SSHTarget(host=HOST_ALIAS, config_file=str(self.config),
                           batch_mode=True, options=options or [])
        transport = SSHTransport(Connector(target, BatchPrompter()))
        rig = await make_rig(self.tmp, "", streams, remote=self.remote,
                             transport=transport)  # type: ignore[arg-type]
        assert rig.engine.pool is not None
        rig.engine.pool.backoff = 0.05
        return rig

    async def cli(self, batch: str, *args: str, timeout: float = 60,
                  program: list[str] | None = None
                  ) -> tuple[int, str, str]:
        """Run psftp-shell (or *program*) on a batch fed through a pipe.

        A pipe keeps the pool closed until the first transfer, so the
        relay's connection 0 is the control connection.
        """
        argv = program or [sys.executable, "-m", "psftp_shell"]
        env = {**os.environ, "XDG_STATE_HOME": str(self.tmp / "state")}
        proc = await asyncio.create_subprocess_exec(
            *argv, "-F", str(self.config), *args, "-b", "-", HOST_ALIAS,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.local, env=env)
        out, err = await within(proc.communicate(batch.encode()), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def site(sshd: PrivateSSHD, tmp_path: Path) -> AsyncIterator[Site]:
    relay = FaultRelay(sshd.port)
    await relay.start()
    config = relay_config(sshd.ssh_config, sshd.known_hosts, sshd.port,
                          relay.port, tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    # not named after the test: sftp would glob its [get]
    remote = Path(tempfile.mkdtemp(prefix="faults-", dir=sshd.root))
    yield Site(relay, config, remote, local, tmp_path)
    await relay.stop()
    shutil.rmtree(remote, ignore_errors=True)


def _source(site: Site, direction: str, size: int) -> bytes:
    """A file of *size* bytes named f on the side *direction* reads."""
    data = payload(size, seed=size % 13)
    side = site.remote if direction == "get" else site.local
    (side / "f").write_bytes(data)
    return data


async def _copy(rig: PRig, direction: str, **flags: bool) -> bool:
    if direction == "get":
        return await rig.get("f", "down", **flags)
    return await rig.put(str(rig.local / "f"), "up", **flags)


def _result(site: Site, direction: str) -> Path:
    return site.local / "down" if direction == "get" else site.remote / "up"


@pytest.mark.sshd
@pytest.mark.parametrize("direction", ["get", "put"])
async def test_a_reset_stream_is_replaced_and_used(site: Site,
                                                   direction: str) -> None:
    data = _source(site, direction, 16 * MIB + 7)
    way = DOWN if direction == "get" else UP
    site.rules(Rule(2, after=MIB, direction=way, action="reset"))
    rig = await site.rig()
    # about four seconds: time for a replacement to log in and help,
    # even on a busy machine where its login takes a second
    rig.engine.ctx.limiter = RateLimiter(kbps_to_bytes(32_000))
    try:
        assert await _copy(rig, direction)
        assert _result(site, direction).read_bytes() == data
        assert site.relay.links[2].state == "done"
        assert site.relay.moved(2, way) == MIB
        assert rig.engine.pool is not None
        assert rig.engine.pool.replaced == 1
        assert site.relay.moved(5, way) > MIB   # the replacement worked
        assert rig.messages() == ""
        assert leftovers(site.local, site.remote) == []
    finally:
        await rig.transport.close()


@pytest.mark.sshd
async def test_a_silent_stream_is_found_by_keepalive(site: Site) -> None:
    data = _source(site, "get", 24 * MIB)
    site.rules(Rule(3, after=2 * MIB, action="silent"))
    rig = await site.rig(options=KEEPALIVE)
    try:
        assert rig.engine.pool is not None      # all in before the copy,
        await within(rig.engine.pool.streams())     # so link 3 has work
        assert await _copy(rig, "get")
        assert (site.local / "down").read_bytes() == data
        assert site.relay.links[3].state == "done"  # the client hung up
        assert site.relay.moved(3, DOWN) == 2 * MIB
        assert rig.messages() == ""
        assert leftovers(site.local) == []
    finally:
        await rig.transport.close()


@pytest.mark.sshd
@pytest.mark.parametrize("direction", ["get", "put"])
async def test_every_stream_lost_the_control_finishes(site: Site,
                                                      direction: str
                                                      ) -> None:
    data = _source(site, direction, 12 * MIB + 3)
    way = DOWN if direction == "get" else UP
    site.rules(*(Rule(i, after=MIB, direction=way, action="close")
                 for i in (1, 2, 3)),
               *(Rule(i, refuse=True) for i in range(4, 40)))
    rig = await site.rig(streams=3)
    try:
        assert rig.engine.pool is not None
        # every stream logged in before the copy: a late one could miss
        # its 1 MiB on a loaded machine, and never be cut
        assert len(await within(rig.engine.pool.streams())) == 3
        assert await _copy(rig, direction)
        assert _result(site, direction).read_bytes() == data
        await within(rig.engine.pool.settle())
        assert rig.engine.pool.replaced == 0
        assert rig.engine.pool.live() == []
        # control, three streams, then four tries for each replacement
        assert len(site.relay.links) == 1 + 3 + 3 * ATTEMPTS
        assert site.relay.moved(0, way) > MIB   # the control carried it
        assert leftovers(site.local, site.remote) == []
    finally:
        await rig.transport.close()


def _journals(site: Site, direction: str) -> list[str]:
    """The journals a stopped copy left (in the state directory)."""
    state = site.tmp / "state" / "psftp-shell" / "journal"
    names = sorted(p.name for p in state.iterdir()) if state.is_dir() \
        else []
    return [n for n in names if n.startswith("get-") == (direction == "get")]


def _journal_of(site: Site, name: str) -> str:
    """The name of the journal of a download to *name* in site.local."""
    return os.path.basename(journal.download_path(
        {"XDG_STATE_HOME": str(site.tmp / "state")}, str(site.local / name)))


@pytest.mark.sshd
@pytest.mark.parametrize("direction", ["get", "put"])
async def test_control_lost_ends_the_session_and_resume_finishes(
        site: Site, direction: str) -> None:
    data = _source(site, direction, 24 * MIB + 5)
    way = DOWN if direction == "get" else UP
    target = f"{site.remote}/up"
    command = f"get {site.remote}/f down" if direction == "get" \
        else f"put f {target}"
    site.rules(Rule(0, watch=2, after=2 * MIB, direction=way))
    # -l: the copy lasts seconds, so the third connection is sure to
    # carry its 2 MiB before the others have moved everything
    status, out, err = await site.cli(command + "\n", "-n", "4",
                                      "-l", "40000")
    assert (status, err) == (255, "Connection closed\r\n")
    assert not _result(site, direction).exists()    # nothing final
    assert len(_journals(site, direction)) == 1
    before = site.relay.moved(None, way)
    site.rules()
    status, out, err = await site.cli("re" + command + "\n", "-n", "4")
    assert (status, err) == (0, "")
    assert _result(site, direction).read_bytes() == data
    again = site.relay.moved(None, way) - before
    assert again < len(data) - MIB          # only what was missing
    assert _journals(site, direction) == []
    assert leftovers(site.local, site.remote) == []


@pytest.mark.sshd
async def test_a_silent_control_ends_the_session_as_sftp(
        site: Site, sftp_bin: str) -> None:
    _source(site, "get", 24 * MIB)
    command = f"get {site.remote}/f down\n"
    keepalive = [arg for option in KEEPALIVE for arg in ("-o", option)]
    results = []
    for program in ([sftp_bin], None):
        site.rules(Rule(0, after=2 * MIB, action="silent"))
        status, _, err = await site.cli(command, *keepalive,
                                        program=program)
        results.append((status, err))
        if program is not None:
            (site.local / "down").unlink()  # sftp writes in place
    assert results[0][0] == 255
    assert results[0][1].endswith("Connection closed\r\n")
    assert results[1] == results[0]
    assert not (site.local / "down").exists()


@pytest.mark.sshd
async def test_a_silent_control_stops_the_streams(site: Site) -> None:
    _source(site, "get", 24 * MIB)
    site.rules(Rule(0, watch=2, after=MIB, action="silent"))
    keepalive = [arg for option in KEEPALIVE for arg in ("-o", option)]
    status, _, err = await site.cli(      # -l: five seconds at least
        f"get {site.remote}/f down\n", "-n", "4", "-l", "40000",
        *keepalive)
    assert status == 255
    assert err == "Timeout, server 127.0.0.1 not responding.\r\n" \
        "Connection closed\r\n"
    assert not (site.local / "down").exists()
    assert _journals(site, "get") == [_journal_of(site, "down")]


@pytest.mark.sshd
async def test_sixty_four_streams_against_a_default_sshd(site: Site) -> None:
    data = _source(site, "get", 8 * MIB + 1)
    rig = await site.rig(streams=64)
    try:
        assert await _copy(rig, "get")
        assert (site.local / "down").read_bytes() == data
        assert rig.engine.pool is not None
        got = len(await within(rig.engine.pool.streams()))
        said = rig.messages()
        assert said == "" if got == 64 else \
            said == f"Could open only {got} of 64 streams: " \
                    f"transferring on {got}\r\n"
        assert got >= 10
    finally:
        await rig.transport.close()


@pytest.mark.sshd
async def test_max_sessions_means_fewer_channels(site: Site) -> None:
    data = _source(site, "get", 4 * MIB + 3)
    rig = await site.rig(streams=12)
    try:
        assert rig.engine.pool is not None
        rig.engine.pool.channels = 12       # one connection for all
        assert await _copy(rig, "get")
        assert (site.local / "down").read_bytes() == data
        streams = await within(rig.engine.pool.streams())
        assert len(streams) == 10           # sshd's MaxSessions default
        assert len(site.relay.links) == 2   # control, one for the pool
    finally:
        await rig.transport.close()
