"""The pipe transports: -D sftp_server_command and -S program."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.ssh.pipe_io import PipeReader
from tests.twins import psftp, sftp


def wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """An ssh stand-in for -S that logs each start, then runs ssh."""
    log = tmp_path / "starts.log"
    script = tmp_path / "myssh"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec ssh "$@"\n')
    script.chmod(0o755)
    return script, log


def test_ssh_program_runs_sftp_sessions_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    script, log = wrapper(tmp_path)
    (sshd.root / "s.txt").write_text("over -S\n")
    args = ["-S", str(script), "-F", str(sshd.ssh_config), "-b", "-",
            HOST_ALIAS]
    batch = b"pwd\nls -l s.txt\nget s.txt got.txt\n"
    theirs = sftp(sftp_bin, args, stdin=batch, cwd=tmp_path)
    (tmp_path / "got.txt").unlink()
    ours = psftp(args, stdin=batch, cwd=tmp_path)
    assert ours == theirs
    assert (tmp_path / "got.txt").read_text() == "over -S\n"
    starts = log.read_text().splitlines()
    assert len(starts) == 2 and starts[0] == starts[1]
    assert starts[0].startswith("-oForwardX11 no -oPermitLocalCommand no")


@pytest.mark.parametrize("args", [
    ["-b", "-", "-S", "/bin/false", "host"],
    ["-b", "-", "-D", "/bin/true"],
])
def test_dead_transports_end_like_sftp(args: list[str], sftp_bin: str
                                       ) -> None:
    ours = psftp(args, stdin=b"pwd\n")
    assert ours.status == 255
    assert ours.stderr == b"Connection closed\r\n"
    # sftp prints the same, unless it loses a race between its child's
    # exit and its own first write; then it dies of SIGPIPE instead.
    for _ in range(30):
        theirs = sftp(sftp_bin, args, stdin=b"pwd\n")
        if theirs.status == 255:
            assert ours == theirs
            return
    pytest.fail("sftp never got past its SIGPIPE race")


@pytest.mark.parametrize("option", ["-S", "-D"])
def test_missing_transport_program(option: str) -> None:
    # sftp prints the same, unless it loses the race between its child's
    # exec failure and its own first write (then it dies of SIGPIPE).
    args = ["-b", "-", option, "/nonexistent/prog"] + (
        ["host"] if option == "-S" else [])
    result = psftp(args, stdin=b"pwd\n")
    assert result.status == 255
    assert result.stderr == (b"exec: /nonexistent/prog: No such file or "
                             b"directory\nConnection closed\r\n")


def test_garbage_from_the_transport_is_fatal_without_traceback(
        tmp_path: Path) -> None:
    server = tmp_path / "chatty"
    server.write_text("#!/bin/sh\necho 'Welcome to my shell!'\ncat\n")
    server.chmod(0o755)
    result = psftp(["-b", "-", "-D", str(server)], stdin=b"pwd\n")
    assert result.status == 255
    assert b"Traceback" not in result.stderr
    assert result.stderr.startswith(b"Received message too long ")
    assert b"Ensure the remote shell produces no output" in result.stderr


def test_direct_server_gets_our_cwd(tmp_path: Path,
                                    sftp_server_bin: str) -> None:
    result = psftp(["-D", sftp_server_bin, "-b", "-"], stdin=b"pwd\n",
                   cwd=tmp_path)
    assert result.status == 0
    assert result.stdout.splitlines()[-1] == (
        b"Remote working directory: " + os.fsencode(tmp_path))


def test_ssh_program_with_four_streams_runs_four_processes(
        sshd: PrivateSSHD, tmp_path: Path) -> None:
    script, log = wrapper(tmp_path)
    data = os.urandom(24 << 20)
    (sshd.root / "big4.bin").write_bytes(data)
    try:
        args = ["-S", str(script), "-n", "4", "-F", str(sshd.ssh_config),
                "-b", "-", HOST_ALIAS]
        result = psftp(args, stdin=b"get big4.bin got.bin\n", cwd=tmp_path)
    finally:
        (sshd.root / "big4.bin").unlink()
    assert result.status == 0, result.stderr
    assert (tmp_path / "got.bin").read_bytes() == data
    starts = log.read_text().splitlines()
    # the control connection, then the four transfer streams (the shell's
    # control connection carries no data, so prompts never queue behind it)
    assert len(starts) == 1 + 4
    assert len(set(starts)) == 1    # every one: sftp's own ssh argv


def _trickle(fd: int, data: bytes, piece: int) -> None:
    """Write *data* to *fd* in pieces of *piece* bytes (in a thread:
    the writes block while the pipe is full), then close it."""
    for pos in range(0, len(data), piece):
        os.write(fd, data[pos:pos + piece])
    os.close(fd)


@pytest.mark.parametrize("piece", [1, 7, 13, 4096, 1 << 16])
async def test_pipe_reader_reads_pieces_and_data_whole(piece: int) -> None:
    """However the bytes arrive, readexactly and read_into get them in
    order; read_into's data lands in the caller's buffer; EOF inside a
    read is IncompleteReadError."""
    first, data, tail = b"head", os.urandom(300_000), b"x" * 20
    r, w = os.pipe()
    reader = PipeReader(r)
    writer = asyncio.ensure_future(asyncio.to_thread(
        _trickle, w, first + data + tail + b"yz", piece))
    try:
        assert await reader.readexactly(4) == first
        buf = bytearray(len(data))
        await reader.read_into(buf)
        assert buf == data
        assert await reader.readexactly(20) == tail
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.read_into(bytearray(5))
    finally:
        await writer
        reader.close()


async def test_a_read_cancelled_as_the_pipe_wakes_up_is_quiet() -> None:
    """The loop may report the pipe readable after the read waiting on
    it was cancelled (a session ending on a broken reply): that must not
    print 'Exception in callback ... invalid state' on stderr."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        for yields in range(4):
            r, w = os.pipe()
            reader = PipeReader(r)
            task = asyncio.ensure_future(reader.readexactly(2))
            await asyncio.sleep(0)          # it waits on the empty pipe
            os.write(w, b"x")
            for _ in range(yields):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.01)       # any late wake-up runs now
            reader.close()
            os.close(w)
    finally:
        loop.set_exception_handler(None)
    assert errors == []
