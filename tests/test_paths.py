"""Tests for psftp_shell.core.paths: joining, glob escapes, get/put targets.

basename is compared with glibc's POSIX basename (the one sftp links),
and the get/put destination rules with what the real sftp prints.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
from pathlib import Path

import pytest

from psftp_shell.core.paths import (
    basename,
    get_destination,
    glob_escape,
    has_glob_magic,
    is_absolute,
    is_marked_dir,
    local_against,
    make_absolute,
    make_absolute_glob,
    path_append,
    path_strip,
    put_destination,
    undo_glob_escape,
)
from psftp_shell.shell.globbing import LocalGlobFS, glob, match_count
from psftp_shell.shell.grammar import getopt, tokenize


@pytest.fixture
def sftp_cmd(sftp_bin: str, sftp_server_bin: str) -> list[str]:
    """The real sftp client, talking to a local sftp-server (``-D``)."""
    return [sftp_bin, "-D", sftp_server_bin]


@pytest.mark.parametrize("base, name, joined", [
    ("/home/u", "x", "/home/u/x"),
    ("/home/u/", "x", "/home/u/x"),
    ("/", "x", "/x"),
    ("", "x", "x"),
    ("/a", "", "/a/"),
    ("/a", "/b", "/a//b"),
])
def test_path_append(base: str, name: str, joined: str) -> None:
    assert path_append(base, name) == joined


@pytest.mark.parametrize("path, cwd, absolute", [
    ("x", "/home/u", "/home/u/x"),
    ("../x", "/home/u", "/home/u/../x"),      # no normalisation
    ("/etc/./x", "/home/u", "/etc/./x"),
    ("", "/home/u", "/home/u/"),
    ("x", "/", "/x"),
])
def test_make_absolute(path: str, cwd: str, absolute: str) -> None:
    assert make_absolute(path, cwd) == absolute
    assert is_absolute(absolute)
    assert not is_absolute(path) or path == absolute


def test_glob_escape_round_trip() -> None:
    text = "a[b]c?d*e\\f{g}"
    assert glob_escape(text) == "a\\[b\\]c\\?d\\*e\\\\f{g}"
    assert undo_glob_escape(glob_escape(text).replace("\\]", "]")) == text
    assert not has_glob_magic(glob_escape(text))


@pytest.mark.parametrize("text, undone", [
    ("\\?\\[\\*\\\\", "?[*\\"),
    ("\\a\\]\\ ", "\\a\\]\\ "),               # other pairs stay
    ("x\\", "x\\"),                           # a trailing \ stays
    ("\\\\*", "\\*"),
    ("plain", "plain"),
])
def test_undo_glob_escape(text: str, undone: str) -> None:
    assert undo_glob_escape(text) == undone


@pytest.mark.parametrize("text, magic", [
    ("a*", True), ("?", True), ("[x", True), ("\\*", False),
    ("\\\\*", True), ("a\\", False), ("{a,b}", False), ("]", False),
])
def test_has_glob_magic(text: str, magic: bool) -> None:
    assert has_glob_magic(text) is magic


def test_make_absolute_glob() -> None:
    assert make_absolute_glob("*.txt", "/w[1]/d*") == "/w\\[1\\]/d\\*/*.txt"
    assert make_absolute_glob("/abs*", "/w*") == "/abs*"
    assert make_absolute_glob(None, "/w?") == "/w\\?"


def libc_basename(path: str) -> str:
    libc = ctypes.CDLL(None)
    func = libc.__xpg_basename
    func.restype = ctypes.c_char_p
    func.argtypes = [ctypes.c_char_p]
    raw = func(ctypes.create_string_buffer(os.fsencode(path)))
    return os.fsdecode(raw)


@pytest.mark.parametrize("path", [
    "/a/b/", "/", "", "//", "a", "a//", "/a", "///x///", ".", "..",
    "x/./", "/srv/sub/", "/srv/../", "caf\u00e9/", "raw\udcff",
])
def test_basename_matches_libc(path: str) -> None:
    assert basename(path) == libc_basename(path)


@pytest.mark.parametrize("path, strip, stripped", [
    ("/home/u/x", "/home/u", "x"),
    ("/home/u/x", "/home/u/", "x"),
    ("/home/ux", "/home/u", "x"),             # sftp's prefix test
    ("/other/x", "/home/u", "/other/x"),
    ("/home/u/x", None, "/home/u/x"),
    ("/home/u/x", "", "/home/u/x"),
    ("/x", "/", "x"),
])
def test_path_strip(path: str, strip: str | None, stripped: str) -> None:
    assert path_strip(path, strip) == stripped


def test_is_marked_dir() -> None:
    assert is_marked_dir("/a/sub/")
    assert not is_marked_dir("/a/sub")


# -- get/put destinations against the real sftp ---------------------------

def sftp_run(sftp_cmd: list[str], cwd: Path, lines: list[str]
             ) -> tuple[list[str], list[str]]:
    """Run lines through a non-batch sftp; stdout (no echo), stderr."""
    proc = subprocess.run(
        sftp_cmd, cwd=cwd, capture_output=True,
        input="".join(line + "\n" for line in lines).encode(),
        env=dict(os.environ, LC_ALL="C.UTF-8"), timeout=30, check=False)
    out = [x for x in proc.stdout.decode().splitlines()
           if not x.startswith("sftp> ")]
    err = [x.rstrip("\r") for x in proc.stderr.decode().splitlines()
           if not x.startswith("Attached to ")]
    return out, err


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    """A remote tree and a local tree, each with files a, b and dir d."""
    roots = []
    for side in ("remote", "local"):
        root = Path(os.path.realpath(tmp_path / side))
        (root / "d").mkdir(parents=True)
        for name in ("a", "b"):
            (root / name).write_text(name)
        roots.append(root)
    return roots[0], roots[1]


GET_CASES = ["a", "a out", "a d", "a d/", "[ab] d", "[ab] nodir", "d d",
             "d/ .", "[ab]", "-- a d", "a 'd'"]


def predict_get(text: str, remote: Path, local: Path) -> list[str]:
    """The first line sftp prints for ``get <text>`` (ours)."""
    _flags, operands = getopt("get", tokenize(text), "afPpRr")
    dst = undo_glob_escape(operands[1]) if len(operands) > 1 else None
    pattern = make_absolute_glob(operands[0], str(remote))
    results = asyncio.run(glob(pattern, LocalGlobFS(), mark=True))
    count = match_count(results)
    dst_is_dir = dst is not None and (local / dst).is_dir()
    if count > 1 and dst is not None and not dst_is_dir:
        return [f'Multiple source paths, but destination "{dst}" '
                "is not a directory"]
    return [f"Fetching {path} to "
            + get_destination(path, dst, match_count=count,
                              dst_is_dir=dst_is_dir)
            for path, _st in results]


def test_get_destination_matches_sftp(sftp_cmd: list[str],
                                      sides: tuple[Path, Path]) -> None:
    remote, local = sides
    for text in GET_CASES:
        out, err = sftp_run(sftp_cmd, local, [f"cd {remote}", f"get {text}"])
        fetched = [x for x in out if x.startswith("Fetching ")]
        multiple = [x for x in err if x.startswith("Multiple ")]
        assert fetched + multiple == predict_get(text, remote, local), text
        for name in ("out", "d/a", "d/b", "d/d", "d/d"):
            if (local / name).is_file():
                (local / name).unlink()


PUT_CASES = ["a", "a d", "a d/", "a newname", "[ab] d", "[ab] newname",
             "[ab]", "d", "nomatch* d", "'[ab]' d", "a /abs/x"]


def predict_put(text: str, remote: Path, local: Path) -> list[str]:
    """The lines sftp prints for ``put <text>`` about targets (ours)."""
    _flags, operands = getopt("put", tokenize(text), "afPpRr")
    dst = undo_glob_escape(operands[1]) if len(operands) > 1 else None
    # put globs locally, relative to the process's cwd (here *local*).
    results = asyncio.run(glob(operands[0], LocalGlobFS(), mark=True,
                               nocheck=True, mark_nocheck=False))
    count = match_count(results)
    dst_abs = None if dst is None else make_absolute(dst, str(remote))
    dst_is_dir = dst_abs is not None and Path(dst_abs).is_dir()
    if count > 1 and dst_abs is not None and not dst_is_dir:
        return [f'Multiple paths match, but destination "{dst_abs}" '
                "is not a directory"]
    lines = []
    for path, _st in results:
        if not os.path.exists(path):
            lines.append(f"stat {path}: No such file or directory")
            continue
        target = put_destination(path, dst, str(remote), match_count=count,
                                 dst_is_dir=dst_is_dir)
        lines.append(f"Uploading {path} to {target}")
    return lines


def test_put_destination_matches_sftp(sftp_cmd: list[str],
                                      sides: tuple[Path, Path],
                                      monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    remote, local = sides
    monkeypatch.chdir(local)
    for text in PUT_CASES:
        out, err = sftp_run(sftp_cmd, local, [f"cd {remote}", f"put {text}"])
        lines = [x for x in out + err if x.startswith(
            ("Uploading ", "Multiple ", "stat "))]
        # stdout and stderr are read apart: compare them as sets of lines.
        assert sorted(lines) == sorted(predict_put(text, remote, local)), (
            text)
        for name in ("newname", "d/a", "d/b"):
            if (remote / name).is_file():
                (remote / name).unlink()


def test_local_paths_join_the_cwd_but_empty_stays_empty() -> None:
    assert local_against("/home/u", "a/b") == "/home/u/a/b"
    assert local_against("/home/u", "/etc/x") == "/etc/x"
    assert local_against("/home/u", "") == ""
