"""Tab completion of command names, local and remote paths.

The analysis of the line is pure (:func:`analyse`, :func:`candidates`)
and follows sftp.c's ``complete()``: the text before the cursor is
tokenized sloppily, the argument number counts only words that do not
start with ``-``, the command table says whether it is remote or local,
and only the part of a name beyond what was typed is inserted, escaped
as sftp escapes it.  :class:`ShellCompleter` feeds it with directory
listings: remote ones are fetched in the background, cached per
directory until the next command, and waited for only briefly, so
typing never blocks.  Names are shown in the menu escaped (``\\ooo``) and
as plain text, never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from psftp_shell.commands import COMMANDS, ArgKind
from psftp_shell.context import Shell
from psftp_shell.escape import vis_field
from psftp_shell.grammar import (
    GrammarError,
    escape_completion,
    tokenize_sloppy,
)
from psftp_shell.paths import make_absolute
from psftp_shell.protocol import SFTPClient, SFTPError

LIST_TIMEOUT = 1.5
"""How long a completion waits for a directory listing (seconds)."""
MAX_LINK_STATS = 256
"""Symbolic links per directory checked for pointing to a directory."""
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


# -- listings -----------------------------------------------------------------

async def list_remote(client: SFTPClient, path: str) -> list[Entry] | None:
    """List a remote directory quietly; None on any error.

    Symbolic links (up to :data:`MAX_LINK_STATS`) are followed to learn
    whether they point to directories, as glob's GLOB_MARK does.
    """
    try:
        names = await client.listdir(path)
    except SFTPError:
        return None
    entries: list[Entry] = []
    links: list[str] = []
    for name in names:
        if "/" in name.filename:
            continue
        if name.attrs.is_link() and len(links) < MAX_LINK_STATS:
            links.append(name.filename)
            continue
        entries.append(Entry(name.filename, name.attrs.is_dir()))
    if links:
        base = path if path.endswith("/") else path + "/"
        results = await asyncio.gather(
            *(client.stat(base + link) for link in links),
            return_exceptions=True)
        for link, result in zip(links, results, strict=True):
            is_dir = not isinstance(result, BaseException) and \
                result.is_dir()
            entries.append(Entry(link, is_dir))
    return entries


def list_local(path: str) -> list[Entry] | None:
    """List a local directory; None on error."""
    try:
        with os.scandir(path) as scan:
            out = []
            for entry in scan:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                out.append(Entry(entry.name, is_dir))
            return out
    except OSError:
        return None


class ListingCache:
    """Remote directory listings, fetched once per directory.

    Each directory is listed by a background task that is never
    cancelled by a slow completion: a later completion finds it done.
    :meth:`clear` drops everything (after each command).
    """

    def __init__(self, client: Callable[[], SFTPClient]) -> None:
        self._client = client
        self._tasks: dict[str, asyncio.Task[list[Entry] | None]] = {}

    def clear(self) -> None:
        """Forget every listing."""
        self._tasks.clear()

    def fetch(self, path: str) -> asyncio.Task[list[Entry] | None]:
        """The task listing *path*, started now if not yet."""
        task = self._tasks.get(path)
        if task is None:
            task = asyncio.ensure_future(list_remote(self._client(), path))
            self._tasks[path] = task
        return task

    async def get(self, path: str, timeout: float = LIST_TIMEOUT
                  ) -> list[Entry] | None:
        """The listing of *path*, or None if failed or not ready in time."""
        task = self.fetch(path)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done or task.cancelled():
            return None
        return task.result()


def _dir_of(ctx: WordContext) -> str | None:
    literal = unescape_word(ctx.word)
    return None if literal is None else split_dir(literal)[0]


class ShellCompleter(Completer):
    """prompt_toolkit completer over a shell's command table and paths."""

    def __init__(self, shell: Shell, timeout: float = LIST_TIMEOUT) -> None:
        self.shell = shell
        self.timeout = timeout
        self.cache = ListingCache(lambda: shell.remote.client)

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent
                        ) -> Iterator[Completion]:
        """Command names only (paths need the asynchronous variant)."""
        ctx = analyse(document.text_before_cursor,
                      document.text_after_cursor)
        if ctx is not None and ctx.target is Target.COMMAND:
            yield from _completions(command_candidates(ctx))

    async def get_completions_async(self, document: Document,
                                    complete_event: CompleteEvent
                                    ) -> AsyncGenerator[Completion, None]:
        """Commands, or paths listed in the background."""
        for candidate in await self.candidates(document):
            yield _completion(candidate)

    async def candidates(self, document: Document) -> list[Candidate]:
        """All candidates for the cursor position of *document*."""
        ctx = analyse(document.text_before_cursor,
                      document.text_after_cursor)
        if ctx is None:
            return []
        if ctx.target is Target.COMMAND:
            return command_candidates(ctx)
        directory = _dir_of(ctx)
        if directory is None:
            return []
        if ctx.target is Target.REMOTE:
            path = make_absolute(directory, self.shell.remote.cwd) \
                if directory else self.shell.remote.cwd
            entries = await self.cache.get(path, self.timeout)
        else:
            local = os.path.join(self.shell.local_cwd, directory)
            entries = await self._local(local)
        return [] if entries is None else path_candidates(ctx, entries)

    async def _local(self, path: str) -> list[Entry] | None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, list_local, path)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(future, self.timeout)
        return None


def _completion(candidate: Candidate) -> Completion:
    # A plain string display is shown as it is: no markup is parsed.
    return Completion(candidate.insert, 0, display=candidate.display)


def _completions(candidates: list[Candidate]) -> Iterator[Completion]:
    return (_completion(c) for c in candidates)


# -- the Tab key --------------------------------------------------------------

async def complete_at_cursor(completer: ShellCompleter, buffer: object
                             ) -> None:
    """What Tab does: insert a unique match or the common part.

    Several matches are then shown in the menu (further Tabs cycle
    through them).  Nothing happens if the text changed meanwhile.
    """
    from prompt_toolkit.buffer import Buffer
    assert isinstance(buffer, Buffer)
    document = buffer.document
    found = await completer.candidates(document)
    if buffer.document != document or not found:
        return
    if len(found) == 1:
        buffer.insert_text(found[0].insert)
        return
    common = common_insert([c.insert for c in found])
    if common:
        buffer.insert_text(common)
    buffer.start_completion(select_first=False)


def completion_bindings(completer: ShellCompleter) -> KeyBindings:
    """Key bindings for Tab: sftp-like completion, then a menu."""
    bindings = KeyBindings()
    not_vi_navigation = Condition(_not_vi_navigation)

    @bindings.add("c-i", filter=not_vi_navigation)
    def _tab(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.complete_state:
            buffer.complete_next()
            return
        event.app.create_background_task(
            complete_at_cursor(completer, buffer))

    return bindings


def _not_vi_navigation() -> bool:
    from prompt_toolkit.application import get_app
    from prompt_toolkit.enums import EditingMode
    from prompt_toolkit.key_binding.vi_state import InputMode
    app = get_app()
    if app.editing_mode is not EditingMode.VI:
        return True
    return app.vi_state.input_mode in (InputMode.INSERT,
                                       InputMode.INSERT_MULTIPLE,
                                       InputMode.REPLACE)

