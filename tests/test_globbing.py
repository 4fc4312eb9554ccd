"""Tests for psftp_shell.shell.globbing: OpenBSD glob(3) over a GlobFS.

An in-memory file system pins down the flags, errors and call pattern;
a real directory compares the results with the real sftp client (whose
``get``, ``rm`` and ``ls`` print what its glob returned) and with Python's
fnmatch where the two agree.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.core.paths import basename, make_absolute_glob, path_strip
from psftp_shell.shell.globbing import PATH_MAX, LocalGlobFS, glob, match_count
from psftp_shell.shell.grammar import GrammarError, getopt, tokenize


@pytest.fixture
def sftp_cmd(sftp_bin: str, sftp_server_bin: str) -> list[str]:
    """The real sftp client, talking to a local sftp-server (``-D``)."""
    return [sftp_bin, "-D", sftp_server_bin]


# -- an in-memory file system ---------------------------------------------

@dataclass(frozen=True)
class FakeStat:
    kind: str                   # "dir", "file" or "link"
    target: str = ""


class FakeFS:
    """A tree of paths; records every call; may fail listings."""

    def __init__(self, tree: dict[str, str], *, listing_order: bool = False,
                 broken: tuple[str, ...] = ()) -> None:
        # tree: path -> "dir" | "file" | "->target" (a symbolic link)
        self.tree = dict(tree)
        self.tree.setdefault("/", "dir")
        self.broken = broken
        self.listing_order = listing_order
        self.calls: list[tuple[str, str]] = []

    def _real(self, path: str, follow: bool) -> str | None:
        """Resolve *path* to a key of the tree, following links."""
        todo = [p for p in path.split("/") if p not in ("", ".")]
        # A trailing slash follows a final link, as the kernel does.
        follow = follow or path.endswith("/")
        parts: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
            entry = self.tree.get("/" + "/".join(parts))
            if entry is None:
                return None
            if entry.startswith("->") and (todo or follow):
                hops += 1
                if hops > 10:
                    return None
                parts.pop()
                target = entry[2:]
                if target.startswith("/"):
                    parts = []
                todo[:0] = [p for p in target.split("/")
                            if p not in ("", ".")]
            elif todo and entry != "dir":
                return None
        return "/" + "/".join(parts)

    def _resolve(self, path: str, follow: bool) -> FakeStat | None:
        real = self._real(path, follow)
        if real is None:
            return None
        entry = self.tree[real]
        if path.endswith("/") and entry != "dir":
            return None
        if entry.startswith("->"):
            return FakeStat("link", entry[2:])
        return FakeStat(entry)

    async def scandir(self, path: str) -> list[tuple[str, Any]]:
        self.calls.append(("scandir", path))
        await asyncio.sleep(0)
        real = self._real(path, True)
        if path in self.broken or real is None or self.tree[real] != "dir":
            raise FileNotFoundError(2, "No such file or directory")
        names = [".", ".."]
        prefix = real.rstrip("/") + "/"
        for key in self.tree:
            rest = key[len(prefix):]
            if key.startswith(prefix) and rest and "/" not in rest:
                names.append(rest)
        if not self.listing_order:
            names.sort()
        return [(name, self._resolve(prefix + name, False))
                for name in names]

    async def lstat(self, path: str) -> Any | None:
        self.calls.append(("lstat", path))
        await asyncio.sleep(0)
        return self._resolve(path, False)

    async def stat(self, path: str) -> Any | None:
        self.calls.append(("stat", path))
        await asyncio.sleep(0)
        return self._resolve(path, True)

    def is_dir(self, st: Any) -> bool:
        return bool(st.kind == "dir")

    def is_symlink(self, st: Any) -> bool:
        return bool(st.kind == "link")


TREE = {
    "/r": "dir",
    "/r/a": "file", "/r/b": "file", "/r/ab": "file", "/r/B": "file",
    "/r/.hidden": "file", "/r/star*.txt": "file", "/r/q?": "file",
    "/r/[ab]": "file", "/r/back\\slash": "file",
    "/r/sub": "dir", "/r/sub/x": "file", "/r/sub/.y": "file",
    "/r/sub/deep": "dir", "/r/sub/deep/z": "file",
    "/r/lsub": "->/r/sub", "/r/la": "->/r/a", "/r/dangling": "->/nowhere",
    "/r/\u00e9": "file", "/r/z\udcff": "file", "/r/e\u0301": "file",
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def paths(results: list[tuple[str, Any]]) -> list[str]:
    return [path for path, _st in results]


def fake_glob(pattern: str, **flags: Any) -> list[str]:
    return paths(run(glob(pattern, FakeFS(TREE), **flags)))


# -- matching -------------------------------------------------------------

@pytest.mark.parametrize("pattern, expected", [
    ("/r/?", ["/r/B", "/r/a", "/r/b"]),          # one byte: not "\u00e9"
    ("/r/[ab]", ["/r/a", "/r/b"]),
    ("/r/[!ab]", ["/r/B"]),
    ("/r/[a-b]*", ["/r/a", "/r/ab", "/r/b", "/r/back\\slash"]),
    ("/r/[b-a]", []),                         # an empty range
    ("/r/\\[ab]", ["/r/[ab]"]),               # escapes: literal
    ("/r/star\\*.txt", ["/r/star*.txt"]),
    ("/r/q\\?", ["/r/q?"]),
    ("/r/back\\\\slash", ["/r/back\\slash"]),
    ("/r/*\\", []),                           # trailing \ is literal
    ("/r/[[:upper:]]", ["/r/B"]),
    ("/r/[[:alpha:][:digit:]]", ["/r/B", "/r/a", "/r/b"]),
    ("/r/[![:lower:]]*", ["/r/B", "/r/[ab]", "/r/\u00e9"]),
    ("/r/[]ab]", ["/r/a", "/r/b"]),           # "]" first is a member
    ("/r/[!]a]*", ["/r/B", "/r/[ab]", "/r/b", "/r/back\\slash",
                   "/r/dangling", "/r/e\u0301", "/r/la", "/r/lsub",
                   "/r/q?", "/r/star*.txt", "/r/sub", "/r/z\udcff",
                   "/r/\u00e9"]),
    ("/r/[ab", []),                           # unclosed: literal "["
    ("/r/[", []),
    ("/r/**b", ["/r/ab", "/r/b", "/r/lsub", "/r/sub"]),
    ("/r/*a*b*", ["/r/[ab]", "/r/ab"]),
    ("/r/z?", ["/r/z\udcff"]),                # one byte, not a character
    ("/r/\u00e9", ["/r/\u00e9"]),
    ("/r/?\u0301", ["/r/e\u0301"]),
    ("/r/e?", []),                            # U+0301 is two bytes
    ("/r/e??", ["/r/e\u0301"]),
])
def test_match(pattern: str, expected: list[str]) -> None:
    assert fake_glob(pattern) == expected


def test_dotfiles_need_an_explicit_dot() -> None:
    assert "/r/.hidden" not in fake_glob("/r/*")
    assert fake_glob("/r/.*") == ["/r/.", "/r/..", "/r/.hidden"]
    assert fake_glob("/r/[.]*") == []
    assert fake_glob("/r/?hidden") == []
    assert fake_glob("/r/\\.h*") == ["/r/.hidden"]
    assert fake_glob("/r/sub/*") == ["/r/sub/deep", "/r/sub/x"]


def test_sorted_by_bytes() -> None:
    everything = fake_glob("/r/*")
    keys = [p.encode("utf-8", "surrogateescape") for p in everything]
    assert keys == sorted(keys)
    assert everything.index("/r/B") < everything.index("/r/a")
    # The byte 0xff (a lone U+DCFF) sorts after U+E000 (0xee 0x80 0x80)
    # by strcmp, although it comes first by code point.
    fs = FakeFS({"/d": "dir", "/d/\udcff": "file", "/d/\ue000": "file",
                 "/d/\u00e9": "file", "/d/z": "file"})
    assert paths(run(glob("/d/*", fs))) == [
        "/d/z", "/d/\u00e9", "/d/\ue000", "/d/\udcff"]


def test_nosort_keeps_listing_order() -> None:
    fs = FakeFS({"/d/c": "file", "/d/a": "file", "/d/b": "file",
                 "/d": "dir"}, listing_order=True)
    assert paths(run(glob("/d/*", fs, nosort=True))) == [
        "/d/c", "/d/a", "/d/b"]
    assert paths(run(glob("/d/*", fs))) == ["/d/a", "/d/b", "/d/c"]


# -- flags ----------------------------------------------------------------

def test_mark() -> None:
    assert fake_glob("/r/*sub", mark=True) == ["/r/lsub/", "/r/sub/"]
    assert fake_glob("/r/la", mark=True) == ["/r/la"]
    assert fake_glob("/r/dangling", mark=True) == ["/r/dangling"]
    assert fake_glob("/r/sub/", mark=True) == ["/r/sub/"]
    assert fake_glob("/r/sub//", mark=True) == ["/r/sub//"]
    assert fake_glob("/r/sub", mark=False) == ["/r/sub"]


def test_mark_stats() -> None:
    fs = FakeFS(TREE)
    results = dict(run(glob("/r/l*", fs, mark=True)))
    # A link's stat is the target's when stat(2) succeeds, as in glob.c.
    assert results["/r/lsub/"] == FakeStat("dir")
    assert results["/r/la"] == FakeStat("file")
    assert dict(run(glob("/r/la", fs)))["/r/la"] == FakeStat(
        "link", "/r/a")
    assert dict(run(glob("/r/dangling", fs, mark=True)))[
        "/r/dangling"] == FakeStat("link", "/nowhere")
    # stat is only asked for links, and only under GLOB_MARK.
    assert sorted(c[1] for c in fs.calls if c[0] == "stat") == [
        "/r/dangling", "/r/la", "/r/lsub"]


def test_literal_segments_are_not_listed() -> None:
    fs = FakeFS(TREE)
    assert paths(run(glob("/r/sub/deep/z", fs))) == ["/r/sub/deep/z"]
    assert fs.calls == [("lstat", "/r/sub/deep/z")]
    fs = FakeFS(TREE)
    assert paths(run(glob("/r/s*/deep/?", fs))) == ["/r/sub/deep/z"]
    # "star*.txt" matches "s*" too: its "deep/" is listed (and fails).
    assert sorted(c for c in fs.calls if c[0] == "scandir") == [
        ("scandir", "/r/"), ("scandir", "/r/star*.txt/deep/"),
        ("scandir", "/r/sub/deep/")]


def test_nocheck() -> None:
    assert fake_glob("/r/nomatch*", nocheck=True) == ["/r/nomatch*"]
    # Escapes are removed from the returned pattern, as glob.c does.
    assert fake_glob("/r/no\\*match\\", nocheck=True) == [
        "/r/no*match\\"]
    results = run(glob("/r/x*", FakeFS(TREE), nocheck=True))
    assert results == [("/r/x*", None)]
    assert match_count(results) == 0
    assert fake_glob("", nocheck=True) == [""]
    assert fake_glob("") == []


def test_nocheck_mark_names_a_directory() -> None:
    fs = FakeFS({"/d": "dir", "/d/[x]": "dir"})
    # "[x]" matches only "x"; the pattern itself names a directory.
    assert paths(run(glob("/d/[x]", fs, nocheck=True, mark=True))) == [
        "/d/[x]/"]
    assert paths(run(glob("/d/[x]", fs, nocheck=True, mark=True,
                          mark_nocheck=False))) == ["/d/[x]"]
    assert paths(run(glob("/d/[x]", fs, nocheck=True))) == ["/d/[x]"]
    assert fake_glob("/r/nomatch", nocheck=True, mark=True) == [
        "/r/nomatch"]


def test_brace() -> None:
    assert fake_glob("/r/{b,a}", brace=True) == ["/r/b", "/r/a"]
    assert fake_glob("/r/{b,a}") == []
    assert fake_glob("/r/{a,b}{,b}", brace=True) == [
        "/r/a", "/r/ab", "/r/b"]
    assert fake_glob("/r/{s{u,x}b,a}", brace=True) == ["/r/sub", "/r/a"]
    assert fake_glob("/r/{[ab],B}", brace=True) == [
        "/r/a", "/r/b", "/r/B"]
    # glob.c quirks: unbalanced braces glob the text before the brace;
    # a "[" in an alternative drops the text before it; "{}" expands to
    # nothing inside a pattern.
    assert fake_glob("/r/a{b", brace=True) == ["/r/a"]
    assert fake_glob("/r/{x[ab],b}", brace=True) == [
        "/r/a", "/r/b", "/r/b"]
    assert fake_glob("/r/sub{}", brace=True) == ["/r/sub"]
    assert fake_glob("{}", brace=True, nocheck=True) == ["{}"]
    # Each alternative is sorted and NOCHECKed on its own.
    assert fake_glob("/r/{?,zz}", brace=True, nocheck=True) == [
        "/r/B", "/r/a", "/r/b", "/r/zz"]
    assert fake_glob("/r/\\{a,b}", brace=True, nocheck=True) == [
        "/r/{a,b}"]


def test_on_error_and_listing_failures() -> None:
    errors: list[tuple[str, str]] = []
    fs = FakeFS(TREE, broken=("/r/sub/",))
    found = paths(run(glob(
        "/r/*sub/?", fs, on_error=lambda p, e: errors.append((p, str(e))))))
    assert found == ["/r/lsub/x"]
    assert paths(run(glob("/*/*/x", fs))) == ["/r/lsub/x", "/r/sub/x"]
    assert errors == [("/r/sub/", "[Errno 2] No such file or directory")]
    errors.clear()
    assert fake_glob("/nonexist/*") == []
    run(glob("/nonexist/*", FakeFS(TREE),
             on_error=lambda p, e: errors.append((p, type(e).__name__))))
    assert errors == [("/nonexist/", "FileNotFoundError")]


def test_trust_scandir_stat() -> None:
    fs = FakeFS(TREE)
    found = paths(run(glob("/r/*", fs, mark=True, trust_scandir_stat=True)))
    assert found == paths(run(glob("/r/*", FakeFS(TREE), mark=True)))
    assert not [c for c in fs.calls if c[0] == "lstat"]


def test_concurrency_does_not_change_results() -> None:
    tree = {"/t": "dir"}
    for i in range(40):
        tree[f"/t/d{i:02}"] = "dir"
        for j in range(5):
            tree[f"/t/d{i:02}/f{j}"] = "file"
    fs = FakeFS(tree, listing_order=True)
    errors: list[str] = []
    fs.broken = ("/t/d07/", "/t/d31/")
    one = run(glob("/t/*/f?", fs, nosort=True, concurrency=1,
                   on_error=lambda p, e: errors.append(p)))
    many = run(glob("/t/*/f?", fs, nosort=True, concurrency=7,
                    on_error=lambda p, e: errors.append(p)))
    assert one == many and len(one) == 38 * 5
    assert errors == ["/t/d07/", "/t/d31/"] * 2


def test_long_patterns_match_nothing() -> None:
    long = "/r/" + "a" * (PATH_MAX - 3)
    assert fake_glob(long, nocheck=True) == []
    assert fake_glob(long[:-1], nocheck=True) == [long[:-1]]


# -- the local file system, against Python and the real sftp --------------

def make_tree(root: Path) -> None:
    """Odd names (files, directories and links) under *root*."""
    names = ["a", "b", "B", "ab", "a b", "star*.txt", "q?", "[ab]",
             "back\\slash.txt", "#hash", "x#y", "a{b", ".hidden", "-dash",
             "\u00e9", "e\u0301", "caf\u00e9.txt", "it's", 'say"hi"']
    for name in names:
        (root / name).write_text(name)
    os.mkdir(os.fsencode(root) + b"/raw\xff")
    (root / "sub" / "deep").mkdir(parents=True)
    for name in ("x", ".y", "deep/z"):
        (root / "sub" / name).write_text(name)
    (root / "lsub").symlink_to("sub")
    (root / "la").symlink_to("a")
    (root / "dangling").symlink_to("nowhere")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = Path(os.path.realpath(tmp_path / "tree"))
    root.mkdir()
    make_tree(root)
    return root


@pytest.mark.parametrize("pattern", [
    "*", "[ab]", "[!ab]*", "*[ab]", "sub/*", "*/*", "*/d*/?",
    "[[]ab]", "[a-c]", "*.txt", "l*",
])
def test_local_agrees_with_fnmatch(tree: Path, pattern: str) -> None:
    # Where the two agree (no dotfiles involved, no escapes, no "?"
    # against multibyte names), glob(3) lists what a walk filtered with
    # fnmatchcase finds.
    found = paths(run(glob(str(tree) + "/" + pattern, LocalGlobFS())))
    expected = []
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=True):
        rel = os.path.relpath(dirpath, tree)
        for name in dirnames + filenames:
            path = name if rel == "." else f"{rel}/{name}"
            parts = path.split("/")
            if any(p.startswith(".") for p in parts):
                continue
            if len(parts) == pattern.count("/") + 1 and \
                    fnmatch.fnmatchcase(path, pattern):
                expected.append(f"{tree}/{path}")
    assert sorted(found, key=os.fsencode) == found
    assert sorted(found) == sorted(set(expected))


def test_local_relative_patterns(tree: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tree)
    found = paths(run(glob("s*/*", LocalGlobFS(), mark=True)))
    assert found == ["sub/deep/", "sub/x"]
    assert paths(run(glob(".*", LocalGlobFS()))) == [".", "..", ".hidden"]
    errors: list[str] = []
    run(glob("nonexist/*", LocalGlobFS(),
             on_error=lambda p, e: errors.append(p)))
    assert errors == ["nonexist/"]


def unvis_octal(text: str) -> str:
    """Undo the \\ooo escapes of sftp's mprintf (backslashes stay)."""
    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]),
                 text.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "surrogateescape")


def unvis_log(text: str) -> str:
    """Undo the strnvis of sftp's log messages."""
    text = text.replace("\\\\", "\0")
    return unvis_octal(text).replace("\0", "\\")


def sftp_lines(sftp_cmd: list[str], cwd: Path, line: str, *,
               batch: bool = True) -> tuple[list[str], list[str]]:
    """Run one command line; return its stdout (no echo) and stderr."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    args = sftp_cmd + (["-b", "-"] if batch else [])
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                          input=line.encode("utf-8", "surrogateescape")
                          + b"\n", timeout=30, check=False)
    out = [unvis_octal(x) for x in proc.stdout.decode(
        "utf-8", "surrogateescape").splitlines()
        if not x.startswith("sftp> ")]
    err = [unvis_log(x.rstrip("\r")) for x in proc.stderr.decode(
        "utf-8", "surrogateescape").splitlines()
        if not x.startswith("Attached to ")]
    return out, err


GET_PATTERNS = [
    "*", ".*", "?", "[ab]", "[!ab]*", "\\[ab]", '"[ab]"', "star\\*.txt",
    "'q?'", "*\\?", "sub", "sub/", "sub/*", "sub/.*", "*/x", "*/*",
    "lsub", "lsub/*", "l*", "dangling", "nomatch", "nomatch*",
    "[[:upper:]]", "[[:alpha:]]*", "[a-c]", "[c-a]", "[]ab]", "[!]a]*",
    "a{b", "*/", "*[", "\u00e9", "e?", "e??", "raw?", "raw*/", "caf*",
    "it\\'s", "'say\"hi\"'", "*#x", "\\#*", "'#'*", "sub//x", "./a",
    "../tree/[ab]", "sub/deep/../x", "*/deep/?", "[[:foo:]]", "s*/d*/",
    "-- -d*", "\\-*",
]


def predict_get(pattern: str, cwd: Path, local: Path
                ) -> tuple[list[str], list[str]]:
    """What ``get <pattern>`` prints, from our tokenizer and glob."""
    try:
        words = tokenize("get " + pattern)
        _flags, operands = getopt("get", words[1:], "afPpRr")
    except GrammarError as exc:
        return [], [str(exc)]
    absolute = make_absolute_glob(operands[0], str(cwd))
    err: list[str] = []
    results = run(glob(absolute, LocalGlobFS(), mark=True, on_error=(
        lambda path, _exc: err.append(
            f'remote readdir("{path}"): No such file or directory'))))
    if not results:
        return [], err + [f'File "{absolute}" not found.']
    out = []
    for path, _st in results:
        out.append(f"Fetching {path} to {basename(path)}")
        if path.endswith("/"):
            err.append(f"download {path}: not a regular file")
    return out, err


def test_get_matches_sftp(sftp_cmd: list[str], tree: Path,
                          tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    for pattern in GET_PATTERNS:
        for name in os.listdir(local):
            os.unlink(local / name)
        out, err = sftp_lines(sftp_cmd, local,
                              f"cd {tree}\nget {pattern}", batch=False)
        expected_out, expected_err = predict_get(pattern, tree, local)
        assert out == expected_out, pattern
        # Downloading the dangling link fails later ("stat remote: ..."):
        # only the lines about the glob and its results are compared.
        assert [e for e in err if not e.startswith("stat remote:")] == (
            expected_err), pattern


RM_PATTERNS = [
    "nomatch*", "no\\*match", "'q?*'", '"[x]"', "[x", "a\\b\\", "x\\\\y*",
    "[[:foo:]]", "{a,b}", "sp\\ ace?", "\u00e9*", "*/x",
]


def test_rm_nocheck_matches_sftp(sftp_cmd: list[str], tmp_path: Path) -> None:
    empty = Path(os.path.realpath(tmp_path / "empty"))
    empty.mkdir()
    for pattern in RM_PATTERNS:
        _out, err = sftp_lines(sftp_cmd, empty, f"rm {pattern}")
        word = tokenize("rm " + pattern)[1]
        results = run(glob(make_absolute_glob(word, str(empty)),
                           LocalGlobFS(), nocheck=True))
        assert err == [f"remote delete {path}: No such file or directory"
                       for path, _st in results], pattern


LS_PATTERNS = ["{a,b}", "{b,[ab]}", "{x[ab],b}", "a{b", "{s*,l*}",
               "[[:alpha:]]", "{q?,sub/x}", "s{u,t}*"]


def test_ls_brace_matches_sftp(sftp_cmd: list[str], tree: Path) -> None:
    for pattern in LS_PATTERNS:
        out, err = sftp_lines(sftp_cmd, tree, f"ls -1 {pattern}")
        word = tokenize("ls " + pattern)[1]
        results = run(glob(make_absolute_glob(word, str(tree)),
                           LocalGlobFS(), brace=True, mark=True,
                           nocheck=True, nosort=True))
        names = sorted((path_strip(p, str(tree)) for p, _st in results),
                       key=os.fsencode)
        assert (out, err) == (names, []), pattern
