"""Trees of small files do not look for what cannot be there.

* A ``get -r`` into a directory it has just made looks for no old file,
  link or journal beside each file: nothing can be there.
* A ``put`` lists the upload journals once per command instead of once
  per file; a journal of a rewritten source is still found and removed
  with its temporary.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from psftp_shell.core.paths import path_append
from psftp_shell.engine import trees
from psftp_shell.filecopy import journal
from tests import test_parallel
from tests.test_engine import Rig, rig, within
from tests.test_parallel import CHUNK, PRig, leftovers, payload, stop_after

prig = test_parallel.prig
FILES = 12

__all__ = ["rig"]       # the fixture, used by name


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    for number in range(FILES):
        (root / "sub" / f"f{number}").write_bytes(b"%d" % number * 100)


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
              under: Path) -> list[str]:
    """Count *owner.name* calls whose first argument is under *under*."""
    seen: list[str] = []
    real: Callable[..., Any] = getattr(owner, name)

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).startswith(str(under)):
            seen.append(str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(owner, name, counted)
    return seen


async def _get_tree(rig: Rig, dest: Path) -> bool:
    return await within(rig.engine.download_dir(
        str(rig.remote / "tree"), str(dest), None, preserve=False,
        resume=False, fsync=False))


async def test_a_tree_into_a_new_directory_looks_for_nothing(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(rig.remote / "tree")
    dest = rig.local / "copy"
    looks = _counting(monkeypatch, os, "lstat", dest)
    looks += _counting(monkeypatch, os, "stat", dest)
    journals = _counting(monkeypatch, journal, "load",
                         Path(journal.state_dir(os.environ)))
    assert await _get_tree(rig, dest)
    assert sorted(p.name for p in (dest / "sub").iterdir()) == sorted(
        f"f{n}" for n in range(FILES))
    assert (dest / "sub" / "f3").read_bytes() == b"3" * 100
    assert journals == []
    assert [p for p in looks if "/sub/f" in p] == []
    # into the same directories again: every file is looked at
    assert await _get_tree(rig, dest)
    assert len({p for p in looks if "/sub/f" in p}) == FILES
    assert len(set(journals)) == FILES     # one journal looked for each


async def test_a_put_lists_the_journals_once(
        rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(rig.local / "tree")
    state = journal.state_dir(os.environ)
    os.makedirs(state, exist_ok=True)
    listed = _counting(monkeypatch, os, "listdir", Path(state))
    assert await within(rig.engine.upload_dir(
        str(rig.local / "tree"), str(rig.remote / "tree"), preserve=False,
        resume=False, fsync=False))
    assert (rig.remote / "tree" / "sub" / "f7").read_bytes() == b"7" * 100
    assert len(listed) == 1


async def test_a_stale_journal_in_a_tree_is_still_removed(
        prig: PRig, tmp_path: Path) -> None:
    tree = prig.local / "tree"
    tree.mkdir()
    (tree / "small").write_bytes(b"s" * 10)
    (tree / "f").write_bytes(payload(40 * CHUNK + 3))
    (prig.remote / "dst").mkdir()
    stop_after(prig, 10 * CHUNK)
    assert not await prig.put(str(tree / "f"), "dst/f")
    prig.engine.is_interrupted = lambda: False
    prig.seen.on_advance = None
    kept = leftovers(prig.remote / "dst")
    state = tmp_path / "state" / "psftp-shell" / "journal"
    assert len(kept) == 1 and len(list(state.iterdir())) == 1
    newer = payload(30 * CHUNK, seed=5)
    (tree / "f").write_bytes(newer)
    assert await within(prig.engine.upload_dir(
        str(tree), str(prig.remote / "dst"), preserve=False, resume=False,
        fsync=False))
    assert (prig.remote / "dst" / "f").read_bytes() == newer
    assert leftovers(prig.remote / "dst") == []
    assert list(state.iterdir()) == []
    assert f"Removed {kept[0]} (" in prig.messages()


async def test_a_file_named_as_a_directory_just_made_fails_as_in_sftp(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing with a directory ``Sub`` and then a file ``sub``, on a
    local file system that does not tell case apart (simulated): the
    file meets the directory at its open, as sftp's does, and nothing
    of it is copied (it failed only at the final rename)."""
    tree = rig.remote / "tree"
    (tree / "Sub").mkdir(parents=True)
    (tree / "Sub" / "inner").write_bytes(b"in")
    (tree / "sub").write_bytes(b"x" * 300_000)
    listing = trees.read_directory

    async def dirs_first(*args: Any, **kwargs: Any) -> Any:
        names = await listing(*args, **kwargs)
        return sorted(names, key=lambda n: not n.attrs.is_dir())

    def folded(base: str, name: str) -> str:
        joined = path_append(base, name)
        return joined.lower() if base.startswith("copy") else joined
    monkeypatch.setattr(trees, "read_directory", dirs_first)
    monkeypatch.setattr(trees, "path_append", folded)
    assert not await within(rig.engine.download_dir(
        str(tree), "copy", None, preserve=False, resume=False,
        fsync=False))
    errors = rig.stderr.getvalue().decode()
    assert 'open local "copy/sub": Is a directory' in errors
    assert "rename" not in errors
    assert sorted(os.listdir(rig.local / "copy" / "sub")) == ["inner"]
