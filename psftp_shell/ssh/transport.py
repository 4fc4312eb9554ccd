"""Ways to reach an SFTP server: SSH channels or a local process's pipes.

A transport opens SFTP clients; nothing above this module knows which kind
it has.  :class:`SSHTransport` opens asyncssh connections (the default),
:class:`PipeTransport` runs a program whose stdin and stdout carry SFTP
(``-D sftp_server_command``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from psftp_shell.core import child_processes as children
from psftp_shell.core.errors import ConnectionClosed
from psftp_shell.sftp.client import ConnectionLost, SFTPClient
from psftp_shell.sftp.request_core import retrieved
from psftp_shell.ssh import address_spread as spread
from psftp_shell.ssh import asyncssh_speedups as sshfast
from psftp_shell.ssh import fast_receive, fast_send
from psftp_shell.ssh.pipe_io import PipeReader, PipeWriter
from psftp_shell.ssh.turn_batcher import batch_writes

if TYPE_CHECKING:
    import asyncssh

    from psftp_shell.ssh.connect import Connector
    from psftp_shell.ssh.ssh_config import Resolved


Ahead = Callable[[SFTPClient, str], None]
"""May send requests right behind a new client's INIT (see
:meth:`~psftp_shell.sftp.request_core.SFTPCore.begin`); it is told the server's
SSH identification string ("" over pipes)."""


class Transport(Protocol):
    """Something that can open SFTP clients to one server."""

    async def open_client(self, ahead: Ahead | None = None) -> SFTPClient:
        """Open and start one more SFTP client; *ahead* is called once
        INIT is on its way."""
        ...

    async def close(self) -> None:
        """Close every client and connection this transport opened."""
        ...


async def _started(client: SFTPClient, ahead: Ahead | None,
                   server: str = "") -> None:
    """Start *client*, *ahead*'s requests right behind its INIT."""
    if ahead is not None:
        client.begin()
        ahead(client, server)
    await client.start()


PIPE_SIZE = 1 << 20
"""Bytes the kernel holds in each pipe to a ``-S``/``-D`` process."""


def _ignore_sigint() -> None:
    """In the server's child process: Ctrl-C is for the shell only.

    sftp's transport child ignores SIGINT too, so that interrupting a
    command does not kill the connection.  Its pipes (fds 0 and 1) also
    grow from 64 KiB to :data:`PIPE_SIZE` where the system allows (Linux):
    a 256 KiB DATA reply then crosses in one read, not four or more.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        for fd in (0, 1):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, setpipe, PIPE_SIZE)


def split_command(command: str) -> list[str]:
    """Split a ``-D`` command line with shell-like quoting."""
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


class PipeTransport:
    """Run a local program and speak SFTP over its stdin and stdout.

    :param argv: the program and its arguments
    """

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        # Every server process gets the umask the program started with,
        # even if `lumask` changed ours before a later stream started.
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.processes: list[asyncio.subprocess.Process] = []
        self.clients: list[SFTPClient] = []
        self.readers: list[PipeReader] = []
        self.writers: list[PipeWriter] = []

    async def open_client(self, ahead: Ahead | None = None) -> SFTPClient:
        """Start the program once more and initialise SFTP over it.

        Its pipes are read and written by :mod:`~psftp_shell.ssh.pipe_io`
        (DATA straight into buffers, WRITEs never copied), not asyncio's
        streams.
        """
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=in_r, stdout=out_w,
                preexec_fn=_ignore_sigint, umask=self.umask)
        except OSError as exc:
            os.close(out_r)
            os.close(in_w)
            raise ConnectionClosed(
                f"exec: {self.argv[0]}: {exc.strerror}\n") from None
        finally:
            os.close(out_w)
            os.close(in_r)
        self.processes.append(proc)
        children.started(proc.pid)
        reader = PipeReader(out_r)
        self.readers.append(reader)
        writer = PipeWriter(in_w)
        self.writers.append(writer)
        client = SFTPClient(reader, writer)
        self.clients.append(client)     # so that close() reaches it
        try:
            await _started(client, ahead)
        except ConnectionLost:
            raise ConnectionClosed() from None
        return client

    async def close(self) -> None:
        """Close the clients and wait for the programs to exit."""
        for client in self.clients:
            await client.close()
        for proc in self.processes:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            children.ended(proc.pid)
        for reader in self.readers:
            reader.close()
        for writer in self.writers:
            writer.abort()


LOGIN_LIMIT = 3
"""ConnectTimeouts a login may take in batch mode: asyncssh's keepalives
start only once logged in, and without ServerAliveInterval (which
bounds a silent login as ssh's does, :meth:`Attempt.connect
<psftp_shell.ssh.attempt.Attempt.connect>`) a server that goes silent
during the key exchange would otherwise be waited for for ever."""
LOGIN_DEFAULT = 10.0
"""ConnectTimeout's stand-in for :data:`LOGIN_LIMIT` when it is unset."""


def login_limit(resolved: Resolved) -> float:
    """How long a batch-mode login may take: :data:`LOGIN_LIMIT`
    ConnectTimeouts, and each further ConnectionAttempt's timeout and
    wait."""
    from psftp_shell.ssh.attempt import RETRY_WAIT  # (asyncssh: not for -S)
    timeout = resolved.connect_timeout or LOGIN_DEFAULT
    return LOGIN_LIMIT * timeout + \
        (resolved.connection_attempts - 1) * (timeout + RETRY_WAIT)


class SSHTransport:
    """Open SFTP clients on SSH connections made by a connector.

    By default each client gets a connection of its own: N streams are N
    TCP connections, each with its own SSH window and cipher state.
    :meth:`open_channel` adds an SFTP channel to an existing connection
    instead (``-X channels=N``), for servers that limit connections.
    """

    def __init__(self, connector: Connector, subsystem: str = "sftp"
                 ) -> None:
        self.connector = connector
        self.subsystem = subsystem
        self.connections: list[asyncssh.SSHClientConnection] = []
        self.clients: list[SFTPClient] = []
        self._conn_of: dict[int, asyncssh.SSHClientConnection] = {}
        self.spreader: spread.Spreader | None = None
        self._writer_of: dict[int, object] = {}

    async def open_client(self, ahead: Ahead | None = None) -> SFTPClient:
        """Connect (prompting at most once for secrets) and start SFTP.

        With a :attr:`spreader` (``-X addresses=all``) each connection
        starts with the next address of the host name, and one to an
        address that does not show the control connection's files is
        closed again (:mod:`psftp_shell.ssh.address_spread`).
        """
        spreader = self.spreader
        if spreader is None:
            conn = await self._connect()
            self.connections.append(conn)
            return await self._start(conn, ahead)
        choice = spreader.next_choice()
        token = spread.CHOICE.set(choice)
        try:
            conn = await self._connect()
        finally:
            spread.CHOICE.reset(token)
        self.connections.append(conn)
        client = await self._start(conn, ahead)
        peer = conn.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not await spreader.admit(client, address, choice.index == 0):
            await client.close()
            conn.close()
            raise ConnectionClosed(f"{address} does not show the same "
                                   "files as the first address")
        return client

    async def _connect(self) -> asyncssh.SSHClientConnection:
        """The connector's connection; in batch mode (nothing can be
        asked) one whose login takes longer than :data:`LOGIN_LIMIT`
        ConnectTimeouts fails as ssh's packet timeout does."""
        task = asyncio.ensure_future(self.connector.connect())
        task.add_done_callback(retrieved)   # (when we were cancelled)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                resolved = self.connector.resolved
                limit = None if resolved is None or not resolved.batch \
                    else login_limit(resolved)
                wait = 0.1 if limit is None \
                    else max(0.0, started + limit - loop.time())
                done, _ = await asyncio.wait([task], timeout=wait)
                if done:
                    return task.result()
                if limit is not None and loop.time() >= started + limit:
                    assert resolved is not None
                    raise ConnectionClosed(
                        f"Connection to {resolved.hostname} port "
                        f"{resolved.port} timed out\r\n")
        except BaseException:       # given up: no login may outlive that
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            if not task.cancelled() and task.exception() is None:
                task.result().close()   # it finished as we gave up
            raise

    async def open_channel(self, client: SFTPClient) -> SFTPClient:
        """Start one more SFTP channel on *client*'s connection."""
        return await self._start(self._conn_of[id(client)])

    async def _start(self, conn: asyncssh.SSHClientConnection,
                     ahead: Ahead | None = None) -> SFTPClient:
        import asyncssh

        from psftp_shell.ssh.channel import open_sftp_channel
        batch_writes(conn)
        if not fast_receive.install(conn):
            sshfast.split_reads(conn)
        sshfast.skip_ignores(conn)
        sshfast.quiet_packet_log()
        try:
            reader, writer = await open_sftp_channel(conn, self.subsystem)
        except (asyncssh.Error, OSError):
            raise ConnectionClosed(
                "subsystem request failed on channel 0\r\n") from None
        fast_send.lean_channel(writer.channel)
        client = SFTPClient(reader, writer)
        self.clients.append(client)     # so that close() reaches it
        self._conn_of[id(client)] = conn
        self._writer_of[id(client)] = writer
        try:
            await _started(client, ahead,
                           str(conn.get_extra_info("server_version", "")))
        except ConnectionLost:
            raise ConnectionClosed() from None
        return client

    async def discard(self, client: SFTPClient) -> None:
        """Close *client* and its connection, and forget both (a stream
        opened ahead of a transfer and not kept).

        The connection is waited for until it is gone (asyncssh aborts
        its socket: a moment), so that a login started next never meets
        its socket half closed (a fresh login right after two closed
        without waiting was once seen to stall).
        """
        await client.close()
        self._writer_of.pop(id(client), None)
        conn = self._conn_of.pop(id(client), None)
        if client in self.clients:
            self.clients.remove(client)
        if conn is not None:
            conn.close()
            if conn in self.connections:
                self.connections.remove(conn)
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    def login_patience(self) -> float | None:
        """ConnectTimeout, if the user set one: how long the pool waits
        for a stream before it starts a command on the control."""
        resolved = getattr(self.connector, "resolved", None)
        return getattr(resolved, "connect_timeout", None)

    def set_window(self, client: SFTPClient, nbytes: int) -> None:
        """Make *client*'s channel advertise an *nbytes* receive window.

        asyncssh has no public call for this: its channel tops the window
        up to ``_init_recv_window`` whenever half of it was used, so
        changing that value grows (or shrinks) the window from the next
        top-up on.  This is the one place psftp-shell touches it.
        """
        channel = getattr(self._writer_of.get(id(client)), "channel", None)
        if channel is not None and hasattr(channel, "_init_recv_window"):
            channel._init_recv_window = max(int(nbytes), 1 << 16)

    def get_window(self, client: SFTPClient) -> int | None:
        """The receive window *client*'s channel tops up to, if known."""
        channel = getattr(self._writer_of.get(id(client)), "channel", None)
        return getattr(channel, "_init_recv_window", None)

    def last_words(self, client: SFTPClient) -> str:
        """What ssh would print on why *client*'s connection ended."""
        conn = self._conn_of.get(id(client))
        return "" if conn is None else self.connector.last_words(conn)

    async def close(self) -> None:
        """Close the clients and their connections, and the logins held
        for streams that never came."""
        await self.connector.close_held()
        for client in self.clients:
            await client.close()
        for conn in self.connections:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
