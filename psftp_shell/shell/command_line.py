"""Parsing and running one command line, as sftp's ``parse_args`` and
``parse_dispatch_command`` do.

A line's ``-``/``@`` prefixes, its words (with sftp's memory of the last
line's first word), the flags and operands each :class:`~psftp_shell.
shell.commands.Command` of the table takes, ``strtoll``-like numbers,
then the handler, with sftp's order of parse errors, echo and failures.
"""

from __future__ import annotations

from psftp_shell.core.errors import CommandError
from psftp_shell.core.libc_parse import auto_base
from psftp_shell.core.paths import undo_glob_escape
from psftp_shell.shell import local_cmds
from psftp_shell.shell.commands import BY_NAME, Command, Syntax, lookup
from psftp_shell.shell.context import Invocation, Shell
from psftp_shell.shell.grammar import (
    GrammarError,
    getopt,
    parse_number,
    split_prefix,
    tokenize,
    tokenize_sloppy,
)

UNTERMINATED = "Unterminated quoted argument"


def _need(cmd: Command, have: int, want: int, what: str) -> None:
    if have < want:
        raise GrammarError(f"You must specify {what} after a {cmd.name} "
                           "command.")


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
        bang = BY_NAME["!"]
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
    cmd = BY_NAME[name]
    return await _dispatch(shell, cmd, Invocation(cmd.name, flags, args,
                                                  err_abort=True))
