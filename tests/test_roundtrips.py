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
import re
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.sftp.client import StatVFS
from psftp_shell.sftp.request_core import SFTPCore
from psftp_shell.sftp.wire import (
    FX_FAILURE,
    FX_PERMISSION_DENIED,
    FXP_CLOSE,
    FXP_EXTENDED,
    FXP_FSETSTAT,
    FXP_FSTAT,
    FXP_LSTAT,
    FXP_OPEN,
    FXP_READ,
    FXP_REMOVE,
    FXP_SETSTAT,
    FXP_STAT,
    FXP_WRITE,
    OPEN_CREAT,
    OPEN_EXCL,
    OPEN_TRUNC,
    OPEN_WRITE,
    StatusError,
)
from psftp_shell.shell.command_line import run_line
from psftp_shell.shell.context import Settings, Shell
from psftp_shell.shell.remote_session import RemoteSession
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.prompter import BatchPrompter
from psftp_shell.ssh.transport import SSHTransport
from tests.test_engine import MIB, payload, within
from tests.test_parallel import (
    CHUNK,
    PRig,
    grow_once,
    leftovers,
    make_rig,
    stop_after,
)

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
    flags: int = 0          # an OPEN's pflags (a READ's offset)
    sent: int = 0
    replied: int | None = None
    handle: bytes | None = None     # what an OPEN gave
    failed: bool = False
    length: int = 0         # a READ's or WRITE's bytes


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
        monkeypatch.setattr(SFTPCore, "read_nowait",
                            self._nowait(SFTPCore.read_nowait, FXP_READ))
        monkeypatch.setattr(SFTPCore, "write_nowait",
                            self._nowait(SFTPCore.write_nowait, FXP_WRITE))

    def _nowait(self, send: Callable[..., asyncio.Future[Any]],
                ptype: int) -> Callable[..., asyncio.Future[Any]]:
        """A ``read_nowait`` or ``write_nowait`` that records its request
        (they bypass ``_submit``) and when the reply is taken."""
        wire = self

        def recording(self: SFTPCore, handle: bytes, offset: int,
                      arg: Any) -> asyncio.Future[Any]:
            sent = Sent(self, ptype, handle, offset, wire.tick(),
                        length=arg if isinstance(arg, int) else len(arg))
            wire.requests.append(sent)
            fut = send(self, handle, offset, arg)
            if fut.done():
                return fut
            rid = (self._next_id - 1) & 0xFFFFFFFF
            pending, handler, harg = self._pending[rid]

            def replied(rtype: int, body: bytes, rarg: Any) -> Any:
                sent.replied = wire.tick()
                return handler(rtype, body, rarg)
            self._pending[rid] = (pending, replied, harg)
            return fut
        return recording

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
    # the chunks were shared (on a busy machine a stream that started
    # late may find the others took its share: not a fault)
    assert len(set(anyrig.seen.streams)) > 1
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

    def refuse(path: str, mode: int, fresh: bool = False) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("psftp_shell.engine.getjob.local_temp", refuse)
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


def source_handles(wire: Wire, source: bytes) -> list[Sent]:
    """The OPENs of *source* that gave a handle."""
    return [s for s in wire.of(FXP_OPEN, source) if s.handle is not None]


async def copied(rig: PRig, upload: bool, seed: int) -> None:
    """Copy SIZE bytes (local "up" to remote "f", or remote "f" to local
    "down"); check that they arrived whole, with no message."""
    data = payload(SIZE, seed=seed)
    source, target = (rig.local / "up", rig.remote / "f") if upload \
        else (rig.remote / "f", rig.local / "down")
    source.write_bytes(data)
    if upload:
        assert await rig.put("up", "f")
    else:
        assert await rig.get("f", "down")
    assert target.read_bytes() == data
    assert rig.messages() == ""
    assert leftovers(rig.local, rig.remote) == []


async def test_get_closes_each_handle_behind_its_last_read(
        anyrig: PRig, wire: Wire) -> None:
    await copied(anyrig, False, seed=7)
    opened = source_handles(wire, str(anyrig.remote / "f").encode())
    looks = [s for o in opened
             for s in wire.of(FXP_FSTAT, o.handle, o.client)]
    assert len(looks) == 1
    last_of: dict[int, Sent] = {}
    for o in opened:
        closes = wire.of(FXP_CLOSE, o.handle, o.client)
        reads = wire.of(FXP_READ, o.handle, o.client)
        assert len(closes) == 1 and reads
        last = max(reads, key=lambda r: r.sent)
        last_of[id(o.client)] = last
        # the CLOSE went out behind the last READ, before its reply
        assert last.sent < closes[0].sent < (last.replied or 0)
        if looks[0].client is o.client:
            assert last.sent < looks[0].sent < closes[0].sent
    assert reads_after_close(wire) == []
    # no request at all was left for after the last data
    assert max(s.sent for s in wire.requests) < \
        last_reply(list(last_of.values()))
    assert len(last_of) == STREAMS
    await settle(anyrig)
    assert wire.open_handles() == []


def reads_after_close(wire: Wire) -> list[Sent]:
    """READs sent on a handle after its CLOSE went out."""
    closed = {(id(s.client), s.name): s.sent for s in wire.of(FXP_CLOSE)}
    return [s for s in wire.of(FXP_READ)
            if s.sent > closed.get((id(s.client), s.name), s.sent)]


async def test_get_of_a_growing_source_opens_again_to_follow(
        prig: PRig, wire: Wire) -> None:
    src = prig.remote / "f"
    src.write_bytes(payload(SIZE, seed=8))
    grow_once(prig, src, payload(3 * CHUNK + 5, seed=9))
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == src.read_bytes()
    assert prig.messages() == (
        f'Source file "{src}" changed during transfer\r\n')
    opened = source_handles(wire, str(src).encode())
    # the stream that found more data past the end closed its handle
    # with its first look there, so it opened the file again
    assert len(opened) > STREAMS
    assert reads_after_close(wire) == []
    await settle(prig)
    assert wire.open_handles() == []


async def test_get_failed_early_close_is_reported_once(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    (prig.remote / "f").write_bytes(payload(SIZE))
    wire.fault = lambda s: FX_FAILURE if s.ptype == FXP_CLOSE else None
    assert not await prig.get("f", "down")
    assert prig.messages() == "close remote: Failure\r\n"
    assert leftovers(prig.local) == []
    opened = source_handles(wire, str(prig.remote / "f").encode())
    assert len(opened) == STREAMS
    for o in opened:        # one CLOSE each, none after the copy ended
        assert len(wire.of(FXP_CLOSE, o.handle, o.client)) == 1
    gc.collect()
    assert loop_errors == []


# ---------------------------------------------------------------- put

def temp_open(wire: Wire) -> Sent:
    """The lead's OPEN of the upload's temporary (the stream that sent
    the LSTAT of the target with it)."""
    looks = wire.of(FXP_LSTAT)
    assert looks
    made = [s for s in wire.of(FXP_OPEN, None, looks[0].client)
            if s.flags & OPEN_CREAT]
    assert made and looks[0].sent < made[0].sent
    return made[0]


def helper_opens(wire: Wire, made: Sent) -> list[Sent]:
    """The other streams' OPENs of the temporary *made* names."""
    return [s for s in wire.of(FXP_OPEN, made.name)
            if s.client is not made.client]


async def dropped(rig: PRig, wire: Wire, made: Sent,
                  loop_errors: list[dict[str, Any]]) -> None:
    """Check that the temporary *made* names, opened by every stream,
    was removed once no OPEN could create it again, and that nothing
    is left open."""
    helpers = helper_opens(wire, made)
    assert len(helpers) == STREAMS - 1
    removes = wire.of(FXP_REMOVE, made.name)
    assert len(removes) == 1
    assert removes[0].sent > last_reply(helpers + [made])
    assert leftovers(rig.remote) == []
    await settle(rig)
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


TEMP_NAME = re.compile(r"\.f\.psftp-[0-9a-f]{16}")


async def test_put_helpers_open_the_temporary_with_the_lead(
        anyrig: PRig, wire: Wire) -> None:
    await copied(anyrig, True, seed=12)
    made = temp_open(wire)
    head, _, name = made.name.rpartition(b"/")
    assert head == str(anyrig.remote).encode()
    assert TEMP_NAME.fullmatch(name.decode())
    helpers = helper_opens(wire, made)
    assert len(helpers) == STREAMS - 1
    assert len({id(s.client) for s in helpers}) == STREAMS - 1
    # all sent before the lead's OPEN was answered; none can truncate
    # what another stream wrote, whichever of them creates the file
    assert max(s.sent for s in helpers) < (made.replied or 0)
    for opened in helpers + [made]:
        assert opened.flags == OPEN_WRITE | OPEN_CREAT
        assert opened.handle is not None
    await settle(anyrig)
    assert wire.open_handles() == []


async def test_put_over_a_link_replaces_the_file_it_names(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]]) -> None:
    # sftp writes through the link; the copy goes to a temporary beside
    # the file the link names (the one made beside the link is dropped),
    # and nothing is truncated in place
    data = payload(SIZE, seed=13)
    (prig.local / "up").write_bytes(data)
    (prig.remote / "sub").mkdir()
    real = prig.remote / "sub" / "real"
    real.write_bytes(b"old")
    real.chmod(0o640)
    (prig.remote / "f").symlink_to("sub/real")
    assert await prig.put("up", "f")
    assert prig.messages() == ""
    assert (prig.remote / "f").is_symlink()
    assert real.read_bytes() == data
    assert real.stat().st_mode & 0o7777 == 0o640
    assert not [s for s in wire.of(FXP_OPEN) if s.flags & OPEN_TRUNC]
    renamed = wire.of(FXP_EXTENDED, RENAME)
    assert len(renamed) == 1 and renamed[0].failed is False
    assert leftovers(prig.remote / "sub") == []
    await dropped(prig, wire, temp_open(wire), loop_errors)


async def test_put_of_a_read_only_source_creates_the_temporary_alone(
        prig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=14)
    (prig.local / "up").write_bytes(data)
    (prig.local / "up").chmod(0o444)
    assert await prig.put("up", "f")
    assert (prig.remote / "f").read_bytes() == data
    made = temp_open(wire)
    assert made.flags & OPEN_EXCL      # only its creator may write it
    assert all(s.sent > (made.replied or 0)
               for s in helper_opens(wire, made))
    assert leftovers(prig.remote) == []
    await settle(prig)
    assert wire.open_handles() == []


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
    # finish: every stream's FSTAT and CLOSE behind its last WRITE, then
    # the rename alone
    last_writes = closed_behind_writes(wire, made)
    assert len(last_writes) == STREAMS
    rename = wire.of(FXP_EXTENDED, RENAME, lead)
    assert len(rename) == 1
    assert rename[0].sent > last_reply(wire.of(FXP_FSTAT) +
                                        wire.of(FXP_CLOSE))
    after = [s for s in wire.requests
             if s.sent > last_reply(last_writes)]
    assert after == rename
    await settle(anyrig)
    assert wire.open_handles() == []


def closed_behind_writes(wire: Wire, made: Sent) -> list[Sent]:
    """Check that each handle of the temporary *made* names got its
    FSTAT, then its CLOSE, behind its last WRITE, all before the file's
    last WRITE was answered (no round trip of their own); return those
    last WRITEs.

    (A stream that finishes while another's chunk could still be split
    waits for a reply before it knows it is done, so its CLOSE may
    follow its own last reply.)
    """
    lasts, ends = [], []
    for opened in [made] + helper_opens(wire, made):
        writes = wire.of(FXP_WRITE, opened.handle, opened.client)
        if not writes:
            continue
        last = max(writes, key=lambda w: w.sent)
        looks = wire.of(FXP_FSTAT, opened.handle, opened.client)
        closes = wire.of(FXP_CLOSE, opened.handle, opened.client)
        assert len(looks) == len(closes) == 1
        assert last.sent < looks[0].sent < closes[0].sent
        lasts.append(last)
        ends.append(closes[0].sent)
    assert max(ends) < last_reply(lasts)
    return lasts


async def test_put_p_sets_the_attributes_with_the_rename(
        anyrig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=21)
    up = anyrig.local / "up"
    up.write_bytes(data)
    up.chmod(0o640)
    os.utime(up, (1_000_000_000, 1_200_000_000))
    assert await anyrig.put("up", "f", preserve=True)
    got = anyrig.remote / "f"
    assert got.read_bytes() == data
    assert anyrig.messages() == ""
    assert (got.stat().st_mode & 0o777, int(got.stat().st_mtime)) == \
        (0o640, 1_200_000_000)
    made = temp_open(wire)
    assert len(closed_behind_writes(wire, made)) == STREAMS
    setting = wire.of(FXP_SETSTAT, made.name)
    rename = wire.of(FXP_EXTENDED, RENAME)
    assert len(setting) == len(rename) == 1
    assert setting[0].sent < rename[0].sent < (setting[0].replied or 0)
    assert wire.of(FXP_FSETSTAT) == []
    await settle(anyrig)
    assert wire.open_handles() == []


async def test_put_f_keeps_the_leads_handle_to_sync(
        prig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=22)
    (prig.local / "up").write_bytes(data)
    assert await prig.put("up", "f", fsync=True)
    assert (prig.remote / "f").read_bytes() == data
    assert prig.messages() == ""
    made = temp_open(wire)
    sync = wire.of(FXP_EXTENDED, b"fsync@openssh.com")
    assert len(sync) == 1 and sync[0].client is made.client
    # the lead's handle stayed open for the sync, closed after it
    closes = wire.of(FXP_CLOSE, made.handle, made.client)
    assert len(closes) == 1 and closes[0].sent > (sync[0].replied or 0)
    rename = wire.of(FXP_EXTENDED, RENAME)
    assert len(rename) == 1 and rename[0].sent > (sync[0].replied or 0)
    await settle(prig)
    assert wire.open_handles() == []


def shrink_once(rig: PRig, path: Path, size: int) -> None:
    """Cut *path* to *size* bytes once the copy has moved all of it,
    keeping its mtime (a new one would make the copy start over)."""
    def shrink(job: Any) -> None:
        if job.transferred >= job.size and rig.seen.on_advance:
            rig.seen.on_advance = None
            st = path.stat()
            os.truncate(path, size)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    rig.seen.on_advance = shrink


async def test_put_of_a_shrunk_source_trims_the_temporary(
        prig: PRig, wire: Wire) -> None:
    up = prig.local / "up"
    up.write_bytes(payload(SIZE, seed=23))
    shrink_once(prig, up, SIZE - CHUNK)
    assert await prig.put("up", "f")
    assert (prig.remote / "f").read_bytes() == up.read_bytes()
    assert prig.messages() == (
        'Source file "up" changed during transfer\r\n')
    made = temp_open(wire)
    # every stream had closed its handle: one is opened again to trim
    trims = wire.of(FXP_FSETSTAT)
    assert len(trims) == 1
    assert len(source_handles(wire, made.name)) == STREAMS + 1
    await settle(prig)
    assert wire.open_handles() == []


async def test_put_whose_size_check_fails_checks_again_on_a_new_handle(
        prig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=24)
    (prig.local / "up").write_bytes(data)
    failed: list[Sent] = []

    def fail_first_look(sent: Sent) -> int | None:
        if sent.ptype == FXP_FSTAT and not failed:
            failed.append(sent)
            return FX_FAILURE
        return None

    wire.fault = fail_first_look
    assert await prig.put("up", "f")
    assert (prig.remote / "f").read_bytes() == data
    assert prig.messages() == ""
    made = temp_open(wire)
    handles = source_handles(wire, made.name)
    assert len(handles) == STREAMS + 1
    again = handles[-1]
    looks = [s for s in wire.of(FXP_FSTAT, again.handle, again.client)
             if s.sent > again.sent]      # (handles are numbers reused)
    assert len(looks) == 1 and not looks[0].failed
    rename = wire.of(FXP_EXTENDED, RENAME)
    assert len(rename) == 1 and rename[0].sent > (looks[0].replied or 0)
    await settle(prig)
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
    await dropped(prig, wire, made, loop_errors)


async def test_put_failed_helper_close_renames_nothing(
        prig: PRig, wire: Wire) -> None:
    (prig.remote / "f").write_bytes(b"precious")
    (prig.local / "up").write_bytes(payload(SIZE))

    def fail_helper_close(sent: Sent) -> int | None:
        if sent.ptype == FXP_CLOSE and \
                sent.client is not temp_open(wire).client:
            return FX_FAILURE
        return None

    wire.fault = fail_helper_close
    assert not await prig.put("up", "f")
    assert prig.messages() == "close remote: Failure\r\n"
    assert (prig.remote / "f").read_bytes() == b"precious"
    assert leftovers(prig.remote) == []
    assert wire.of(FXP_EXTENDED, RENAME) == []


# ------------------------------------------------------- the put command

async def put_line(rig: PRig, line: str) -> int:
    """Run a ``put`` command line through the shell, as typed; its
    ``Uploading`` line goes to the rig's stdout."""
    rig.engine.out.quiet = False
    remote = RemoteSession(rig.engine.client, rig.engine.out)
    await within(remote.start())
    shell = Shell(rig.engine.out, remote, rig.engine, str(rig.local),
                  Settings(batch=True))
    return await within(run_line(shell, line, echo=False, abort=True))


async def test_put_asks_if_the_target_is_a_directory_as_it_opens(
        anyrig: PRig, wire: Wire) -> None:
    data = payload(SIZE, seed=26)
    (anyrig.local / "up").write_bytes(data)
    target = anyrig.remote / "f"
    assert await put_line(anyrig, f"put up {target}") == 0
    assert target.read_bytes() == data
    assert anyrig.stdout.getvalue().decode() == \
        f"Uploading up to {target}\n"
    assert anyrig.messages() == ""
    # sftp's remote_is_dir, on the control connection, and the
    # temporary's OPEN on every stream: one round trip
    asking = wire.of(FXP_STAT, str(target).encode())
    assert len(asking) == 1
    assert asking[0].client is anyrig.engine.client
    made = temp_open(wire)
    assert made.sent < (asking[0].replied or 0)
    assert asking[0].sent < (made.replied or 0)
    assert max(s.sent for s in helper_opens(wire, made)) < \
        (asking[0].replied or 0)
    assert leftovers(anyrig.remote) == []
    await settle(anyrig)
    assert wire.open_handles() == []


@pytest.mark.parametrize("via_link", [False, True])
async def test_put_into_a_directory_drops_the_guessed_temporary(
        prig: PRig, wire: Wire, loop_errors: list[dict[str, Any]],
        via_link: bool) -> None:
    data = payload(SIZE, seed=27)
    (prig.local / "up").write_bytes(data)
    (prig.remote / "d").mkdir()
    named = prig.remote / "d"
    if via_link:
        named = prig.remote / "to_d"
        named.symlink_to("d")
    assert await put_line(prig, f"put up {named}") == 0
    assert (prig.remote / "d" / "up").read_bytes() == data
    assert prig.stdout.getvalue().decode() == \
        f"Uploading up to {named}/up\n"
    assert prig.messages() == ""
    # the temporary guessed beside the target was made, then removed;
    # the copy's own went inside the directory
    guessed = [s for s in wire.of(FXP_OPEN) if s.flags & OPEN_CREAT
               and s.name.rpartition(b"/")[0] == str(prig.remote).encode()]
    assert guessed
    assert wire.of(FXP_REMOVE, guessed[0].name)
    assert leftovers(prig.remote) == []
    assert leftovers(prig.remote / "d") == []
    await settle(prig)
    assert wire.open_handles() == []
    gc.collect()
    assert loop_errors == []


async def test_put_into_a_directory_whose_name_leaves_no_room_to_guess(
        prig: PRig, wire: Wire) -> None:
    """The temporary guessed beside a directory with a 250-byte name
    cannot be made (its name would be too long): quietly dropped."""
    data = payload(SIZE, seed=28)
    (prig.local / "up").write_bytes(data)
    named = prig.remote / ("d" * 250)
    named.mkdir()
    assert await put_line(prig, f"put up {named}") == 0
    assert (named / "up").read_bytes() == data
    assert prig.messages() == ""
    refused = [s for s in wire.of(FXP_OPEN) if s.failed]
    assert len(refused) == STREAMS
    assert all(s.name.rpartition(b"/")[0] == str(prig.remote).encode()
               for s in refused)
    assert leftovers(prig.remote) == []
    assert leftovers(named) == []
    await settle(prig)
    assert wire.open_handles() == []


# ---------------------------------------------------------------- -B and -R

def most_in_flight(wire: Wire, ptype: int) -> dict[object, int]:
    """The most *ptype* requests each client had unanswered at once."""
    most: dict[object, int] = {}
    for client in {s.client for s in wire.of(ptype)}:
        mine = wire.of(ptype, None, client)
        events = sorted([(s.sent, 1) for s in mine] +
                        [(s.replied or 0, -1) for s in mine],
                        key=lambda e: (e[0], e[1]))
        level = top = 0
        for _, step in events:
            level += step
            top = max(top, level)
        most[client] = top
    return most


async def test_b_and_r_hold_for_every_stream(
        tmp_path: Path, sftp_server_bin: str, wire: Wire) -> None:
    """``-B 65536 -R 4`` at -n 4: each stream's READs and WRITEs are at
    most 64 KiB, and at most 4 of them are in flight on a stream."""
    rig = await ready(await make_rig(tmp_path, sftp_server_bin, STREAMS,
                                     buffer_size=65536, max_requests=4))
    try:
        data = payload(SIZE, seed=31)
        (rig.remote / "f").write_bytes(data)
        assert await rig.get("f", "down")
        assert await rig.put("down", "up")
        assert (rig.remote / "up").read_bytes() == data
    finally:
        await rig.transport.close()
    for ptype in (FXP_READ, FXP_WRITE):
        most = most_in_flight(wire, ptype)
        assert len(most) >= 2               # several streams worked
        assert max(most.values()) == 4      # the limit, reached
        assert max(s.length for s in wire.of(ptype)) == 65536


async def test_small_blocks_keep_more_requests_in_flight(
        tmp_path: Path, sftp_server_bin: str, wire: Wire) -> None:
    """32 KiB blocks (``-B``, or a server without limits) and no ``-R``:
    a pool stream keeps about 16 MiB requested, not sftp's 64 blocks."""
    rig = await ready(await make_rig(tmp_path, sftp_server_bin, STREAMS,
                                     buffer_size=32768))
    try:
        assert rig.engine.max_requests == 64        # sftp's, for -n 1
        assert rig.engine.pool is not None
        assert rig.engine.pool.requests == 64 * 261120 // 32768
        rig.engine.ctx.chunk = 8 * MIB
        data = payload(4 * 8 * MIB, seed=32)
        (rig.remote / "f").write_bytes(data)
        assert await rig.get("f", "down")
        assert (rig.local / "down").read_bytes() == data
    finally:
        await rig.transport.close()
    assert max(most_in_flight(wire, FXP_READ).values()) > 64


def most_files_moving(wire: Wire, ptype: int) -> int:
    """The most files one client had *ptype* requests (READ or WRITE)
    unanswered for at once."""
    top = 0
    for client in {s.client for s in wire.of(ptype)}:
        mine = wire.of(ptype, None, client)
        for t in sorted({s.sent for s in mine}):
            moving = {s.name for s in mine
                      if s.sent <= t < (s.replied or wire.clock)}
            top = max(top, len(moving))
    return top


@pytest.mark.parametrize("upload", [False, True])
async def test_several_small_files_in_flight_per_stream(
        prig: PRig, wire: Wire, upload: bool) -> None:
    """A tree of small files at -n 4: a stream copies several files at
    once, not one after the other."""
    tree = (prig.local if upload else prig.remote) / "t"
    tree.mkdir()
    for i in range(40):
        (tree / f"f{i}").write_bytes(payload(20_000 + i, i))
    prig.engine.ctx.share_min = 4 * MIB         # every file whole
    if upload:
        assert await within(prig.engine.upload_dir(
            "t", str(prig.remote / "t"), preserve=False, resume=False,
            fsync=False))
        copy = prig.remote / "t"
    else:
        assert await within(prig.engine.download_dir(
            str(tree), "t", None, preserve=False, resume=False,
            fsync=False))
        copy = prig.local / "t"
    assert sorted(p.read_bytes() for p in copy.iterdir()) == sorted(
        p.read_bytes() for p in tree.iterdir())
    assert most_files_moving(wire, FXP_WRITE if upload else FXP_READ) >= 2


async def test_a_stopped_replacement_closes_its_write_check_and_reput_checks(
        prig: PRig, wire: Wire) -> None:
    """A chunked put over an existing file is stopped: the OPEN that
    checks whether the target may be written is closed with the rest.
    The reput that finishes it checks again, and renames nothing over a
    target the server refuses to open for writing."""
    data = payload(SIZE, seed=41)
    (prig.local / "up").write_bytes(data)
    target = prig.remote / "f"
    target.write_bytes(b"old")
    flag = stop_after(prig, 3 * CHUNK)
    assert not await prig.put("up", "f")
    prig.seen.on_advance = None
    await settle(prig)
    assert wire.open_handles() == []
    assert len(leftovers(prig.remote)) == 1         # kept for reput
    name = str(target).encode()
    wire.fault = lambda s: FX_PERMISSION_DENIED if (
        s.ptype == FXP_OPEN and s.name == name
        and s.flags == OPEN_WRITE) else None
    flag["stop"] = False
    assert not await prig.put("up", "f", resume=True)
    assert prig.messages() == (
        f'dest open "{target}": Permission denied\r\n')
    assert target.read_bytes() == b"old"
    assert leftovers(prig.remote) == []
    await settle(prig)
    assert wire.open_handles() == []


async def test_put_r_into_directories_it_made_looks_at_no_target(
        prig: PRig, wire: Wire) -> None:
    """``put -r`` into a directory its MKDIR made sends no LSTAT of each
    file's target before the temporary's OPEN (nothing can be there);
    into directories that were there, every target is looked at, and an
    existing file keeps its mode, as sftp's OPEN in place keeps it."""
    tree = prig.local / "t"
    (tree / "sub").mkdir(parents=True)
    for i in range(3):
        (tree / f"f{i}").write_bytes(payload(100 + i, i))
        (tree / "sub" / f"g{i}").write_bytes(payload(200 + i, i))
    prig.engine.ctx.share_min = 4 * MIB         # every file whole
    copy = prig.remote / "t"

    async def put_r() -> None:
        assert await within(prig.engine.upload_dir(
            "t", str(copy), preserve=False, resume=False, fsync=False))
        for name in ("f0", "f1", "f2", "sub/g0", "sub/g1", "sub/g2"):
            assert (copy / name).read_bytes() == (tree / name).read_bytes()
        assert leftovers(copy, copy / "sub") == []

    await put_r()
    assert wire.of(FXP_LSTAT) == []
    (copy / "f0").chmod(0o600)
    await put_r()
    looked = sorted(os.path.relpath(s.name.decode(), copy)
                    for s in wire.of(FXP_LSTAT))
    assert looked == ["f0", "f1", "f2", "sub/g0", "sub/g1", "sub/g2"]
    assert (copy / "f0").stat().st_mode & 0o777 == 0o600
