"""The transfer engine: the one object the shell's transfer commands use.

One :class:`TransferEngine` serves a shell session.  A command opens
:meth:`TransferEngine.command` and hands the
:class:`~psftp_shell.engine.transfer_batch.Batch` its files and trees in
sftp's order.  At ``-n 1`` every copy runs on the control client, request for
request as OpenSSH 9.2's ``sftp-client.c``, except that a new copy goes to a
temporary renamed over the target once complete, and that the files of a
multi-file command are in flight :data:`CONTROL_LANES` at a time (their
messages still in sftp's order).  With ``-n N`` the copies run
on N streams opened on first use (:mod:`psftp_shell.engine.pool`): files spread
over the streams, big files in chunks over all of them
(:mod:`psftp_shell.engine.job_board`), and the output stays sftp's, byte for
byte.

The engine prints through :class:`~psftp_shell.core.output.Output` and
reports progress to a :class:`~psftp_shell.core.observer.TransferObserver`;
it imports neither rich nor prompt_toolkit.

Where things are: :mod:`~psftp_shell.engine.transfer_batch` (one command's
files, in order), :mod:`~psftp_shell.engine.trees` (``-r`` walks),
:mod:`~psftp_shell.engine.job_board` (jobs spread over streams),
:mod:`~psftp_shell.engine.getjob` / :mod:`~psftp_shell.engine.putjob` (one
file),
:mod:`~psftp_shell.filecopy.single_download`,
:mod:`~psftp_shell.filecopy.single_upload` and
:mod:`~psftp_shell.filecopy.request_pipeline` (sftp's own single-stream copy),
:mod:`~psftp_shell.engine.chunked_file`,
:mod:`~psftp_shell.engine.chunk_pipeline`,
:mod:`~psftp_shell.engine.early_opens`,
:mod:`~psftp_shell.engine.checkpoints`,
:mod:`~psftp_shell.engine.source_changes` and
:mod:`~psftp_shell.filecopy.chunk_ranges` (chunked copies),
:mod:`~psftp_shell.engine.get_chunks`,
:mod:`~psftp_shell.engine.put_chunks` and
:mod:`~psftp_shell.engine.put_finish` (a get's and a put's in chunks),
:mod:`~psftp_shell.filecopy.localdest` /
:mod:`~psftp_shell.filecopy.remotedest` (temporaries),
:mod:`~psftp_shell.filecopy.journal` (resume),
:mod:`~psftp_shell.engine.pool` (streams),
:mod:`~psftp_shell.core.ordered_output` (output order),
:mod:`~psftp_shell.filecopy.ratelimit` (``-l``) and
:mod:`~psftp_shell.filecopy.window` (download windows).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from psftp_shell.core.errors import FatalError
from psftp_shell.core.observer import (
    TransferJob,
    TransferObserver,
    report_links,
)
from psftp_shell.core.ordered_output import Sequencer
from psftp_shell.core.output import Output
from psftp_shell.engine.job_board import Board
from psftp_shell.engine.pool import Opener, Stream, StreamPool
from psftp_shell.engine.stream_watchdog import watch
from psftp_shell.engine.transfer_batch import Batch
from psftp_shell.filecopy.copy_context import (
    DEFAULT_BUFFER,
    DEFAULT_REQUESTS,
    MAX_BUFFER,
    TEMP_MARK,
    CopyContext,
    Flags,
    RemoteExec,
    TransferFailed,
)
from psftp_shell.filecopy.ratelimit import RateLimiter, kbps_to_bytes
from psftp_shell.filecopy.window import WindowTuner
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    ConnectionLost,
    Limits,
    SFTPClient,
    StatusError,
)

__all__ = ["DEFAULT_BUFFER", "MAX_BUFFER", "TEMP_MARK", "TransferEngine",
           "TransferFailed", "TransferJob"]


def site_of(transport: object | None) -> str:
    """A name for the server, for the keys of upload journals."""
    argv = getattr(transport, "argv", None)
    if isinstance(argv, list):
        return "-D " + " ".join(str(a) for a in argv)
    target = getattr(getattr(transport, "connector", None), "target", None)
    if target is not None:
        user = getattr(target, "user", None) or ""
        host = getattr(target, "host", "")
        port = getattr(target, "port", None) or 22
        return f"{user}@{host}:{port}"
    return ""


IN_FLIGHT = DEFAULT_REQUESTS * MAX_BUFFER
"""The bytes a pool stream keeps requested: sftp's 64 requests of the
largest block (about 16 MiB)."""


CONTROL_LANES = 8
"""Files in flight at ``-n 1``, all on the control connection: each
waits for its replies while the others' requests are on the wire, as
``-n N`` spreads them over streams; their messages still come out in
sftp's order."""


def stream_requests(requests: int, block: int) -> int:
    """Requests in flight for a pool stream moving *block*-byte blocks.

    sftp's *requests* when ``-R`` chose them or the server capped them;
    otherwise enough to keep :data:`IN_FLIGHT` bytes requested, so that
    a server offering small blocks (or no limits: sftp's 32 KiB) does
    not leave a stream's grown window empty.
    """
    if requests < DEFAULT_REQUESTS:
        return requests
    return max(requests, min(1024, -(-IN_FLIGHT // max(block, 1))))


class TransferEngine:
    """Copies files and trees for one shell session.

    :param client: the control connection's client
    :param out: where sftp's messages go
    :param transport: opens the extra streams (``-n`` > 1)
    :param streams: ``-n``, the number of streams to copy on
    :param channels: streams per SSH connection
    :param limit_kbps: ``-l``, for all streams together
    :param pool: streams already opening
        (:func:`~psftp_shell.engine.pool.open_early`), instead of a pool made
        on first use
    :param verify: ``-X verify=``: ``size``, ``hash`` or ``none``
    :param spread: streams reach several addresses of the host name
        (``-X addresses=all``, :mod:`psftp_shell.ssh.address_spread`)
    :param remote_exec: runs a command on the server, for
        ``-X verify-exec=yes``: hashes may then be computed there (the
        front end makes it for SSH transports,
        :func:`psftp_shell.ssh.remote_exec.exec_runner`)

    Set :attr:`observer` for progress and :attr:`is_interrupted` to a
    callable that turns true on Ctrl-C: no new requests are sent, the
    outstanding ones drain and the copy fails without a message.  A
    lost control connection stops the copies the same way, and the
    command then raises ``ConnectionLost``: the session ends as sftp's.
    """

    def __init__(self, client: SFTPClient, out: Output, *,
                 read_size: int = DEFAULT_BUFFER,
                 write_size: int = DEFAULT_BUFFER,
                 max_requests: int = DEFAULT_REQUESTS,
                 stream_requests: int | None = None,
                 local_cwd: str | None = None,
                 transport: Opener | None = None, streams: int = 1,
                 channels: int = 1, limit_kbps: int | None = None,
                 pool: StreamPool | None = None, verify: str = "size",
                 remote_exec: RemoteExec | None = None,
                 spread: bool = False) -> None:
        self.client = client
        self.out = out
        self.ctx = CopyContext(read_size=read_size, write_size=write_size,
                               max_requests=max_requests,
                               site=site_of(transport), verify=verify,
                               remote_exec=remote_exec, spread=spread)
        if local_cwd is not None:
            self.ctx.local_cwd = local_cwd
        if limit_kbps:
            self.ctx.limiter = RateLimiter(kbps_to_bytes(limit_kbps))
        self._interrupted: Callable[[], bool] = self.ctx.is_interrupted
        self.ctx.is_interrupted = self._must_stop
        self.pool = pool
        per_stream = stream_requests or max_requests
        if pool is not None:
            pool.set_requests(per_stream)
        elif transport is not None and streams > 1:
            self.pool = StreamPool(transport, streams, out,
                                   requests=per_stream, channels=channels)
        setter = getattr(transport, "set_window", None)
        if setter is not None:
            self.ctx.tuner = WindowTuner(setter, streams)

    # ---- the settings, kept in the copy context

    @property
    def read_size(self) -> int:
        """Bytes per READ request."""
        return self.ctx.read_size

    @read_size.setter
    def read_size(self, value: int) -> None:
        self.ctx.read_size = value

    @property
    def write_size(self) -> int:
        """Bytes per WRITE request."""
        return self.ctx.write_size

    @write_size.setter
    def write_size(self, value: int) -> None:
        self.ctx.write_size = value

    @property
    def max_requests(self) -> int:
        """Requests in flight per stream."""
        return self.ctx.max_requests

    @max_requests.setter
    def max_requests(self, value: int) -> None:
        self.ctx.max_requests = value

    @property
    def local_cwd(self) -> str:
        """What relative local paths are relative to."""
        return self.ctx.local_cwd

    @local_cwd.setter
    def local_cwd(self, value: str) -> None:
        self.ctx.local_cwd = value

    @property
    def observer(self) -> TransferObserver:
        """Who is told about progress."""
        return self.ctx.observer

    @observer.setter
    def observer(self, value: TransferObserver) -> None:
        self.ctx.observer = value

    @property
    def is_interrupted(self) -> Callable[[], bool]:
        """Turns true when the user asks the transfer to stop."""
        return self._interrupted

    @is_interrupted.setter
    def is_interrupted(self, value: Callable[[], bool]) -> None:
        self._interrupted = value

    def _must_stop(self) -> bool:
        """Copies stop on Ctrl-C, or when the control connection is gone.
        """
        return self._interrupted() or self.client.closed

    async def close(self) -> None:
        """Stop any stream still being opened; the transport closes them."""
        if self.pool is not None:
            await self.pool.close()

    @classmethod
    async def create(cls, client: SFTPClient, out: Output, *,
                     buffer_size: int | None = None,
                     max_requests: int | None = None,
                     limits: Awaitable[Limits] | None = None,
                     **options: Any) -> TransferEngine:
        """Size blocks and requests as sftp's ``do_init`` does.

        *buffer_size* and *max_requests* are ``-B`` and ``-R``; without
        them the server's ``limits@openssh.com`` decides (a limit of 0,
        "none", gives the largest block rather than sftp's 64 bytes); its
        open-handles count is no request depth (OpenSSH 10.3).
        *limits* is that request if it was already sent.  *options* go
        to the constructor (``transport``, ``streams``...).
        """
        read = write = buffer_size or DEFAULT_BUFFER
        requests = max_requests or DEFAULT_REQUESTS
        if client.has_extension("limits@openssh.com"):
            try:
                found = await (limits if limits is not None
                               else client.limits())
            except StatusError:
                raise FatalError("do_init: limits failed") from None
            if not buffer_size:
                read = max(min(found.max_read_len or MAX_BUFFER,
                               MAX_BUFFER), 64)
                write = max(min(found.max_write_len or MAX_BUFFER,
                                MAX_BUFFER), 64)
        options.setdefault("stream_requests", requests if max_requests
                           else stream_requests(requests, min(read, write)))
        return cls(client, out, read_size=read, write_size=write,
                   max_requests=requests, **options)

    # ---- commands

    def _control(self) -> Stream:
        return Stream.make(0, self.client, self.ctx.max_requests,
                           control=True)

    def _control_board(self) -> Board:
        """The control connection alone carries the command's files,
        :data:`CONTROL_LANES` at a time, never a file in chunks (sftp's
        meter draws them in their order: see :attr:`TransferJob.in_turn`).
        """
        board = Board(self.ctx, [], parallel=False, concurrent=True,
                      lanes=CONTROL_LANES)
        board.add_stream(self._control())
        return board

    async def _board(self) -> Board:
        """The board for one command: the pool's streams, or control.

        The command starts as soon as one pool stream is open, or on
        the control connection if none has opened within the pool's
        first wait; the others join it as they open.
        """
        pool = self.pool
        if pool is None:
            return self._control_board()
        if not await pool.first():
            if not pool.opening:    # none could be opened
                return self._control_board()
            # none yet: start on the control; the streams join it
            board = Board(self.ctx, [], parallel=True, planned=pool.size,
                          on_lost=pool.lost)
            board.add_stream(self._control())
        else:
            board = Board(self.ctx, [], parallel=True, planned=pool.size,
                          fallback=self._control, on_lost=pool.lost)
        pool.subscribe(board.add_stream)
        for stream in pool.live():
            board.add_stream(stream)
        return board

    @contextlib.asynccontextmanager
    async def command(self) -> AsyncIterator[Batch]:
        """One transfer command: hand the batch its files, then finish.

        Opens the pool's streams the first time they are needed.  If the
        body raises, the copies still running are stopped.  Once the
        command is stopping, silent streams are given up
        (:mod:`psftp_shell.engine.stream_watchdog`).
        """
        board = await self._board()
        batch = Batch(self.ctx, self.client, board, Sequencer(self.out))
        self.ctx.observer.command_started(streams=board.planned)
        watcher = asyncio.ensure_future(
            watch(lambda: board.streams, self._must_stop))
        try:
            yield batch
        except BaseException:
            await batch.abort()
            raise
        finally:
            watcher.cancel()
            if self.pool is not None:
                self.pool.unsubscribe(board.add_stream)
            report_links(self.ctx.observer,
                         {s.index: s.connection for s in board.streams})
            self.ctx.observer.command_finished()
        if self.client.closed:      # the streams may live, the session not
            raise ConnectionLost("Connection closed")

    # ---- one call, one copy (a command of its own)

    async def download(self, remote_path: str, local_path: str,
                       attrs: Attrs | None, *, preserve: bool,
                       resume: bool, fsync: bool) -> bool:
        """Copy one remote file; False after printing sftp's errors."""
        async with self.command() as batch:
            await batch.download(remote_path, local_path, attrs,
                                 Flags(preserve, resume, fsync))
            return await batch.finish()

    async def upload(self, local_path: str, remote_path: str, *,
                     preserve: bool, resume: bool, fsync: bool) -> bool:
        """Copy one local file; False after printing sftp's errors."""
        async with self.command() as batch:
            await batch.upload(local_path, remote_path,
                               Flags(preserve, resume, fsync))
            return await batch.finish()

    async def download_dir(self, remote_path: str, local_path: str,
                           attrs: Attrs | None, *, preserve: bool,
                           resume: bool, fsync: bool) -> bool:
        """Copy a remote tree (sftp's ``download_dir``)."""
        async with self.command() as batch:
            await batch.download_dir(remote_path, local_path, attrs,
                                     Flags(preserve, resume, fsync))
            return await batch.finish()

    async def upload_dir(self, local_path: str, remote_path: str, *,
                         preserve: bool, resume: bool, fsync: bool) -> bool:
        """Copy a local tree (sftp's ``upload_dir``)."""
        async with self.command() as batch:
            await batch.upload_dir(local_path, remote_path,
                                   Flags(preserve, resume, fsync))
            return await batch.finish()
