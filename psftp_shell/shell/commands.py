"""The command table: one list drives parsing, dispatch, help, completion
and the man page.

Each :class:`Command` says how sftp parses its arguments (:class:`Syntax`,
the flag letters, which arguments are remote or local paths), what
``help`` prints for it, and which handler runs it.  Aliases are entries of
their own, as in sftp's ``cmds[]``, so messages name the word the user
typed (``mget``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from psftp_shell.core.errors import CommandError
from psftp_shell.core.paths import undo_glob_escape
from psftp_shell.shell import local_cmds, remote_cmds, transfer_cmds
from psftp_shell.shell.context import Invocation, Shell
from psftp_shell.shell.grammar import (
    GrammarError,
    getopt,
    parse_number,
    split_prefix,
    tokenize,
    tokenize_sloppy,
)

Handler = Callable[[Shell, Invocation], Awaitable[None]]
UNTERMINATED = "Unterminated quoted argument"
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

_BY_NAME = {cmd.name: cmd for cmd in COMMANDS}


def lookup(word: str) -> Command | None:
    """Find the command *word* names (exact, case-insensitive)."""
    return _BY_NAME.get(word.lower())


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


def _need(cmd: Command, have: int, want: int, what: str) -> None:
    if have < want:
        raise GrammarError(f"You must specify {what} after a {cmd.name} "
                           "command.")


_C_SPACE = " \t\n\v\f\r"


def auto_base(text: str) -> tuple[str, int]:
    """Resolve ``strtoll``'s base 0 for *text*: ``0x`` hex, ``0`` octal.

    Returns the text with a hex prefix removed (white space and sign
    kept) and the base it is to be read in.
    """
    body = text.lstrip(_C_SPACE)
    head = text[:len(text) - len(body)]
    if body[:1] in ("+", "-"):
        head, body = head + body[0], body[1:]
    if body[:2].lower() == "0x" and body[2:3].lower() in \
            tuple("0123456789abcdef"):
        return head + body[2:], 16
    if body.startswith("0"):
        return text, 8
    return text, 10


def _number(cmd: Command, operands: list[str]) -> int:
    if not operands:
        raise GrammarError("You must supply a numeric argument to the "
                           f"{cmd.name} command.")
    text, base = operands[0], cmd.base
    if base == 0:
        text, base = auto_base(text)
    return parse_number(text, base, cmd.name)


def parse(text: str, *, err_abort: bool = False
          ) -> tuple[Command, Invocation] | None:
    """Parse one command line (prefixes already removed), as sftp does.

    Returns None for a blank or comment line.  Raises
    :class:`~psftp_shell.shell.grammar.GrammarError` with sftp's message for
    anything sftp rejects before running a command.
    """
    if not text or text[0] == "#":
        return None
    return parse_words(text, tokenize(text), err_abort=err_abort)


def parse_words(text: str, argv: list[str], *, err_abort: bool = False
                ) -> tuple[Command, Invocation]:
    """Parse a line already split into *argv* (see :func:`parse`)."""
    cmd = lookup(argv[0]) if argv else None
    if text[0] == "!":
        bang = _BY_NAME["!"]
        return bang, Invocation("!", rest=text[1:], err_abort=err_abort)
    if cmd is None:
        raise GrammarError("Invalid command.")
    if cmd.syntax is Syntax.REST:
        return cmd, Invocation(cmd.name, rest=text[len(cmd.name):],
                               err_abort=err_abort)
    flag_cmd = "ls" if cmd.syntax is Syntax.LS else cmd.name
    flags, operands = getopt(flag_cmd, argv[1:], cmd.flags)
    number = None
    args: list[str] = []
    syntax = cmd.syntax
    if syntax is Syntax.TRANSFER:
        _need(cmd, len(operands), 1, "at least one path")
        args = operands[:1] + [undo_glob_escape(p) for p in operands[1:2]]
    elif syntax is Syntax.TWO_PATHS:
        _need(cmd, len(operands), 2, "two paths")
        args = [undo_glob_escape(p) for p in operands[:2]]
    elif syntax in (Syntax.PATH, Syntax.OPT_PATH):
        if syntax is Syntax.PATH:
            _need(cmd, len(operands), 1, "a path")
        args = operands[:1] if cmd.glob else [
            undo_glob_escape(p) for p in operands[:1]]
    elif syntax is Syntax.LS:
        args = operands[:1]
    elif syntax in (Syntax.NUMBER, Syntax.NUMBER_PATH):
        number = _number(cmd, operands)
        if syntax is Syntax.NUMBER_PATH:
            _need(cmd, len(operands), 2, "a path")
            args = operands[1:2]
    return cmd, Invocation(cmd.name, "".join(flags), tuple(args), number,
                           err_abort=err_abort)


QUIT = 1
FAILED = -1


def _parse_line(shell: Shell, text: str, err_abort: bool
                ) -> tuple[Command, Invocation] | None:
    """:func:`parse`, with the one thing sftp remembers between lines.

    sftp's ``makeargv`` builds its words in a static buffer and never
    clears the pointer to the first one: a line with no words that is
    not blank to sftp (it starts with a vertical tab or a form feed)
    runs the command named by whatever that buffer starts with, with no
    arguments; before any word was seen it is an invalid command.
    """
    if not text or text[0] == "#":
        return None
    try:
        argv = tokenize(text)
    except GrammarError as exc:
        if str(exc) == UNTERMINATED:
            _remember(shell, tokenize_sloppy(text).args, complete=False)
        raise
    if argv:
        _remember(shell, argv, complete=True)
    elif shell.argv_buffer is not None:
        argv = [_stale_word(shell.argv_buffer)]
    return parse_words(text, argv, err_abort=err_abort)


def _remember(shell: Shell, words: list[str], *, complete: bool) -> None:
    """Write *words* over sftp's static word buffer, as makeargv does.

    Each word ends in a NUL, except an unterminated last one.
    """
    if not words:
        return
    data = b"".join(w.encode("utf-8", "surrogateescape") + b"\0"
                    for w in words)
    if not complete:
        data = data[:-1]
    if shell.argv_buffer is None:
        shell.argv_buffer = bytearray()
    shell.argv_buffer[:len(data)] = data


def _stale_word(buffer: bytearray) -> str:
    """The C string at the start of sftp's word buffer."""
    end = buffer.find(0)
    raw = bytes(buffer if end < 0 else buffer[:end])
    return raw.decode("utf-8", "surrogateescape")


async def run_line(shell: Shell, line: str, *, echo: bool,
                   abort: bool) -> int:
    """Parse and run one input line; sftp's ``parse_dispatch_command``.

    Parse errors are printed before the ``sftp>`` echo and execution
    errors after it, as sftp orders them.  With *abort* (batch mode), a
    failure not excused by a ``-`` prefix returns :data:`FAILED`.
    Returns :data:`QUIT`, :data:`FAILED` or 0.
    """
    prefix = split_prefix(line)
    err_abort = abort and not prefix.ignore_errors
    parsed: tuple[Command, Invocation] | None = None
    failed = False
    try:
        parsed = _parse_line(shell, prefix.rest, err_abort)
    except GrammarError as exc:
        shell.out.error(str(exc))
        failed = True
    if echo and not prefix.no_echo:
        shell.out.line("sftp> " + line)
    if parsed is not None:
        cmd, inv = parsed
        failed = not await _dispatch(shell, cmd, inv) or failed
        if cmd.handler is local_cmds.quit:
            return FAILED if failed and err_abort else QUIT
    return FAILED if failed and err_abort else 0


async def _dispatch(shell: Shell, cmd: Command, inv: Invocation) -> bool:
    """Run one parsed command; False when it failed (message printed)."""
    local_cmds.follow_cwd(shell)
    try:
        await cmd.handler(shell, inv)
    except CommandError as exc:
        if str(exc):
            shell.out.error(str(exc))
        return False
    return True


async def run_words(shell: Shell, name: str, args: tuple[str, ...],
                    flags: str = "") -> bool:
    """Run command *name* on operands that are never parsed again.

    What OpenSSH 10.4 does for ``host:path``: the path (the user's words
    joined to the server's start directory) must not be pasted into a
    command line, where a space or quote in the server's answer would
    choose the local destination.  False when the command failed.
    """
    cmd = _BY_NAME[name]
    return await _dispatch(shell, cmd, Invocation(cmd.name, flags, args,
                                                  err_abort=True))
