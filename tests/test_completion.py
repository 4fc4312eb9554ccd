"""Tab completion: the analysis of the line, the candidates, the cache.

No terminal and no server: the line analysis is pure, and the completer
runs over a fake SFTP client and temporary local directories.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, cast

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import to_formatted_text

from psftp_shell.core.output import Output
from psftp_shell.frontend.completion import ShellCompleter
from psftp_shell.frontend.completion_words import (
    Candidate,
    Entry,
    Target,
    WordContext,
    analyse,
    command_candidates,
    common_insert,
    path_candidates,
    unescape_word,
)
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.sftp.client import FX_NO_SUCH_FILE, Name, StatusError

DIR = 0o040755
FILE = 0o100644
LINK = 0o120777

# -- which word, and what kind ------------------------------------------------


@pytest.mark.parametrize(("before", "target", "word"), [
    ("", Target.COMMAND, ""),
    ("   ", Target.COMMAND, ""),
    ("g", Target.COMMAND, "g"),
    ("GE", Target.COMMAND, "GE"),
    ("get ", Target.REMOTE, ""),
    ("get fo", Target.REMOTE, "fo"),
    ("get -p ", Target.REMOTE, ""),
    ("get -pr fo", Target.REMOTE, "fo"),
    ("get a ", Target.LOCAL, ""),
    ("get a -p b", Target.LOCAL, "b"),
    ("put ", Target.LOCAL, ""),
    ("put a b", Target.REMOTE, "b"),
    ("reput a ", Target.REMOTE, ""),
    ("copy a ", Target.LOCAL, ""),      # sftp's table says so
    ("ln -s a ", Target.REMOTE, ""),
    ("rename a b", Target.REMOTE, "b"),
    ("cd ", Target.REMOTE, ""),
    ("LS sub/", Target.REMOTE, "sub/"),
    ("rmdir ", Target.REMOTE, ""),
    ("lcd ", Target.LOCAL, ""),
    ("lls -l ", Target.LOCAL, ""),
    ("get my\\ fi", Target.REMOTE, "my fi"),
])
def test_word_and_kind(before: str, target: Target, word: str) -> None:
    ctx = analyse(before)
    assert ctx is not None
    assert (ctx.target, ctx.word) == (target, word)


@pytest.mark.parametrize("before", [
    "cd a ",        # no second argument
    "get a b ",     # no third
    "lumask ",
    "progress ",
    "bye ",
    "get -",        # a flag being typed
    "nosuch ",
])
def test_nothing_to_complete(before: str) -> None:
    assert analyse(before) is None


def test_only_at_the_end_or_before_a_space() -> None:
    assert analyse("get fo", "o") is None
    ctx = analyse("get fo", " local")
    assert ctx is not None and ctx.word == "fo"
    assert ctx.before_space and not ctx.last


def test_open_quote() -> None:
    ctx = analyse('get "my fi')
    assert ctx == WordContext(Target.REMOTE, "my fi", '"', False, True,
                              False)
    closed = analyse("get 'a b' ")
    assert closed is not None and closed.quote is None


# -- command names ------------------------------------------------------------

def _cmd(before: str) -> list[Candidate]:
    ctx = analyse(before)
    assert ctx is not None
    return command_candidates(ctx)


def test_commands_starting_with_l_as_sftp_lists_them() -> None:
    # sftp 9.2 lists: lcd lchdir lls lmkdir ln lpwd ls lumask
    shown = [c.display for c in _cmd("l")]
    assert shown == "lcd lchdir lls lmkdir ln lpwd ls lumask".split()


def test_unique_command_completes_with_a_space() -> None:
    assert _cmd("GE") == [Candidate("t ", "get")]
    assert _cmd('"pw') == [Candidate('d" ', "pwd")]
    assert _cmd("lumask") == [Candidate(" ", "lumask")]


def test_all_commands_on_an_empty_line() -> None:
    shown = [c.display for c in _cmd("")]
    assert "get" in shown and "!" in shown and len(shown) == len(set(shown))
    assert all(c.insert == c.display for c in _cmd(""))


# -- paths --------------------------------------------------------------------

ENTRIES = [Entry("my file.txt", False), Entry("my dir", True),
           Entry("other", False), Entry(".hidden", False),
           Entry('say "hi"', False), Entry("a b", False),
           Entry("a[c", False)]


def _paths(before: str, after: str = "") -> list[Candidate]:
    ctx = analyse(before, after)
    assert ctx is not None
    return path_candidates(ctx, ENTRIES)


def test_several_matches_escaped_for_an_unquoted_word() -> None:
    assert _paths("get my") == [Candidate("\\ dir/", "my dir/"),
                                Candidate("\\ file.txt", "my file.txt")]


def test_unique_match_gets_a_space_directory_does_not() -> None:
    assert _paths("get oth") == [Candidate("er ", "other")]
    assert _paths("get my\\ d") == [Candidate("ir/", "my dir/")]
    assert _paths("get oth", " x") == [Candidate("er", "other")]


def test_inside_quotes_only_the_quote_is_escaped_and_closed() -> None:
    assert _paths('get "my f') == [Candidate('ile.txt" ', "my file.txt")]
    assert _paths('get "sa') == [Candidate('y \\"hi\\"" ', 'say "hi"')]
    assert _paths("get 'sa") == [Candidate("y \"hi\"' ", 'say "hi"')]


def test_dot_files_only_when_asked_for() -> None:
    assert ".hidden" not in [c.display for c in _paths("get ")]
    assert [c.display for c in _paths("get .")] == [".hidden"]


def test_patterns_are_not_completed() -> None:
    assert _paths("get *.txt") == []
    assert _paths("get m?") == []
    assert unescape_word("a\\*b\\\\") == "a*b\\"


def test_common_part_never_ends_in_half_an_escape() -> None:
    inserts = [c.insert for c in _paths("get a")]
    assert inserts == ["\\ b", "\\[c"]
    assert common_insert(inserts) == ""
    assert common_insert(["\\\\x", "\\\\y"]) == "\\\\"
    assert common_insert(["ab1", "ab2"]) == "ab"


def test_names_are_shown_escaped_and_literally() -> None:
    nasty = [Entry("x\x1b[31mred", False), Entry("x[bold]b<b>i", False),
             Entry("x\udcff", False)]
    ctx = analyse("get x")
    assert ctx is not None
    found = path_candidates(ctx, nasty)
    assert [c.display for c in found] == [
        "x\\033[31mred", "x[bold]b<b>i", "x\\377"]
    # What is inserted is the name itself (escaped for the shell only).
    assert found[1].insert == "\\[bold]b<b>i"


# -- the completer over a fake server -----------------------------------------

class FakeClient:
    """listdir/stat over a dict of directories, counting listings."""

    def __init__(self, tree: dict[str, list[tuple[str, int]]]) -> None:
        self.tree = tree
        self.listed: list[str] = []
        self.gate: asyncio.Event | None = None

    async def listdir(self, path: str) -> list[Name]:
        self.listed.append(path)
        if self.gate is not None:
            await self.gate.wait()
        key = path.rstrip("/") or "/"
        if key not in self.tree:
            raise StatusError(FX_NO_SUCH_FILE)
        return [Name(n, n, Attrs(permissions=mode))
                for n, mode in self.tree[key]]

    async def stat(self, path: str) -> Attrs:
        head, _, name = path.rstrip("/").rpartition("/")
        if name == "to_dir":
            return Attrs(permissions=DIR)
        raise StatusError(FX_NO_SUCH_FILE)


class FakeShell:
    """What the completer reads: the cwds and the control client."""

    def __init__(self, client: FakeClient, local: Path) -> None:
        self.remote = type("Remote", (), {"client": client,
                                          "cwd": "/home/u"})()
        self.local_cwd = str(local)
        self.out = Output(io.BytesIO(), io.BytesIO())


TREE = {
    "/home/u": [("alpha.txt", FILE), ("alpine", DIR), ("to_dir", LINK),
                ("to_file", LINK), ("bad/name", FILE)],
    "/home/u/alpine": [("inner", FILE)],
    "/etc": [("passwd", FILE)],
}


def _completer(tmp_path: Path, timeout: float = 2.0
               ) -> tuple[ShellCompleter, FakeClient, FakeShell]:
    client = FakeClient(TREE)
    shell = FakeShell(client, tmp_path)
    return ShellCompleter(cast(Any, shell), timeout=timeout), client, shell


async def _texts(completer: ShellCompleter, line: str
                 ) -> list[tuple[str, str]]:
    document = Document(line)
    return [(c.text, c.display_text) async for c in
            completer.get_completions_async(document, CompleteEvent())]


async def test_remote_names_relative_and_absolute(tmp_path: Path) -> None:
    completer, client, _ = _completer(tmp_path)
    assert await _texts(completer, "get al") == [
        ("pha.txt", "alpha.txt"), ("pine/", "alpine/")]
    assert await _texts(completer, "get alpine/") == [("inner ", "inner")]
    assert await _texts(completer, "cd /et") == []       # not listed: /
    assert await _texts(completer, "get /etc/pa") == [("sswd ", "passwd")]
    assert client.listed == ["/home/u", "/home/u/alpine/", "/", "/etc/"]


async def test_links_to_directories_are_marked(tmp_path: Path) -> None:
    completer, _, _ = _completer(tmp_path)
    assert await _texts(completer, "cd to_") == [
        ("dir/", "to_dir/"), ("file", "to_file")]


async def test_listings_are_cached_until_cleared(tmp_path: Path) -> None:
    completer, client, _ = _completer(tmp_path)
    await _texts(completer, "get a")
    await _texts(completer, "ls al")
    assert client.listed == ["/home/u"]
    completer.cache.clear()
    await _texts(completer, "get a")
    assert client.listed == ["/home/u", "/home/u"]


async def test_errors_give_nothing_and_print_nothing(tmp_path: Path) -> None:
    completer, _, shell = _completer(tmp_path)
    assert await _texts(completer, "get nosuch/x") == []
    assert shell.out.stdout.getvalue() == b""    # type: ignore
    assert shell.out.stderr.getvalue() == b""    # type: ignore


async def test_slow_listing_does_not_block(tmp_path: Path) -> None:
    completer, client, _ = _completer(tmp_path, timeout=0.05)
    client.gate = asyncio.Event()
    assert await asyncio.wait_for(_texts(completer, "get alph"), 1) == []
    client.gate.set()
    await asyncio.sleep(0.01)
    assert await _texts(completer, "get alph") == [("a.txt ", "alpha.txt")]
    assert client.listed == ["/home/u"]     # fetched once, in background


async def test_local_paths_from_the_shell_local_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two words").write_text("x")
    (tmp_path / "sample.txt").write_text("x")
    completer, client, _ = _completer(tmp_path)
    assert await _texts(completer, "put s") == [
        ("ample.txt", "sample.txt"), ("ub/", "sub/")]
    assert await _texts(completer, "lcd sub/t") == [
        ("wo\\ words ", "two words")]
    assert await _texts(completer, "get alpha.txt sa") == [
        ("mple.txt ", "sample.txt")]
    assert client.listed == []      # nothing asked of the server


def test_menu_text_is_plain_not_markup() -> None:
    from psftp_shell.frontend.completion import _completion
    completion = _completion(Candidate("x", "<b>[red]n\\033"))
    assert to_formatted_text(completion.display) == [
        ("", "<b>[red]n\\033")]
