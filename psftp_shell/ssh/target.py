"""What to connect to, and how a failed connection is reported.

:class:`SSHTarget` is the ssh part of sftp's command line;
:class:`ConnectError` carries ssh's stderr lines followed by sftp's
``Connection closed``.  Both are shared by the connection modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from psftp_shell.core.errors import ConnectionClosed
from psftp_shell.core.escape import vis_log


@dataclass(slots=True)
class SSHTarget:
    """The ssh part of an sftp command line."""

    host: str
    port: int | None = None
    user: str | None = None
    config_file: str | None = None      # -F; "none" reads no file
    options: list[str] = field(default_factory=list)     # -o, in order
    identities: list[str] = field(default_factory=list)  # -i
    jump: str | None = None             # -J (the last)
    cipher: str | None = None           # -c
    compression: bool = False           # -C
    family: int = 0                     # 0, 4 or 6 (-4/-6)
    forward_agent: bool = False         # -A
    batch_mode: bool = False            # sftp -b: -obatchmode yes
    verbose: int = 0                    # -v count
    quiet: bool = False                 # -q: ssh's LogLevel QUIET
    given: list[tuple[str, str]] = field(default_factory=list)
    """-J, -c and -o as (letter, value), in the order given."""



class ConnectError(ConnectionClosed):
    """A failed connection: ssh's stderr, then sftp's last words.

    ``str(exc)`` is the text sftp prints for ``-b`` and ``-q``, lines
    joined by newlines; :attr:`stderr` is the same with ssh's line ends
    (``\\r\\n``, or the ``\\n`` a line of ssh's own ends with), to be
    written as it is.  Both escape ssh's log lines as its log does.
    :attr:`ssh_lines` is ssh's part alone, as raised (not escaped), for
    front ends that print sftp's interactive ``Connection closed.``
    notice in between.
    """

    def __init__(self, ssh_lines: Sequence[str]) -> None:
        self.ssh_lines = list(ssh_lines)
        super().__init__("".join(_ended(line) for line in self.ssh_lines))
        self.args = ("\n".join([*(_shown(line).rstrip("\n")
                                  for line in self.ssh_lines),
                                "Connection closed"]),)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def stderr(self) -> str:
        """The exact stderr text, as ssh and sftp write it."""
        return "".join(_ended(line)
                       for line in [*self.ssh_lines, "Connection closed"])


def _shown(line: str) -> str:
    """*line* as ssh shows it: a line of its log escaped as log.c
    escapes it (``\\ooo`` for bytes outside printable ASCII), a line it
    wrote itself as it is."""
    return line if line.endswith("\n") else vis_log(line)


def _ended(line: str) -> str:
    """*line* shown and ended as ssh ends it: CR LF from its log, or the
    ``\\n`` of a line it wrote itself."""
    return line if line.endswith("\n") else _shown(line) + "\r\n"
