"""The benchmark's data files: generated once, checked after every run.

Everything lives under one cache directory (``bench/.data`` unless
``PSFTP_BENCH_DATA`` says otherwise), which is also the private sshd's
start directory: sources under ``src/``, uploads land in ``up/`` and
downloads in ``down/``.  Contents are random, so compression and
deduplication cannot flatter anyone.  One run at a time uses it
(:func:`hold`): two at once would share the cores and each other's
copies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import IO

MIB = 1 << 20
KIB = 1 << 10


def data_dir() -> Path:
    """Return the cache directory, ``$PSFTP_BENCH_DATA`` or bench/.data."""
    env = os.environ.get("PSFTP_BENCH_DATA")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent / ".data"


def big_file(root: Path, mib: int) -> Path:
    """Return ``src/big-<mib>M.bin`` under *root*, creating it if needed."""
    path = root / "src" / f"big-{mib}M.bin"
    if path.is_file() and path.stat().st_size == mib * MIB:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        for _ in range(mib):
            out.write(os.urandom(MIB))
    tmp.replace(path)
    return path


def small_tree(root: Path, count: int, kib: int) -> Path:
    """Return a directory of *count* files of *kib* KiB, creating it."""
    path = root / "src" / f"small-{count}x{kib}K"
    names = [f"file-{i:04d}.bin" for i in range(count)]
    if path.is_dir() and sorted(p.name for p in path.iterdir()) == names \
            and all((path / n).stat().st_size == kib * KIB for n in names):
        return path
    shutil.rmtree(path, ignore_errors=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in names:
        (tmp / name).write_bytes(os.urandom(kib * KIB))
    tmp.replace(path)
    return path


MIXED_DIRS = 20
MIXED_BYTES = (100, 4096)


def mixed_sizes(count: int) -> list[int]:
    """The sizes of :func:`mixed_tree`'s files, always the same."""
    pick = random.Random(count)
    return [pick.randint(*MIXED_BYTES) for _ in range(count)]


def mixed_tree(root: Path, count: int) -> Path:
    """A tree of *count* files of 0.1 to 4 KB in 20 directories (what a
    source tree holds), creating it."""
    path = root / "src" / f"mixed-{count}"
    sizes = mixed_sizes(count)
    names = [f"d{i % MIXED_DIRS:02d}/f{i:05d}" for i in range(count)]
    if path.is_dir() and all(
            (path / n).is_file() and (path / n).stat().st_size == size
            for n, size in zip(names, sizes, strict=True)):
        return path
    shutil.rmtree(path, ignore_errors=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, size in zip(names, sizes, strict=True):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(os.urandom(size))
    tmp.replace(path)
    return path


def tree_size(path: Path) -> int:
    """Return the total size of the regular files under *path*."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def hold(root: Path) -> IO[bytes] | None:
    """Take the data directory *root* for this run: the open lock file,
    to keep open until the run ends; None if another run holds it."""
    lock = open(root / ".lock", "ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def remove(path: Path) -> None:
    """Remove a file or a directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class Checker:
    """Compare copies with their sources; sources are hashed only once."""

    def __init__(self) -> None:
        self._digests: dict[Path, str] = {}

    def _digest(self, path: Path, cache: bool) -> str:
        if cache and path in self._digests:
            return self._digests[path]
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if cache:
            self._digests[path] = digest
        return digest

    def same_file(self, src: Path, copy: Path) -> str:
        """Return "" if *copy* is byte-identical to *src*, else why not."""
        if not copy.is_file():
            return f"{copy.name} is missing"
        if copy.stat().st_size != src.stat().st_size:
            return (f"{copy.name} has {copy.stat().st_size} bytes, "
                    f"not {src.stat().st_size}")
        if self._digest(copy, False) != self._digest(src, True):
            return f"{copy.name} differs from its source"
        return ""

    def same_tree(self, src: Path, copy: Path) -> str:
        """Return "" if the tree *copy* mirrors *src* exactly, else why not."""
        if not copy.is_dir():
            return f"{copy.name} is missing"
        want = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
        got = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
        if want != got:
            return (f"{copy.name} holds {len(got)} entries, "
                    f"not {len(want)}")
        for rel in want:
            if (src / rel).is_file():
                why = self.same_file(src / rel, copy / rel)
                if why:
                    return why
        return ""

    def same(self, src: Path, copy: Path) -> str:
        """Compare a file or a tree; "" when identical."""
        if src.is_dir():
            return self.same_tree(src, copy)
        return self.same_file(src, copy)
