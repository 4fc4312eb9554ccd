"""What Tab completes, as sftp's complete() decides it (pure).

The word under the cursor and what it names, and the candidates
for command names and paths; the REPL's completer (completion.py)
lists the directories and talks to prompt_toolkit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from psftp_shell.core.escape import vis_field
from psftp_shell.shell.commands import COMMANDS, ArgKind
from psftp_shell.shell.grammar import (
    GrammarError,
    escape_completion,
    tokenize_sloppy,
)

_GLOB_CHARS = frozenset("*?[")


class Target(Enum):
    """What the word under the cursor names."""

    COMMAND = "command"
    REMOTE = "remote"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class WordContext:
    """The word to complete, as sftp's ``complete()`` sees it.

    :param target: a command name, a remote or a local path
    :param word: the word as tokenized (glob escapes kept); empty when a
        new word starts at the cursor
    :param quote: the quote the word opened, if it is still open or was
        used (escaping of inserted text depends on it)
    :param terminated: False when the line ends inside an open quote
    :param last: the word is the last one on the line
    :param before_space: the character after the cursor is a space
    """

    target: Target
    word: str
    quote: str | None
    terminated: bool
    last: bool
    before_space: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """A directory entry offered for completion."""

    name: str
    is_dir: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """One proposed completion: what to insert and what to show."""

    insert: str
    display: str


def _arg_kind(command: str, argno: int) -> ArgKind | None:
    """sftp's ``complete_is_remote``: the kind of argument *argno*.

    The first table name that is a (case-insensitive) prefix of the
    command word decides, as in sftp.
    """
    lowered = command.lower()
    for cmd in COMMANDS:
        if lowered.startswith(cmd.name):
            return cmd.args[argno - 1] if argno in (1, 2) else None
    return None


def analyse(before: str, after: str = "") -> WordContext | None:
    """Find the word at the cursor; None where sftp completes nothing.

    *before* and *after* are the line's text before and after the
    cursor.  Completion happens only at the end of the line or just
    before a space.
    """
    if after[:1] not in ("", " ", "\n"):
        return None
    try:
        ctx = tokenize_sloppy(before)
        whole = tokenize_sloppy(before + after).args
    except GrammarError:
        return None
    args = ctx.args
    new_word = before == "" or before.endswith(" ")
    common = {"terminated": ctx.terminated,
              "last": len(args) == len(whole),
              "before_space": after.startswith(" ")}
    if not args:
        return WordContext(Target.COMMAND, "", None, **common)
    if len(args) == 1 and not new_word:
        return WordContext(Target.COMMAND, args[0], ctx.quote, **common)
    argno = sum(1 for word in args[1:] if not word.startswith("-"))
    if new_word:
        argno += 1
    kind = _arg_kind(args[0], argno)
    if kind is ArgKind.REMOTE:
        target = Target.REMOTE
    elif kind is ArgKind.LOCAL:
        target = Target.LOCAL
    else:
        return None
    if new_word:
        # sftp would reuse the previous word's quote here; a new word is
        # unquoted, so its inserted text must be escaped as such.
        return WordContext(target, "", None, **common)
    return WordContext(target, args[-1], ctx.quote, **common)


def unescape_word(word: str) -> str | None:
    """The literal text of a word, or None if it holds a glob.

    Backslash escapes are resolved; an unescaped ``*``, ``?`` or ``[``
    makes it a pattern, which sftp lists but never extends.
    """
    out: list[str] = []
    chars = iter(word)
    for char in chars:
        if char == "\\":
            out.append(next(chars, "\\"))
        elif char in _GLOB_CHARS:
            return None
        else:
            out.append(char)
    return "".join(out)


def split_dir(literal: str) -> tuple[str, str]:
    """Split a typed path into its directory part and the name prefix.

    The directory keeps its trailing slash (``"a/b/"``, ``"/"``); it is
    empty for a bare name.
    """
    head, sep, tail = literal.rpartition("/")
    return head + sep, tail


def _terminator(ctx: WordContext, ends_in_slash: bool,
                command: bool) -> str:
    """What follows a unique match: a closing quote and a space."""
    out = ""
    if not ctx.terminated and (command or ctx.quote is not None):
        out += ctx.quote or ""
    if not ends_in_slash and (ctx.last or not ctx.before_space):
        out += " "
    return out


def command_candidates(ctx: WordContext) -> list[Candidate]:
    """Command names starting with the word (case-insensitive)."""
    typed = ctx.word
    names = [cmd.name for cmd in COMMANDS
             if cmd.name.startswith(typed.lower())]
    if typed and len(names) == 1:
        rest = names[0][len(typed):] + _terminator(ctx, False, True)
        return [Candidate(rest, names[0])]
    return [Candidate(name[len(typed):], name) for name in names]


def _visible(entry: Entry, prefix: str) -> bool:
    """Whether the glob ``prefix*`` matches the entry's name."""
    if not entry.name.startswith(prefix):
        return False
    return prefix.startswith(".") or not entry.name.startswith(".")


def path_candidates(ctx: WordContext, entries: Iterable[Entry]
                    ) -> list[Candidate]:
    """The completions of a path word from its directory's entries.

    *entries* list the directory the word points into.  Each candidate
    inserts the rest of a matching name (``/`` after a directory),
    escaped for the word's quoting; a unique match also closes the quote
    and adds a space, unless it is a directory.
    """
    literal = unescape_word(ctx.word)
    if literal is None:
        return []
    prefix = split_dir(literal)[1]
    matches = sorted((e for e in entries if _visible(e, prefix)),
                     key=lambda e: e.name)
    out = []
    for entry in matches:
        mark = "/" if entry.is_dir else ""
        rest = entry.name[len(prefix):] + mark
        insert = escape_completion(rest, ctx.quote)
        if len(matches) == 1:
            insert += _terminator(ctx, bool(mark), False)
        out.append(Candidate(insert, vis_field(entry.name) + mark))
    return out


def common_insert(inserts: list[str]) -> str:
    """The longest common start of *inserts* that ends on a whole char.

    A backslash escape is never split: a common part ending in an odd
    run of backslashes is cut before the last one.
    """
    common = os.path.commonprefix(inserts)
    run = len(common) - len(common.rstrip("\\"))
    return common[:-1] if run % 2 else common
