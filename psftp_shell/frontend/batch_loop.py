"""The command loop for input that is not an interactive terminal.

sftp reads such input (``-b file``, ``-b -`` or piped stdin) with
``fgets`` and echoes every line as ``sftp> line``.  One deliberate
difference: sftp silently splits a line longer than 2047 bytes into
several commands; psftp-shell reports ``Error: input line too long`` and
counts the line as a failed command.  A line of exactly 2047 bytes is
run as sftp runs it: its newline no longer fits sftp's buffer and is
read on its own, as an empty command (echoed ``sftp> ``).
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
from typing import BinaryIO

from psftp_shell.frontend.progress import observing
from psftp_shell.shell.command_line import FAILED, QUIT, run_line
from psftp_shell.shell.commands import is_transfer
from psftp_shell.shell.context import Shell

MAX_LINE = 2047     # what fits sftp's 2048-byte fgets buffer
PEEK_LIMIT = 1 << 20
"""How much of a batch file :func:`transfers_ahead` reads ahead."""


def decode_line(raw: bytes) -> str | None:
    """Turn one raw input line into a command line; None if too long.

    As with C strings, a NUL byte ends the line; the newline and anything
    after it are dropped.  Undecodable bytes survive as surrogates.  The
    length that counts is the raw one, NUL and all, as for ``fgets``.
    """
    raw = raw.split(b"\n", 1)[0]
    if len(raw) > MAX_LINE:
        return None
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def splits_newline(raw: bytes) -> bool:
    """Whether sftp reads this line's newline as a line of its own."""
    return len(raw) == MAX_LINE + 1 and raw.endswith(b"\n")


def transfers_ahead(source: BinaryIO) -> bool:
    """Whether *source*, a regular file, holds a get or put command.

    Reads ahead and puts the file's position back, so that ``-n``'s
    streams can open while the control connection logs in.  Pipes and
    terminals are not read ahead: False.
    """
    try:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return False
        position = source.tell()
        data = source.read(PEEK_LIMIT)
        source.seek(position)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return any(is_transfer(line.decode("utf-8", "surrogateescape"))
               for line in data.split(b"\n"))


async def run_lines(shell: Shell, source: BinaryIO, *, abort: bool) -> int:
    """Run every line of *source*; return 0, or -1 if a batch aborted."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            raw = await loop.run_in_executor(None, source.readline)
        except OSError:     # fgets() fails on a directory: that is EOF
            return 0
        if not raw:
            return 0
        line = decode_line(raw)
        if line is None:
            shell.out.notice("Error: input line too long")
            if abort:
                return -1
            continue
        shell.interrupted = False
        with observing(shell):
            result = await run_line(shell, line, echo=True, abort=abort)
        if result == 0 and splits_newline(raw):
            result = await run_line(shell, "", echo=True, abort=abort)
        if result == FAILED:
            return -1
        if result == QUIT:
            return 0
