"""One transfer command's copies, handed to the board in sftp's order.

A ``get`` or ``put`` (one file, a glob, or trees) opens a :class:`Batch`
and hands it every file in the order sftp would copy them.  What the
command prints between files (``Fetching a to b``, walk messages) goes
to :attr:`Batch.out`; each file gets the next place in the output
order, so the lines come out as sftp's even when files are copied
concurrently.  :meth:`Batch.finish` waits for every copy and runs the
directory epilogues (modes and times) once the files are in.
"""

from __future__ import annotations

from psftp_shell import trees
from psftp_shell.attrs import Attrs
from psftp_shell.board import Board
from psftp_shell.getjob import GetJob
from psftp_shell.ordered import Sequencer, Slot
from psftp_shell.protocol import SFTPClient
from psftp_shell.putjob import PutJob
from psftp_shell.trees import Finisher
from psftp_shell.xfer import CopyContext, Flags


class Batch:
    """The copies of one command (see the module docstring).

    :param client: the control client, for tree walks
    """

    def __init__(self, ctx: CopyContext, client: SFTPClient, board: Board,
                 seq: Sequencer) -> None:
        self.ctx = ctx
        self.client = client
        self.board = board
        self._seq = seq
        self._current = seq.slot()
        self._deferred: list[tuple[Slot, Finisher]] = []
        self.failed = False

    @property
    def out(self) -> Slot:
        """Where the command prints now, in sftp's order."""
        return self._current

    def _take_slot(self) -> Slot:
        """A place for a file's messages; the command goes on after it."""
        slot = self._seq.slot()
        self._current.close()
        self._current = self._seq.slot()
        return slot

    def _absolute(self, path: str) -> str:
        """Remote paths reach the pool absolute: its clients may have
        started elsewhere than the control client (its cwd is ours)."""
        if self.board.parallel and not path.startswith("/"):
            raise ValueError(f"not an absolute remote path: {path!r}")
        return path

    async def download(self, src: str, dst: str, attrs: Attrs | None,
                       flags: Flags, failure: str | None = None) -> None:
        """Copy remote *src* to local *dst* (now, or queued)."""
        await self.board.submit(GetJob(self._absolute(src), dst, attrs,
                                       flags, self._take_slot(), failure))

    async def upload(self, src: str, dst: str, flags: Flags,
                     failure: str | None = None) -> None:
        """Copy local *src* to remote *dst* (now, or queued)."""
        await self.board.submit(PutJob(src, self._absolute(dst), flags,
                                       self._take_slot(), failure))

    async def download_dir(self, src: str, dst: str, attrs: Attrs | None,
                           flags: Flags) -> None:
        """Copy a remote tree."""
        if not await trees.download_dir(self, src, dst, attrs, flags):
            self.failed = True

    async def upload_dir(self, src: str, dst: str, flags: Flags) -> None:
        """Copy a local tree."""
        if not await trees.upload_dir(self, src, dst, flags):
            self.failed = True

    async def defer(self, finish: Finisher) -> None:
        """Run a directory epilogue after the files handed over so far."""
        if not self.board.parallel:
            await finish(self.out)
            return
        self._deferred.append((self._take_slot(), finish))

    async def finish(self) -> bool:
        """Wait for every copy; True if the command succeeded."""
        self._current.close()
        ok = await self.board.finish()
        deferred, self._deferred = self._deferred, []
        for slot, finish in deferred:
            await finish(slot)
            slot.close()
        return ok and not self.failed

    async def abort(self) -> None:
        """The command ends early: stop the copies, print what is held."""
        await self.board.cancel()
        self._seq.close_all()
