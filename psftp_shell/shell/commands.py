"""The command table: one list drives parsing, dispatch, help, completion
and the man page.

Each :class:`Command` says how sftp parses its arguments (:class:`Syntax`,
the flag letters, which arguments are remote or local paths), what
``help`` prints for it, and which handler runs it.  Aliases are entries of
their own, as in sftp's ``cmds[]``, so messages name the word the user
typed (``mget``).  Parsing a line against the table and running it is
:mod:`psftp_shell.shell.command_line`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from psftp_shell.shell import local_cmds, remote_cmds, transfer_cmds
from psftp_shell.shell.context import Invocation, Shell

Handler = Callable[[Shell, Invocation], Awaitable[None]]
HELP_COLUMN = 35


class ArgKind(Enum):
    """What an argument names, for completion (sftp's NOARGS/REMOTE/LOCAL)."""

    NONE = 0
    REMOTE = 1
    LOCAL = 2


class Syntax(Enum):
    """How a command's arguments are parsed (the cases of parse_args)."""

    NONE = "none"            # flags only; extra words ignored
    TRANSFER = "transfer"    # get/put: at least one path
    TWO_PATHS = "two"        # rename/ln/copy: exactly two paths
    PATH = "path"            # one mandatory path
    OPT_PATH = "optpath"     # an optional path
    LS = "ls"                # ls flags, an optional (globbed) path
    REST = "rest"            # the raw rest of the line (lls, !)
    NUMBER = "number"        # lumask: a number
    NUMBER_PATH = "numpath"  # chmod/chown/chgrp: a number and a path


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the command table.

    :param usage: the left column of ``help`` (empty: not listed)
    :param help: the right column; further lines after ``\\n``
    :param glob: the first path is globbed, so keeps its glob escapes
    :param base: the number base of a numeric argument; 0 is
        ``strtoll``'s automatic base (``0x`` hex, ``0`` octal)
    """

    name: str
    handler: Handler
    syntax: Syntax
    flags: str = ""
    args: tuple[ArgKind, ArgKind] = (ArgKind.NONE, ArgKind.NONE)
    usage: str = ""
    help: str = ""
    glob: bool = False
    base: int = 10


async def _help(sh: Shell, inv: Invocation) -> None:
    """``help``/``?``: the command list, generated from this table."""
    sh.out.write("".join(line + "\n"
                         for line in help_lines(sh.settings.streams)))


_R, _L, _N = ArgKind.REMOTE, ArgKind.LOCAL, ArgKind.NONE
_GETPUT = "afPpRr"

COMMANDS: tuple[Command, ...] = (
    Command("bye", local_cmds.quit, Syntax.NONE, usage="bye",
            help="Quit sftp"),
    Command("cd", remote_cmds.cd, Syntax.OPT_PATH, args=(_R, _N),
            usage="cd path", help="Change remote directory to 'path'"),
    Command("chdir", remote_cmds.cd, Syntax.OPT_PATH, args=(_R, _N)),
    Command("chgrp", remote_cmds.chown, Syntax.NUMBER_PATH, "h", (_R, _N),
            "chgrp [-h] grp path", "Change group of file 'path' to 'grp'",
            glob=True, base=0),
    Command("chmod", remote_cmds.chmod, Syntax.NUMBER_PATH, "h", (_R, _N),
            "chmod [-h] mode path",
            "Change permissions of file 'path' to 'mode'", glob=True,
            base=8),
    Command("chown", remote_cmds.chown, Syntax.NUMBER_PATH, "h", (_R, _N),
            "chown [-h] own path", "Change owner of file 'path' to 'own'",
            glob=True, base=0),
    Command("copy", remote_cmds.copy, Syntax.TWO_PATHS, "", (_R, _L),
            "copy oldpath newpath", "Copy remote file"),
    Command("cp", remote_cmds.copy, Syntax.TWO_PATHS, "", (_R, _L),
            "cp oldpath newpath", "Copy remote file"),
    Command("df", remote_cmds.df, Syntax.OPT_PATH, "hi", (_R, _N),
            "df [-hi] [path]",
            "Display statistics for current directory or\n"
            "filesystem containing 'path'"),
    Command("dir", remote_cmds.ls, Syntax.LS, "1Safhlnrt", (_R, _N),
            glob=True),
    Command("exit", local_cmds.quit, Syntax.NONE, usage="exit",
            help="Quit sftp"),
    Command("get", transfer_cmds.get, Syntax.TRANSFER, _GETPUT, (_R, _L),
            "get [-afpR] remote [local]", "Download file", glob=True),
    Command("help", _help, Syntax.NONE, usage="help",
            help="Display this help text"),
    Command("lcd", local_cmds.lcd, Syntax.OPT_PATH, args=(_L, _N),
            usage="lcd path", help="Change local directory to 'path'"),
    Command("lchdir", local_cmds.lcd, Syntax.OPT_PATH, args=(_L, _N)),
    Command("lls", local_cmds.lls, Syntax.REST, args=(_L, _N),
            usage="lls [ls-options [path]]",
            help="Display local directory listing"),
    Command("lmkdir", local_cmds.lmkdir, Syntax.PATH, args=(_L, _N),
            usage="lmkdir path", help="Create local directory"),
    Command("ln", remote_cmds.link, Syntax.TWO_PATHS, "s", (_R, _R),
            "ln [-s] oldpath newpath", "Link remote file (-s for symlink)"),
    Command("lpwd", local_cmds.lpwd, Syntax.NONE, args=(_L, _N),
            usage="lpwd", help="Print local working directory"),
    Command("ls", remote_cmds.ls, Syntax.LS, "1Safhlnrt", (_R, _N),
            "ls [-1afhlnrSt] [path]", "Display remote directory listing",
            glob=True),
    Command("lumask", local_cmds.lumask, Syntax.NUMBER, "h",
            usage="lumask umask", help="Set local umask to 'umask'",
            base=8),
    Command("mkdir", remote_cmds.mkdir, Syntax.PATH, args=(_R, _N),
            usage="mkdir path", help="Create remote directory"),
    Command("mget", transfer_cmds.get, Syntax.TRANSFER, _GETPUT, (_R, _L),
            glob=True),
    Command("mput", transfer_cmds.put, Syntax.TRANSFER, _GETPUT, (_L, _R),
            glob=True),
    Command("progress", local_cmds.progress, Syntax.NONE, usage="progress",
            help="Toggle display of progress meter"),
    Command("put", transfer_cmds.put, Syntax.TRANSFER, _GETPUT, (_L, _R),
            "put [-afpR] local [remote]", "Upload file", glob=True),
    Command("pwd", remote_cmds.pwd, Syntax.NONE, args=(_R, _N),
            usage="pwd", help="Display remote working directory"),
    Command("quit", local_cmds.quit, Syntax.NONE, usage="quit",
            help="Quit sftp"),
    Command("reget", transfer_cmds.reget, Syntax.TRANSFER, _GETPUT,
            (_R, _L), "reget [-fpR] remote [local]",
            "Resume download file", glob=True),
    Command("rename", remote_cmds.rename, Syntax.TWO_PATHS, "l", (_R, _R),
            "rename oldpath newpath", "Rename remote file"),
    Command("reput", transfer_cmds.reput, Syntax.TRANSFER, _GETPUT,
            (_L, _R), "reput [-fpR] local [remote]", "Resume upload file",
            glob=True),
    Command("rm", remote_cmds.rm, Syntax.PATH, args=(_R, _N),
            usage="rm path", help="Delete remote file", glob=True),
    Command("rmdir", remote_cmds.rmdir, Syntax.PATH, args=(_R, _N),
            usage="rmdir path", help="Remove remote directory"),
    Command("symlink", remote_cmds.symlink, Syntax.TWO_PATHS, "", (_R, _R),
            "symlink oldpath newpath", "Symlink remote file"),
    Command("version", remote_cmds.version, Syntax.NONE, usage="version",
            help="Show SFTP version"),
    Command("!", local_cmds.shell_escape, Syntax.REST,
            usage="!command\n!",
            help="Execute 'command' in local shell\nEscape to local shell"),
    Command("?", _help, Syntax.NONE, usage="?",
            help="Synonym for help"),
)

BY_NAME = {cmd.name: cmd for cmd in COMMANDS}


def lookup(word: str) -> Command | None:
    """Find the command *word* names (exact, case-insensitive)."""
    return BY_NAME.get(word.lower())


def is_transfer(line: str) -> bool:
    """Whether *line* runs a transfer command (get, put, reget...).

    Only a hint for opening ``-n``'s streams early: the ``-``/``@``
    prefixes are skipped, and nothing else is parsed.
    """
    words = line.lstrip(" \t-@").split(None, 1)
    found = lookup(words[0]) if words else None
    return found is not None and found.syntax is Syntax.TRANSFER


def help_lines(streams: int | None = None) -> list[str]:
    """The ``help`` text, one line per element, from the table.

    With *streams*, psftp-shell's ``-n`` lines follow sftp's text, in its
    style (every one of them names ``connections``).
    """
    lines = ["Available commands:"]
    for cmd in COMMANDS:
        usages = cmd.usage.split("\n") if cmd.usage else []
        texts = cmd.help.split("\n")
        if len(usages) > 1:     # `!command` and `!`: a line each
            lines += [f"{u:<{HELP_COLUMN}}{t}" for u, t in zip(usages, texts,
                                                                 strict=True)]
        elif usages:
            lines.append(f"{usages[0]:<{HELP_COLUMN}}{texts[0]}")
            lines += [" " * HELP_COLUMN + t for t in texts[1:]]
    if streams is not None:
        lines += [f"{'-n connections':<{HELP_COLUMN}}get, put, reget and "
                  "reput run on this many",
                  f"{'':<{HELP_COLUMN}}parallel connections (now "
                  f"{streams})"]
    return lines
