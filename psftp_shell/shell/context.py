"""The state a command handler works on, and what one command line says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psftp_shell.core.output import Output

if TYPE_CHECKING:
    from psftp_shell.engine.transfer_engine import TransferEngine
    from psftp_shell.shell.remote_session import RemoteSession


@dataclass(slots=True)
class Settings:
    """Session-wide switches from the command line (sftp's globals)."""

    preserve: bool = False      # -p
    recursive: bool = False     # -r
    resume: bool = False        # -a
    fsync: bool = False         # -f
    progress: bool = True       # the progress meter (toggled by `progress`)
    batch: bool = False         # -b
    interactive: bool = False   # a terminal on stdin and no -b
    streams: int = 1            # -n
    channels: int = 1           # -X channels=: streams per connection


@dataclass(slots=True)
class Shell:
    """Everything a command handler needs; there is one per session.

    The shell keeps both working directories itself: ``remote.cwd`` and
    :attr:`local_cwd`.  Nothing calls :func:`os.chdir`.
    """

    out: Output
    remote: RemoteSession
    engine: TransferEngine
    local_cwd: str
    settings: Settings = field(default_factory=Settings)
    interrupted: bool = False
    argv_buffer: bytearray | None = None   # sftp's static argv (commands)
    local_fd: int | None = None     # local_cwd held open (local_cmds)


@dataclass(frozen=True, slots=True)
class Invocation:
    """One parsed command line, ready to run.

    :param name: the table name the command word matched (``mget``)
    :param flags: the flag letters given, in order
    :param args: the operands, with sftp's glob-escape rules applied
    :param number: the numeric argument of chmod/chown/chgrp/lumask
    :param rest: the raw rest of the line, for ``lls`` and ``!``
    :param err_abort: whether a failure ends a batch (sftp's err_abort)
    """

    name: str
    flags: str = ""
    args: tuple[str, ...] = ()
    number: int | None = None
    rest: str = ""
    err_abort: bool = False

    def arg(self, index: int) -> str | None:
        """Return operand *index*, or None when it was not given."""
        return self.args[index] if index < len(self.args) else None
