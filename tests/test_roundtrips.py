"""Round trips of a parallel get and put: what goes out together.

Every request an SFTP client sends, and every reply it takes, is
recorded in one sequence (shared by all the streams of a copy), so the
tests can say what was sent before which reply arrived - the property
that decides how many round trips a copy costs on a long path - without
timing anything.  The copies run at ``-n 4`` over sftp-server processes
and over the private sshd; every copy is compared with its source, and
the failure paths touched (the lead's OPEN fails, a local temporary
cannot be made, no room, a CLOSE fails) keep sftp's messages and leave
no file, temporary or open handle behind.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.auth import BatchPrompter
from psftp_shell.connect import Connector, SSHTarget
from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.protocol import StatVFS
from psftp_shell.sftpcore import SFTPCore
from psftp_shell.transport import SSHTransport
from psftp_shell.wire import (
    FX_FAILURE,
    FX_PERMISSION_DENIED,
    FXP_CLOSE,
    FXP_EXTENDED,
    FXP_FSTAT,
    FXP_LSTAT,
    FXP_OPEN,
    FXP_STAT,
    OPEN_CREAT,
    OPEN_EXCL,
    StatusError,
)
from tests.test_engine import payload
from tests.test_parallel import CHUNK, PRig, leftovers, make_rig

STREAMS = 4
SIZE = 9 * CHUNK + 1234
"""Big enough for the free-space check (4 MiB) and for every stream."""
RENAME = b"posix-rename@openssh.com"
STATVFS = b"statvfs@openssh.com"


# ---------------------------------------------------------------- record

@dataclass
class Sent:
    """One request: who sent it, what it names, when it left and when
    its reply came (positions in the shared sequence)."""

    client: object
    ptype: int
    name: bytes             # path, handle or extension name
    flags: int = 0          # an OPEN's pflags
    sent: int = 0
    replied: int | None = None
    handle: bytes | None = None     # what an OPEN gave
    failed: bool = False


Fault = Callable[[Sent], int | None]
"""Says with which status code a reply is to fail (None: as it came)."""


@dataclass
class Wire:
    """Records every request of every client (a patched ``_submit``)."""

    requests: list[Sent] = field(default_factory=list)
    clock: int = 0
    fault: Fault = lambda sent: None
    statvfs: Callable[[Any], Any] | None = None   # rewrites the reply

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def record(self, client: object, ptype: int, payload: bytes) -> Sent:
        (length,) = struct.unpack_from(">I", payload)
        name = payload[4:4 + length]
        flags = 0
        if ptype == FXP_OPEN:
            (flags,) = struct.unpack_from(">I", payload, 4 + length)
        sent = Sent(client, ptype, name, flags, self.tick())
        self.requests.append(sent)
        return sent

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        submit = SFTPCore._submit
        wire = self

        def recording(self: SFTPCore, ptype: int, payload: bytes,
                      handler: Any, arg: Any = None
                      ) -> asyncio.Future[Any]:
            sent = wire.record(self, ptype, payload)

            def replied(rtype: int, body: bytes, rarg: Any) -> Any:
                sent.replied = wire.tick()
                code = wire.fault(sent)
                try:
                    result = handler(rtype, body, rarg)
                except StatusError:
                    sent.failed = True
                    raise
                if code is not None:
                    sent.failed = True
                    raise StatusError(code)
                if ptype == FXP_OPEN:
                    sent.handle = result
                if sent.name == STATVFS and wire.statvfs is not None:
                    result = wire.statvfs(result)
                return result
            return submit(self, ptype, payload, replied, arg)

        monkeypatch.setattr(SFTPCore, "_submit", recording)

    # ---- questions

    def of(self, ptype: int, name: bytes | None = None,
           client: object | None = None) -> list[Sent]:
        """The requests of *ptype* (naming *name*, sent by *client*)."""
        return [s for s in self.requests if s.ptype == ptype
                and (name is None or s.name == name)
                and (client is None or s.client is client)]

    def open_handles(self) -> list[tuple[object, bytes]]:
        """Handles a client was given and never sent a CLOSE for."""
        given = [(s.client, s.handle) for s in self.requests
                 if s.ptype == FXP_OPEN and s.handle is not None]
        closed = {(s.client, s.name) for s in self.of(FXP_CLOSE)}
        return [(c, h) for c, h in given if (c, h) not in closed]


def first_reply(requests: list[Sent]) -> int:
    """When the first reply to any of *requests* arrived."""
    times = [s.replied for s in requests]
    assert None not in times
    return min(t for t in times if t is not None)


def last_reply(requests: list[Sent]) -> int:
    """When the last reply to any of *requests* arrived."""
    times = [s.replied for s in requests]
    assert None not in times
    return max(t for t in times if t is not None)


# ---------------------------------------------------------------- rigs

@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    recorder = Wire()
    recorder.install(monkeypatch)
    return recorder


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop's exception handler is told (such as "Task
    exception was never retrieved"): the test must leave it empty."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    gc.collect()
    loop.set_exception_handler(old)


async def ready(rig: PRig) -> PRig:
    """*rig* with every pool stream open and idle."""
    assert rig.engine.pool is not None
    await rig.engine.pool.streams()
    assert len(rig.engine.pool.live()) == STREAMS
    return rig


@pytest.fixture
async def prig(tmp_path: Path, sftp_server_bin: str, wire: Wire,
               loop_errors: list[dict[str, Any]]) -> AsyncIterator[PRig]:
    rig = await make_rig(tmp_path, sftp_server_bin, STREAMS)
    try:
        yield await ready(rig)
    finally:
        await rig.transport.close()


@pytest.fixture(params=["pipes", pytest.param("sshd",
                                              marks=pytest.mark.sshd)])
async def anyrig(request: pytest.FixtureRequest, tmp_path: Path,
                 wire: Wire, loop_errors: list[dict[str, Any]]
                 ) -> AsyncIterator[PRig]:
    """A rig over sftp-server processes, or over the private sshd."""
    if request.param == "pipes":
        rig = await make_rig(tmp_path, request.getfixturevalue(
            "sftp_server_bin"), STREAMS)
        close = rig.transport.close
    else:
        sshd: PrivateSSHD = request.getfixturevalue("sshd")
        remote: Path = request.getfixturevalue("remote_dir")
        transport = SSHTransport(Connector(SSHTarget(
            host=HOST_ALIAS, config_file=str(sshd.ssh_config),
            batch_mode=True), BatchPrompter()))
        rig = await make_rig(tmp_path, "", STREAMS, remote=remote,
                             transport=transport)  # type: ignore[arg-type]
        close = transport.close
    try:
        yield await ready(rig)
    finally:
        await close()


async def settle(rig: PRig) -> None:
    """Let the background cleanups (handles to close) finish."""
    for _ in range(50):
        tasks = set(rig.engine.ctx.cleanups)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.sleep(0.01)
        if not rig.engine.ctx.cleanups:
            return


def clients_of(rig: PRig) -> list[object]:
    assert rig.engine.pool is not None
    return [s.client for s in rig.engine.pool.ready]


# ---------------------------------------------------------------- get

async def test_get_opens_on_every_stream_in_one_round_trip(
        anyrig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=3)
    (anyrig.remote / "f").write_bytes(data)
    source = str(anyrig.remote / "f").encode()
    assert await anyrig.get("f", "down")
    assert (anyrig.local / "down").read_bytes() == data
    assert anyrig.messages() == ""
    opens = wire.of(FXP_OPEN, source)
    # one OPEN per stream: each helper used the handle opened early
    assert sorted(map(id, (s.client for s in opens))) == \
        sorted(map(id, clients_of(anyrig)))
    assert max(s.sent for s in opens) < first_reply(opens)
    assert set(anyrig.seen.streams) == set(range(STREAMS))
    await settle(anyrig)
    assert wire.open_handles() == []


async def test_get_with_spread_checks_every_early_handle(
        prig: PRig, wire: Wire) -> None:
    prig.engine.ctx.spread = True
    data = payload(SIZE, seed=4)
    (prig.remote / "f").write_bytes(data)
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == data
    opens = wire.of(FXP_OPEN, str(prig.remote / "f").encode())
    assert max(s.sent for s in opens) < first_reply(opens)
    lead = wire.of(FXP_STAT)[-1].client
    for opened in opens:
        if opened.client is lead:
            continue
        assert opened.handle is not None
        looks = wire.of(FXP_FSTAT, opened.handle, opened.client)
        assert looks and looks[0].sent > (opened.replied or 0)
    await settle(prig)
    assert wire.open_handles() == []


async def test_get_lead_open_fails_as_before(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    (prig.remote / "f").write_bytes(payload(SIZE))
    source = str(prig.remote / "f").encode()

    def deny_lead(sent: Any) -> int | None:
        stat = wire.of(FXP_STAT, source)
        if sent.ptype == FXP_OPEN and stat and \
                sent.client is stat[0].client:
            return FX_PERMISSION_DENIED
        return None

    wire.fault = deny_lead
    assert not await prig.get("f", "down")
    assert prig.messages() == (
        f'remote open "{prig.remote}/f": Permission denied\r\n')
    assert not (prig.local / "down").exists()
    assert leftovers(prig.local) == []
    await settle(prig)
    early = [s for s in wire.of(FXP_OPEN, source) if not s.failed]
    assert len(early) == STREAMS - 1    # they were sent, and are closed
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


async def test_get_every_open_fails_quietly_but_once(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    (prig.remote / "f").write_bytes(payload(SIZE))
    wire.fault = lambda s: FX_PERMISSION_DENIED \
        if s.ptype == FXP_OPEN else None
    assert not await prig.get("f", "down")
    assert prig.messages() == (
        f'remote open "{prig.remote}/f": Permission denied\r\n')
    await settle(prig)
    gc.collect()
    assert loop_errors == []
    # the session goes on: the next copy works
    wire.fault = lambda s: None
    assert await prig.get("f", "again")
    assert (prig.local / "again").read_bytes() == payload(SIZE)


async def test_get_local_temp_error_closes_every_handle(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (prig.remote / "f").write_bytes(payload(SIZE))

    def refuse(path: str, mode: int) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("psftp_shell.getjob.local_temp", refuse)
    assert not await prig.get("f", "down")
    assert prig.messages() == 'open local "down": Permission denied\r\n'
    await settle(prig)
    opens = wire.of(FXP_OPEN, str(prig.remote / "f").encode())
    assert len(opens) == STREAMS and not any(s.failed for s in opens)
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


async def test_get_in_place_closes_the_early_handles(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    (prig.remote / "f").write_bytes(payload(SIZE))
    # no temporary can be made there: sftp's own copy, in place, fails
    assert not await prig.get("f", "nodir/down")
    assert prig.messages() == (
        'open local "nodir/down": No such file or directory\r\n')
    await settle(prig)
    opens = wire.of(FXP_OPEN, str(prig.remote / "f").encode())
    assert len(opens) == STREAMS + 1    # the early ones, then sftp's
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


async def test_get_of_few_chunks_closes_the_handles_not_used(
        prig: PRig, wire: Wire) -> None:
    prig.engine.ctx.chunk = 64 * CHUNK      # one chunk: one stream reads
    data = payload(SIZE, seed=6)
    (prig.remote / "f").write_bytes(data)
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == data
    await settle(prig)
    assert len(wire.of(FXP_OPEN, str(prig.remote / "f").encode())) \
        == STREAMS
    assert wire.open_handles() == []


# ---------------------------------------------------------------- put

def temp_open(wire: Wire) -> Sent:
    """The OPEN that created the upload's temporary."""
    made = [s for s in wire.of(FXP_OPEN)
            if s.flags & OPEN_CREAT and s.flags & OPEN_EXCL]
    assert len(made) == 1
    return made[0]


async def test_put_round_trips(anyrig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=2)
    (anyrig.local / "up").write_bytes(data)
    assert await anyrig.put("up", "f")
    assert (anyrig.remote / "f").read_bytes() == data
    assert anyrig.messages() == ""
    assert leftovers(anyrig.remote) == []
    made = temp_open(wire)
    lead = made.client
    target = str(anyrig.remote / "f").encode()
    # start: LSTAT of the target and statvfs go out with the OPEN
    looks = wire.of(FXP_LSTAT, target, lead)
    room = wire.of(FXP_EXTENDED, STATVFS, lead)
    assert looks and room
    assert looks[0].sent < (made.replied or 0)
    assert room[0].sent < (made.replied or 0)
    # finish: the size check and the helpers' CLOSEs together, then
    # the lead's CLOSE with the rename
    size = wire.of(FXP_FSTAT, None, lead)
    assert len(size) == 1
    helpers = [s for s in wire.of(FXP_CLOSE) if s.client is not lead]
    assert len(helpers) == STREAMS - 1
    together = size + helpers
    assert max(s.sent for s in together) < first_reply(together)
    last = wire.of(FXP_CLOSE, None, lead)[-1]
    rename = wire.of(FXP_EXTENDED, RENAME, lead)
    assert len(rename) == 1
    assert min(last.sent, rename[0].sent) > last_reply(together)
    assert rename[0].sent < (last.replied or 0)
    await settle(anyrig)
    assert wire.open_handles() == []


async def test_put_without_room_removes_the_temporary(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    (prig.local / "up").write_bytes(payload(SIZE))
    tiny = StatVFS(4096, 4096, 10, 1, 1, 0, 0, 0, 0, 0, 255)
    wire.statvfs = lambda values: astuple(tiny)
    assert not await prig.put("up", "f")
    assert prig.messages() == (
        f'remote "{prig.remote}/f": not enough free space ({SIZE} bytes '
        "needed, 4096 available)\r\n")
    made = temp_open(wire)
    room = wire.of(FXP_EXTENDED, STATVFS, made.client)
    assert room and room[0].sent < (made.replied or 0)
    assert not (prig.remote / "f").exists()
    assert leftovers(prig.remote) == []
    await settle(prig)
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


async def test_put_failed_helper_close_renames_nothing(
        prig: PRig, wire: Wire) -> None:
    (prig.remote / "f").write_bytes(b"precious")
    (prig.local / "up").write_bytes(payload(SIZE))

    def fail_helper_close(sent: Sent) -> int | None:
        made = [s for s in wire.of(FXP_OPEN) if s.flags & OPEN_EXCL]
        if sent.ptype == FXP_CLOSE and made and \
                sent.client is not made[0].client:
            return FX_FAILURE
        return None

    wire.fault = fail_helper_close
    assert not await prig.put("up", "f")
    assert prig.messages() == "close remote: Failure\r\n"
    assert (prig.remote / "f").read_bytes() == b"precious"
    assert leftovers(prig.remote) == []
    assert wire.of(FXP_EXTENDED, RENAME) == []
