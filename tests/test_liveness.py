"""Every transfer ends: the regression tests of issue 15.

The first finding of the fault campaign: a relay in front of the sshd
cuts every connection once it has carried 12 MiB of file data (toward
the client for ``get``, toward the server for ``put``), control and
replacements included.  ``get`` of a 96 MiB file at ``-n 2`` or
``-n 4`` used to sit idle for ever: the control connection was cut while
every pool stream was lost, so the copy counted as interrupted and the
replacements that opened never took its queued chunks, and nothing else
would finish it.  Now each such command ends, finished and identical or
failed as sftp's (``Connection closed``, exit 255) with its temporary and
journal kept, and ``reget``/``reput`` then moves only what is missing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass

import pytest

from psftp_shell.devserver import HOST_ALIAS
from psftp_shell.engine.pool import Stream
from psftp_shell.engine.stream_watchdog import watch
from tests.faultrelay import DOWN, UP, FaultRelay, Rule, until
from tests.test_engine import payload
from tests.test_faults import Site, site  # noqa: F401 (a fixture)
from tests.test_faults import _journal_of as journal_of
from tests.test_faults import _journals as journals
from tests.test_parallel import leftovers

MIB = 1 << 20
CUT = 12 * MIB


@dataclass
class Ended:
    """How a psftp-shell run ended."""

    status: int
    out: str
    err: str
    seconds: float


async def run_bounded(where: Site, batch: str, *args: str,
                      bound: float) -> Ended:
    """Run psftp-shell on *batch*; fail the test (killing it) if it has
    not ended within *bound* seconds: that is a hang."""
    env = {**os.environ, "XDG_STATE_HOME": str(where.tmp / "state")}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "psftp_shell", "-F", str(where.config), *args,
        "-b", "-", HOST_ALIAS, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=where.local, env=env)
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(batch.encode()), bound)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        states = [link.state for link in where.relay.links]
        pytest.fail(f"no end within {bound} s: a hang (relay: {states})")
    assert proc.returncode is not None
    return Ended(proc.returncode, out.decode(), err.decode(),
                 time.monotonic() - started)


def cut_everything(relay: FaultRelay, way: str, after: int = CUT) -> None:
    """Close every connection from the next one on, control and
    replacements too, once it has carried *after* bytes *way*."""
    relay.apply([Rule(i, after=after, direction=way, action="close")
                 for i in range(256)])


@pytest.mark.sshd
@pytest.mark.slow
@pytest.mark.parametrize("streams", [2, 4, 8])
@pytest.mark.parametrize("direction", ["get", "put"])
async def test_every_connection_cut_after_12_mib_ends(
        site: Site, direction: str, streams: int) -> None:  # noqa: F811
    size = 96 * MIB + 5
    data = payload(size, seed=streams)
    way = DOWN if direction == "get" else UP
    if direction == "get":
        (site.remote / "f").write_bytes(data)
        command, result = f"get {site.remote}/f down", site.local / "down"
    else:
        (site.local / "f").write_bytes(data)
        command, result = f"put f {site.remote}/up", site.remote / "up"
    cut_everything(site.relay, way)
    ended = await run_bounded(site, command + "\n", "-n", str(streams),
                              bound=60)
    if ended.status == 0:           # enough connections to finish
        assert ended.err == ""
        assert result.read_bytes() == data
        assert leftovers(site.local, site.remote) == []
        return
    assert (ended.status, ended.err) == (255, "Connection closed\r\n")
    assert not result.exists()              # nothing under the final name
    assert len(journals(site, direction)) == 1
    assert leftovers(site.local, site.remote) != []     # the temporary
    before = site.relay.moved(None, way)
    site.rules()
    ended = await run_bounded(site, "re" + command + "\n", "-n",
                              str(streams), bound=60)
    assert (ended.status, ended.err) == (0, "")
    assert result.read_bytes() == data
    assert site.relay.moved(None, way) - before < size - CUT
    assert journals(site, direction) == []
    assert leftovers(site.local, site.remote) == []


@pytest.mark.sshd
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_a_transfer_stalled_everywhere(
        site: Site, signum: int) -> None:  # noqa: F811
    """No keepalive set: every connection silent (control too) waits, as
    ssh would; SIGTERM or Ctrl-C still ends it at once, journal kept."""
    data = payload(24 * MIB, seed=3)
    (site.remote / "f").write_bytes(data)
    site.rules(Rule(0, watch=1, after=2 * MIB, action="silent"),
               *(Rule(i, after=2 * MIB, action="silent")
                 for i in range(1, 5)))
    env = {**os.environ, "XDG_STATE_HOME": str(site.tmp / "state")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "psftp_shell", "-F", str(site.config), "-n",
        "4", "-b", "-", HOST_ALIAS, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=site.local, env=env)
    assert proc.stdin is not None
    proc.stdin.write(f"get {site.remote}/f down\n".encode())
    await until(lambda: sum(link.state == "silent"
                             for link in site.relay.links) == 5)
    await asyncio.sleep(0.5)
    proc.send_signal(signum)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("still running 10 s after the signal")
    assert proc.returncode == 1
    assert not (site.local / "down").exists()
    assert journals(site, "get") == [journal_of(site, "down")]
    site.rules()
    ended = await run_bounded(site, f"reget {site.remote}/f down\n", "-n",
                              "4", bound=60)
    assert (ended.status, ended.err) == (0, "")
    assert (site.local / "down").read_bytes() == data


@pytest.mark.sshd
@pytest.mark.slow
async def test_every_stream_silent_at_login_the_control_carries_it(
        site: Site) -> None:  # noqa: F811
    """Each stream's connection goes silent during its login (asyncssh's
    keepalives start only after it): the command starts on the control
    connection after ConnectTimeout instead of waiting for ever."""
    data = payload(3 * MIB + 1, seed=5)
    (site.remote / "f").write_bytes(data)
    site.rules(*(Rule(i, after=1000, action="silent") for i in range(1, 5)))
    ended = await run_bounded(site, f"get {site.remote}/f down\n", "-n",
                              "4", "-o", "ConnectTimeout=2", bound=30)
    assert (ended.status, ended.err) == (0, "")
    assert (site.local / "down").read_bytes() == data
    assert site.relay.moved(0, DOWN) > 3 * MIB      # the control's work


class _Quiet:
    """A client whose requests stay pending until it is given up."""

    def __init__(self, oldest: int | None) -> None:
        self.oldest = oldest
        self.closed = False

    def oldest_pending(self) -> int | None:
        return self.oldest

    def give_up(self) -> None:
        self.closed = True


async def test_the_watchdog_gives_up_only_silent_streams_when_stopping(
        ) -> None:
    silent, moving, idle = _Quiet(7), _Quiet(1), _Quiet(None)
    streams = [Stream.make(i, c, 1)  # type: ignore[arg-type]
               for i, c in enumerate((silent, moving, idle))]
    stopping = False
    task = asyncio.ensure_future(watch(lambda: streams, lambda: stopping,
                                       grace=0.6))
    try:
        for _ in range(8):              # not stopping: nothing happens
            moving.oldest = (moving.oldest or 0) + 1
            await asyncio.sleep(0.1)
        assert not silent.closed
        stopping = True
        for _ in range(16):             # 1.6 s: the oldest of one moves
            moving.oldest = (moving.oldest or 0) + 1
            await asyncio.sleep(0.1)
        assert (silent.closed, moving.closed, idle.closed) == \
            (True, False, False)
    finally:
        task.cancel()


@pytest.mark.sshd
@pytest.mark.slow
async def test_a_control_silent_during_its_key_exchange_ends_as_sftp(
        site: Site, sftp_bin: str) -> None:  # noqa: F811
    """asyncssh's keepalives start only after login; in batch mode the
    login is bounded, and ends with ssh's line and sftp's status."""
    (site.remote / "f").write_bytes(b"x")
    settings = ["-o", "ConnectTimeout=2", "-o", "ServerAliveInterval=1",
                "-o", "ServerAliveCountMax=2"]
    results = []
    for program in ([sftp_bin], None):
        site.rules(Rule(0, after=500, action="silent"))
        status, _, err = await site.cli(f"get {site.remote}/f down\n",
                                        *settings, program=program)
        results.append((status, err.replace(str(site.relay.port), "P")))
    assert results[0] == (255, "Connection to 127.0.0.1 port P timed out"
                               "\r\nConnection closed\r\n")
    assert results[1] == results[0]
