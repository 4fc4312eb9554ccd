"""The command loop for input that is not an interactive terminal.

sftp reads such input (``-b file``, ``-b -`` or piped stdin) with
``fgets`` and echoes every line as ``sftp> line``.  One deliberate
difference: sftp silently splits a line longer than 2047 bytes into
several commands; psftp-shell reports ``Error: input line too long`` and
counts the line as a failed command.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from psftp_shell.commands import FAILED, QUIT, run_line
from psftp_shell.context import Shell
from psftp_shell.progress import observing

MAX_LINE = 2047     # what fits sftp's 2048-byte fgets buffer


def decode_line(raw: bytes) -> str | None:
    """Turn one raw input line into a command line; None if too long.

    As with C strings, a NUL byte ends the line; the newline and anything
    after it are dropped.  Undecodable bytes survive as surrogates.
    """
    raw = raw.split(b"\0", 1)[0].split(b"\n", 1)[0]
    if len(raw) > MAX_LINE:
        return None
    return raw.decode("utf-8", "surrogateescape")


async def run_lines(shell: Shell, source: BinaryIO, *, abort: bool) -> int:
    """Run every line of *source*; return 0, or -1 if a batch aborted."""
    loop = asyncio.get_running_loop()
    while True:
        raw = await loop.run_in_executor(None, source.readline)
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
        if result == FAILED:
            return -1
        if result == QUIT:
            return 0
