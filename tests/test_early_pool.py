"""``-n``'s streams open alongside the control connection for scripts
that transfer, and on first use otherwise."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from psftp_shell.core.output import Output
from psftp_shell.frontend import cli
from psftp_shell.frontend.batch_loop import transfers_ahead
from psftp_shell.frontend.options import parse_args
from psftp_shell.sftp.client import SFTPClient
from psftp_shell.shell.commands import is_transfer
from psftp_shell.ssh.transport import Ahead, PipeTransport


@pytest.mark.parametrize("line, expected", [
    ("get a b", True), ("  -reget a", True), ("@-mput *.c", True),
    ("PUT x", True), ("reput x", True), ("ls", False), ("", False),
    ("getx a", False), ("# get a", False), ("!get a", False),
])
def test_is_transfer(line: str, expected: bool) -> None:
    assert is_transfer(line) is expected


def test_reading_ahead_keeps_the_position(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_bytes(b"pwd\nls\n-get big\n")
    with open(script, "rb") as source:
        source.readline()
        assert transfers_ahead(source)
        assert source.readline() == b"ls\n"
    script.write_bytes(b"pwd\nls\n")
    with open(script, "rb") as source:
        assert not transfers_ahead(source)


def test_pipes_are_not_read_ahead() -> None:
    read, write = os.pipe()
    os.write(write, b"get a\n")
    os.close(write)
    with os.fdopen(read, "rb") as source:
        assert not transfers_ahead(source)
        assert source.readline() == b"get a\n"
    assert not transfers_ahead(io.BytesIO(b"get a\n"))


class GatedTransport(PipeTransport):
    """sftp-server pipes whose first (control) client waits for a gate."""

    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self.gate = asyncio.Event()
        self.calls = 0
        self.called = asyncio.Event()

    async def open_client(self, ahead: Ahead | None = None) -> SFTPClient:
        self.calls += 1
        self.called.set()
        if self.calls == 1:
            await self.gate.wait()
        return await super().open_client(ahead)


async def _calls_while_control_waits(tmp_path: Path, server: str,
                                     script: bytes,
                                     monkeypatch: pytest.MonkeyPatch,
                                     expect: int) -> tuple[int, int]:
    """Open calls seen while the control client is held, and in all.

    The control is held a second (calls that should not come have the
    time to), and up to ten while fewer than *expect* calls came.
    """
    path = tmp_path / "script"
    path.write_bytes(script)
    opts = parse_args(["-D", server, "-n", "4", "-b", str(path)],
                      "psftp-shell")
    transport = GatedTransport([server])
    monkeypatch.setattr(cli, "build_transport", lambda opts: transport)
    settings = cli._make_settings(opts, 4)
    out = Output(io.BytesIO(), io.BytesIO())
    with open(path, "rb") as source:
        run = asyncio.ensure_future(
            cli.run_session(opts, out, settings, source))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        for _ in range(50):
            await asyncio.sleep(0.02)
        while transport.calls < expect and loop.time() < deadline:
            await asyncio.sleep(0.02)
        held = transport.calls
        transport.gate.set()
        status = await run
    assert status == 0
    return held, transport.calls


async def test_streams_log_in_with_the_control_for_a_transfer(
        tmp_path: Path, sftp_server_bin: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src").write_bytes(b"x" * 1000)
    script = f"pwd\nget {tmp_path}/src {tmp_path}/dst\n".encode()
    held, total = await _calls_while_control_waits(
        tmp_path, sftp_server_bin, script, monkeypatch, expect=1 + 4)
    assert held == 1 + 4
    assert total == 1 + 4
    assert (tmp_path / "dst").read_bytes() == b"x" * 1000


async def test_no_streams_for_a_script_without_transfers(
        tmp_path: Path, sftp_server_bin: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    held, total = await _calls_while_control_waits(
        tmp_path, sftp_server_bin, b"pwd\nls\n", monkeypatch, expect=1)
    assert (held, total) == (1, 1)


class _Resolved:
    def __init__(self, batch: bool) -> None:
        self.batch = batch


async def _started_with_the_first(*, overlap: bool, batch: bool) -> int:
    """How many of three connects log in while the first one does."""
    from psftp_shell.ssh.connect import Connector, SSHTarget
    from psftp_shell.ssh.prompter import BatchPrompter
    connector = Connector(SSHTarget(host="127.0.0.1", config_file="none"),
                          BatchPrompter())
    connector.overlap = overlap
    started = 0
    first_done = False
    during_first = 0

    async def login(**_: object) -> object:
        nonlocal started, first_done, during_first
        connector.resolved = _Resolved(batch)   # type: ignore[assignment]
        started += 1
        mine = started
        if not first_done:
            during_first += 1
        await asyncio.sleep(0.05)
        if mine == 1:
            first_done = True
        return object()

    connector._connect = login  # type: ignore[method-assign,assignment]
    try:
        await asyncio.gather(*(connector.connect() for _ in range(3)))
    finally:
        connector.close()
    assert started == 3
    return during_first


async def test_connector_overlaps_logins_only_when_nothing_is_asked(
        ) -> None:
    assert await _started_with_the_first(overlap=True, batch=True) == 3
    assert await _started_with_the_first(overlap=True, batch=False) == 1
    assert await _started_with_the_first(overlap=False, batch=True) == 1
