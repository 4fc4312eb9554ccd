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
from collections.abc import AsyncGenerator, Callable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from psftp_shell.core.paths import make_absolute
from psftp_shell.frontend.completion_words import (
    Candidate,
    Entry,
    Target,
    WordContext,
    analyse,
    command_candidates,
    common_insert,
    path_candidates,
    split_dir,
    unescape_word,
)
from psftp_shell.sftp.client import SFTPClient, SFTPError
from psftp_shell.shell.context import Shell

LIST_TIMEOUT = 1.5
"""How long a completion waits for a directory listing (seconds)."""
MAX_LINK_STATS = 256
"""Symbolic links per directory checked for pointing to a directory."""


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

