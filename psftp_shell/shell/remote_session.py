"""The remote side of a shell session: one control client and its cwd.

:class:`RemoteSession` wraps the control connection's SFTP client with
what sftp's ``sftp-client.c`` adds around each request: the remote working
directory, the exact error messages, the ``Server sent suspect path``
check, and the cache of user and group names used by ``ls -l``.  Methods
that fail print sftp's message and raise :class:`CommandError` with an
empty message (already printed), unless they are asked to be quiet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from psftp_shell.core.errors import CommandError, FatalError
from psftp_shell.core.escape import handle_error
from psftp_shell.core.output import Output
from psftp_shell.core.paths import make_absolute
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import (
    Name,
    SFTPClient,
    StatusError,
)
from psftp_shell.sftp.directory import read_directory
from psftp_shell.shell import globbing


def _realpath_failed(path: str, exc: StatusError) -> str:
    """sftp's ``realpath %s: %s``, with the server's message if it sent
    one."""
    return f"realpath {path}: {exc.said}"


class RemoteGlobFS:
    """The remote file system as :mod:`psftp_shell.shell.globbing` sees it."""

    def __init__(self, session: RemoteSession) -> None:
        self.session = session

    async def scandir(self, path: str) -> list[tuple[str, Any]]:
        """List *path*; errors propagate to the glob's error callback."""
        names = await self.session.readdir(path or ".", report=False)
        return [(n.filename, n.attrs) for n in names]

    async def lstat(self, path: str) -> Any | None:
        """Return the attributes of *path* itself, or None."""
        try:
            return await self.session.client.lstat(path)
        except StatusError:
            return None

    async def stat(self, path: str) -> Any | None:
        """Return the attributes of what *path* points to, or None."""
        try:
            return await self.session.client.stat(path)
        except StatusError:
            return None

    def is_dir(self, st: Any) -> bool:
        """Return whether *st* describes a directory."""
        return isinstance(st, Attrs) and st.is_dir()

    def is_symlink(self, st: Any) -> bool:
        """Return whether *st* describes a symbolic link."""
        return isinstance(st, Attrs) and st.is_link()


class RemoteSession:
    """The control client, the remote cwd and sftp's request wrappers."""

    def __init__(self, client: SFTPClient, out: Output) -> None:
        self.client = client
        self.out = out
        self.cwd = ""
        self.startdir = ""
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    async def start(self, asked: Awaitable[str] | None = None) -> None:
        """Find the start directory, as sftp does with ``REALPATH "."``
        (*asked*: that request, already sent)."""
        try:
            self.cwd = await (asked if asked is not None
                              else self.client.realpath("."))
        except StatusError as exc:
            self.out.error(_realpath_failed(".", exc))
            raise FatalError("Need cwd") from exc
        self.startdir = self.cwd

    def absolute(self, path: str) -> str:
        """Make *path* absolute against the remote cwd (no normalising)."""
        return make_absolute(path, self.cwd)

    def fail(self, message: str) -> CommandError:
        """Print *message* as an error; return the exception to raise."""
        self.out.error(message)
        return CommandError("")

    async def realpath(self, path: str) -> str:
        """Canonicalise *path*; sftp prints the server's own message."""
        try:
            return await self.client.realpath(path)
        except StatusError as exc:
            raise self.fail(_realpath_failed(path, exc)) from None

    async def stat(self, path: str, *, follow: bool = True,
                   quiet: bool = False) -> Attrs:
        """STAT (or LSTAT) *path*, printing ``stat remote: ...`` on error."""
        try:
            if follow:
                return await self.client.stat(path)
            return await self.client.lstat(path)
        except StatusError as exc:
            if quiet:
                raise CommandError("") from None
            raise self.fail(f"stat remote: {exc.text}") from None

    async def is_dir(self, path: str) -> bool:
        """sftp's ``remote_is_dir``: a quiet STAT, False on any error."""
        try:
            return (await self.client.stat(path)).is_dir()
        except StatusError:
            return False

    async def readdir(self, path: str, *, report: bool = True,
                      interrupted: Callable[[], bool] | None = None
                      ) -> list[Name]:
        """Read a whole directory with :func:`read_directory`."""
        return await read_directory(self.client, self.out, path,
                                    report_open=report,
                                    interrupted=interrupted)

    async def glob(self, pattern: str, *, mark: bool = False,
                   nocheck: bool = False, nosort: bool = False,
                   brace: bool = False) -> list[tuple[str, Any]]:
        """Expand a remote glob pattern (already absolute and escaped)."""

        def on_error(path: str, exc: BaseException) -> None:
            if isinstance(exc, StatusError):
                self.out.error(
                    handle_error(f'remote readdir("{path}")', exc.text))
            elif not isinstance(exc, CommandError):   # printed already
                raise exc

        return await globbing.glob(
            pattern, RemoteGlobFS(self), mark=mark, nocheck=nocheck,
            nosort=nosort, brace=brace, on_error=on_error)

    async def lookup_names(self, attrs: list[Attrs]) -> None:
        """Fetch the user and group names of *attrs* not yet cached.

        Uses ``users-groups-by-id@openssh.com`` where the server offers
        it, one request per listing, as sftp does.
        """
        if not self.client.has_extension("users-groups-by-id@openssh.com"):
            return
        uids = sorted({a.uid or 0 for a in attrs} - self._users.keys())
        gids = sorted({a.gid or 0 for a in attrs} - self._groups.keys())
        if not uids and not gids:
            return
        try:
            users, groups = await self.client.users_groups_by_id(uids, gids)
        except StatusError as exc:
            self.out.error(
                f"users-groups-by-id {exc.said}")
            return
        for uid, name in zip(uids, users, strict=False):
            self._users[uid] = name or str(uid)
        for gid, name in zip(gids, groups, strict=False):
            self._groups[gid] = name or str(gid)

    def user_name(self, uid: int | None) -> str:
        """The cached name of *uid*, or the number.

        A server that sends no ids (rclone's, Go's pkg/sftp) gets uid 0,
        as sftp's ``attrib_to_stat`` zeroes what is missing.
        """
        uid = uid or 0
        return self._users.get(uid, str(uid))

    def group_name(self, gid: int | None) -> str:
        """The cached name of *gid*, or the number (0 when missing)."""
        gid = gid or 0
        return self._groups.get(gid, str(gid))
