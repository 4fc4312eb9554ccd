"""Ways to reach an SFTP server: SSH channels or a local process's pipes.

A transport opens SFTP clients; nothing above this module knows which kind
it has.  :class:`SSHTransport` opens asyncssh connections (the default),
:class:`PipeTransport` runs a program whose stdin and stdout carry SFTP
(``-D sftp_server_command``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from typing import TYPE_CHECKING, Protocol

from psftp_shell.errors import ConnectionClosed
from psftp_shell.protocol import ConnectionLost, SFTPClient

if TYPE_CHECKING:
    import asyncssh

    from psftp_shell.connect import Connector


class Transport(Protocol):
    """Something that can open SFTP clients to one server."""

    async def open_client(self) -> SFTPClient:
        """Open and start one more SFTP client."""
        ...

    async def close(self) -> None:
        """Close every client and connection this transport opened."""
        ...


class StdinWriter:
    """Adapt a subprocess's stdin to the protocol's ByteWriter."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def _ignore_sigint() -> None:
    """In the server's child process: Ctrl-C is for the shell only.

    sftp's transport child ignores SIGINT too, so that interrupting a
    command does not kill the connection.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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

    async def open_client(self) -> SFTPClient:
        """Start the program once more and initialise SFTP over it."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, preexec_fn=_ignore_sigint,
                umask=self.umask)
        except OSError as exc:
            raise ConnectionClosed(
                f"exec: {self.argv[0]}: {exc.strerror}\n") from None
        self.processes.append(proc)
        assert proc.stdout is not None and proc.stdin is not None
        client = SFTPClient(proc.stdout, StdinWriter(proc.stdin))
        self.clients.append(client)     # so that close() reaches it
        try:
            await client.start()
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
        self._writer_of: dict[int, object] = {}

    async def open_client(self) -> SFTPClient:
        """Connect (prompting at most once for secrets) and start SFTP."""
        conn = await self.connector.connect()
        self.connections.append(conn)
        return await self._start(conn)

    async def open_channel(self, client: SFTPClient) -> SFTPClient:
        """Start one more SFTP channel on *client*'s connection."""
        return await self._start(self._conn_of[id(client)])

    async def _start(self, conn: asyncssh.SSHClientConnection
                     ) -> SFTPClient:
        import asyncssh

        from psftp_shell.sshchannel import open_sftp_channel
        try:
            reader, writer = await open_sftp_channel(conn, self.subsystem)
        except (asyncssh.Error, OSError):
            raise ConnectionClosed(
                "subsystem request failed on channel 0\r\n") from None
        client = SFTPClient(reader, writer)
        self.clients.append(client)     # so that close() reaches it
        self._conn_of[id(client)] = conn
        self._writer_of[id(client)] = writer
        try:
            await client.start()
        except ConnectionLost:
            raise ConnectionClosed() from None
        return client

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

    async def close(self) -> None:
        """Close the clients and their connections."""
        for client in self.clients:
            await client.close()
        for conn in self.connections:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()
