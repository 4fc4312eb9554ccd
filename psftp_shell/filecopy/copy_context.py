"""What every file copy shares: sizes, switches, the copy context.

:class:`CopyContext` is the state the copy code reads on every request
(block sizes, requests in flight, the observer, the interrupt flag, the
rate limiter); the engine owns one per session.  :class:`Flags` are the
switches of one command (``-p``, ``-a``, ``-f``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from psftp_shell.core.observer import (
    NullObserver,
    TransferJob,
    TransferObserver,
    report_kept,
)
from psftp_shell.core.paths import local_against
from psftp_shell.filecopy.ratelimit import RateLimiter
from psftp_shell.filecopy.window import WindowTuner

DEFAULT_BUFFER = 32768
"""sftp's block size when the server does not send its limits."""
MAX_BUFFER = 256 * 1024 - 1024
"""The largest block that fits sftp's 256 KiB packets (261120)."""
MIN_READ_SIZE = 512
DEFAULT_REQUESTS = 64
MAX_DIR_DEPTH = 64
SHARE_MIN = 4 << 20
"""Smaller files are copied whole by one stream, even with ``-n``."""
TEMP_MARK = ".psftp-"
"""Temporaries are named ``.<name>.psftp-<random>`` beside the target."""


RemoteExec = Callable[[str], Awaitable[bytes | None]]
"""Runs a command on the server: its output, or None if it failed."""


class TransferFailed(Exception):
    """A file copy failed; its message (if any) was already printed."""


PROCESS_CWD = "/proc/self/cwd"
"""Reaches the process's working directory even once it is removed."""


def process_cwd() -> str:
    """The directory relative local paths start from: ``getcwd``, or,
    when the directory the program was started in has been removed
    (``getcwd`` fails; sftp carries on, and only what needs that
    directory fails), a path that still reaches it where the system has
    one, else ``.``."""
    try:
        return os.getcwd()
    except OSError:
        return PROCESS_CWD if os.path.isdir(PROCESS_CWD) else "."


def _never() -> bool:
    return False


async def reported(observer: TransferObserver, job: TransferJob,
                   copy: Awaitable[bool]) -> bool:
    """Run *copy*, telling *observer* that *job* started and how it
    ended: no error, :class:`TransferFailed` for a False result, or the
    exception that stopped it."""
    observer.file_started(job)
    error: BaseException | None = TransferFailed()
    try:
        ok = await copy
        if ok:
            error = None
        return ok
    except BaseException as exc:
        error = exc
        raise
    finally:
        observer.file_finished(job, error)


def _quoted(word: str) -> str:
    """*word* as the shell's grammar reads it back (double quotes)."""
    if word and not any(c in word for c in ' \t"\'\\#'):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tell_kept(observer: TransferObserver, job: TransferJob, temp: str,
              nbytes: int) -> None:
    """Tell *observer* that *job*'s temporary was kept with *nbytes*,
    and which command finishes the copy."""
    verb = "reput" if job.upload else "reget"
    report_kept(observer, temp, nbytes, f"{verb} {_quoted(job.source)} "
                f"{_quoted(job.destination)}")


@dataclass(frozen=True, slots=True)
class Flags:
    """The switches of one transfer: ``-p``, ``-a`` and ``-f``.

    :param tree: the file is part of a ``-R`` upload; with ``-a`` a file
        already complete on the server is skipped and a missing one sent
        whole, where sftp fails both (a resumed tree download already
        behaves so)
    :param fresh: the file goes into a directory this copy has just
        made, so nothing is there to look at before its temporary is
        opened: no LSTAT of an upload's target, no look for a download's
        old file, link or journal
    """

    preserve: bool = False
    resume: bool = False
    fsync: bool = False
    tree: bool = False
    fresh: bool = False


@dataclass(eq=False)
class CopyContext:
    """Settings and hooks the copy code consults as it runs.

    :param local_cwd: what relative local paths are relative to (the
        shell never calls ``os.chdir``)
    :param site: names the server in upload journals' keys
    :param chunk: a fixed chunk size for parallel copies (tests), else
        :func:`psftp_shell.filecopy.chunk_ranges.chunk_size` decides
    :param share_min: files this big or bigger are cut into chunks
    :param tuner: grows the streams' download windows, if the transport
        can
    :param verify: ``-X verify=``: ``size``, ``hash`` or ``none``
        (:mod:`psftp_shell.filecopy.verify`)
    :param spread: streams may reach other addresses of the host
        (``-X addresses=all``): chunked downloads check each stream's
        view of the file
    :param remote_exec: runs a hashing command on the server, when
        ``-X verify-exec=yes`` allows it and the transport can
    """

    read_size: int = DEFAULT_BUFFER
    write_size: int = DEFAULT_BUFFER
    max_requests: int = DEFAULT_REQUESTS
    local_cwd: str = field(default_factory=process_cwd)
    observer: TransferObserver = field(default_factory=NullObserver)
    is_interrupted: Callable[[], bool] = _never
    limiter: RateLimiter | None = None
    site: str = ""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    chunk: int | None = None
    share_min: int = SHARE_MIN
    tuner: WindowTuner | None = None
    verify: str = "size"
    remote_exec: RemoteExec | None = None
    spread: bool = False
    cleanups: set[asyncio.Task[None]] = field(default_factory=set)

    def local(self, path: str) -> str:
        """*path* resolved against the shell's local cwd
        (:func:`~psftp_shell.core.paths.local_against`)."""
        return local_against(self.local_cwd, path)

    async def throttle(self, nbytes: int) -> None:
        """Wait for the ``-l`` limiter, if there is one."""
        if self.limiter is not None:
            await self.limiter.take(nbytes)

    def background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a cleanup that must outlive a cancelled copy."""
        task = asyncio.ensure_future(coro)
        self.cleanups.add(task)
        task.add_done_callback(self.cleanups.discard)
