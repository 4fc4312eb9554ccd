"""Streams spread over the addresses of one host name (opt-in).

A cluster of transfer nodes behind one name (``dtn.example.org`` with
four A records, one shared filesystem) moves more when ``-n``'s
connections go to every node instead of the first that answers.  With
``-X addresses=all`` (or ``addresses = all`` in the config file) the
session's N-th connection starts with the N-th address the name resolves
to, wrapping round; the control connection keeps the first.

Chunks of one file must never land on, or come from, different
filesystems, so an address is used only once a connection to it has
shown the same files as the control connection: the same start
directory with the same attributes (size, owner, group, mode and
modification time) and, where both sides offer ``statvfs@openssh.com``,
the same filesystem id.  An address that fails the check is dropped for
the session.  Chunked downloads also compare each helping stream's view
of the file (size and mtime) before it reads a byte, and a chunked upload
only ever writes to a temporary the first stream created, which a
stranger filesystem does not have.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psftp_shell.sftp.client import SFTPClient, SFTPError

ADDRESS_MODES = ("first", "all")

_Info = TypeVar("_Info", bound=tuple[Any, ...])


@dataclass(frozen=True, slots=True)
class Choice:
    """Which address one connection should try first, and which never."""

    index: int
    avoid: frozenset[str] = frozenset()


CHOICE: contextvars.ContextVar[Choice | None] = contextvars.ContextVar(
    "psftp_shell_address_choice", default=None)
"""Set around one connect: read by the socket opener."""


def order(infos: Sequence[_Info], choice: Choice | None) -> list[_Info]:
    """*infos* (getaddrinfo results) in the order *choice* asks for.

    The distinct addresses are rotated so that connection *index* starts
    with address *index* (modulo their count); avoided addresses go last
    rather than away, so a connection is never made impossible.
    """
    if choice is None or len(infos) < 2:
        return list(infos)
    addresses: list[str] = []
    for info in infos:
        if info[4][0] not in addresses:
            addresses.append(info[4][0])
    usable = [a for a in addresses if a not in choice.avoid] or addresses
    first = usable[choice.index % len(usable)]
    rank = {a: i for i, a in enumerate(usable[usable.index(first):]
                                       + usable[:usable.index(first)])}
    last = len(addresses)
    return sorted(infos, key=lambda info: rank.get(info[4][0], last))


@dataclass(frozen=True, slots=True)
class View:
    """What a connection shows of the server's files."""

    home: str
    attrs: tuple[int | None, ...]
    fsid: int | None

    def same_as(self, other: View) -> bool:
        """Whether *other* shows the same files (fsid counts if both
        know it)."""
        if self.fsid is not None and other.fsid is not None \
                and self.fsid != other.fsid:
            return False
        return (self.home, self.attrs) == (other.home, other.attrs)


async def view_of(client: SFTPClient) -> View | None:
    """The start directory, its attributes and filesystem id; None if the
    server will not say."""
    try:
        home = await client.realpath(".")
        st = await client.stat(home)
    except SFTPError:
        return None
    fsid = None
    if client.has_extension("statvfs@openssh.com"):
        try:
            fsid = (await client.statvfs(home)).fsid
        except SFTPError:
            fsid = None
    # not atime: listing the directory may move it
    return View(home, (st.size, st.uid, st.gid, st.permissions, st.mtime),
                fsid)


@dataclass
class Spreader:
    """One session's address choices and the addresses found wanting.

    The first connection is the control connection: its view is the
    reference every other address is held to.
    """

    count: int = 0
    bad: set[str] = field(default_factory=set)
    good: set[str] = field(default_factory=set)
    reference: View | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def next_choice(self) -> Choice:
        """The choice for the next connection."""
        choice = Choice(self.count, frozenset(self.bad))
        self.count += 1
        return choice

    async def admit(self, client: SFTPClient, address: str,
                    first: bool) -> bool:
        """Whether *client*, connected to *address*, may carry data."""
        if first:
            self.reference = await view_of(client)
            self.good.add(address)
            self._ready.set()
            return True
        if address in self.good:
            return True
        if address in self.bad:
            return False
        await self._ready.wait()
        mine = await view_of(client)
        if self.reference is None or mine is None \
                or not self.reference.same_as(mine):
            self.bad.add(address)
            return False
        self.good.add(address)
        return True
