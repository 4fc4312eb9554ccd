"""Resume journals: which ranges of a parallel copy have arrived.

A chunked copy writes to a temporary file; when it stops before the end
(Ctrl-C, a lost connection) the temporary is kept and a journal records
the source, its size and mtime, the temporary's name and the ranges
done, so that ``reget``, ``reput`` or ``-a`` fetch exactly the rest.

Both are kept on the local side, under
``$XDG_STATE_HOME/psftp-shell/journal/``, never among the files copied
(where a server could send one, and a file of that name would be lost):

* for ``get``, named by a hash of the destination's path
  (``get-<hash>.json``);
* for ``put``, by a hash of the site, the remote path and the local
  file's size and mtime.

A journal that does not match the source any more is ignored (and
removed with its temporary); without one, resuming keeps sftp's meaning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from psftp_shell.filecopy.chunk_ranges import RangeSet

VERSION = 1
APP_NAME = "psftp-shell"


@dataclass(slots=True)
class Journal:
    """What a stopped copy left behind.

    :param source: the file read from (remote path for get, local
        absolute path for put)
    :param size: its size when the copy began
    :param mtime: its mtime then (seconds for get, nanoseconds for put)
    :param temp: the temporary the data went to
    :param done: the ranges of the temporary that hold the source's data
    """

    source: str
    size: int
    mtime: int | None
    temp: str
    done: RangeSet = field(default_factory=RangeSet)

    def to_text(self) -> str:
        """The journal as one JSON document."""
        return json.dumps({
            "version": VERSION, "source": self.source, "size": self.size,
            "mtime": self.mtime, "temp": self.temp,
            "done": [list(r) for r in self.done]}) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Journal | None:
        """Parse :meth:`to_text`'s output; None if it is not a journal."""
        try:
            data = json.loads(text)
            if data.get("version") != VERSION:
                return None
            mtime = data["mtime"]
            done = RangeSet((int(s), int(e)) for s, e in data["done"])
            return cls(str(data["source"]), int(data["size"]),
                       None if mtime is None else int(mtime),
                       str(data["temp"]), done)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def matches(self, source: str, size: int, mtime: int | None) -> bool:
        """Whether this journal is about *source* as it is now."""
        return (self.source, self.size, self.mtime) == (source, size, mtime)


def dropped_text(temp: str, nbytes: int, source: str, changed: bool
                 ) -> str:
    """What the user is told when a copy starts over and removes the
    temporary (with *nbytes* recorded) an interrupted copy left."""
    name = temp.rpartition("/")[2] or temp
    why = "it has changed since" if changed else "copying it again"
    return (f"Removed {name} ({nbytes} bytes) of an interrupted copy of "
            f"{source}: {why}")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def save(path: str, journal: Journal) -> bool:
    """Write *journal* to *path* atomically, making its directory (mode
    0700) if need be; False if that failed."""
    temp = f"{path}.new"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _encode(journal.to_text()))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return False
    return True


def load(path: str) -> Journal | None:
    """Read the journal at *path*; None if there is none (or garbage)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 22)
    except OSError:
        return None
    return Journal.from_text(raw.decode("utf-8", "surrogateescape"))


def remove(path: str) -> None:
    """Remove a journal, if it is there."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def state_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_STATE_HOME/psftp-shell/journal`` (``~/.local/state``)."""
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, APP_NAME, "journal")


def _digest(*parts: str) -> str:
    return hashlib.sha256(_encode("\0".join(parts))).hexdigest()


def download_path(environ: Mapping[str, str], final: str) -> str:
    """Where the journal of a download to the absolute path *final*
    lives: in :func:`state_dir`, named by a hash of that path."""
    key = _digest(os.path.normpath(final))[:32]
    return os.path.join(state_dir(environ), f"get-{key}.json")


def prune_downloads(keep: str) -> None:
    """Remove the download journals beside *keep* whose temporary is
    gone (the user removed it, or the directory it was in): kept in the
    state directory, they would otherwise stay for good.  Called when a
    download leaves a journal, which is rare enough to read them all."""
    head, name = os.path.split(keep)
    try:
        names = os.listdir(head)
    except OSError:
        return
    for other in names:
        if other == name or not (other.startswith("get-")
                                 and other.endswith(".json")):
            continue
        path = os.path.join(head, other)
        found = load(path)
        if found is not None and not os.path.lexists(found.temp):
            remove(path)


def upload_key(site: str, remote: str, size: int, mtime_ns: int) -> str:
    """The file name of an upload's journal in :func:`state_dir`: the
    target's part, then the source's (size and mtime)."""
    return (f"{_digest(site, remote)[:24]}-"
            f"{_digest(str(size), str(mtime_ns))[:12]}.json")


def _target_part(name: str) -> str:
    """The start of an upload journal's file name that names its target
    (:func:`upload_key`): shared by every upload to that target."""
    return name.partition("-")[0] + "-"


def other_uploads(path: str) -> list[str]:
    """The journals of other uploads to the target of the journal path
    *path*: of a source since rewritten (they can never be resumed)."""
    head, name = os.path.split(path)
    target = _target_part(name)
    try:
        names = os.listdir(head)
    except OSError:
        return []
    return [os.path.join(head, other) for other in names
            if other.startswith(target) and other != name
            and other.endswith(".json")]


def upload_path(environ: Mapping[str, str], site: str, remote: str,
                size: int, mtime_ns: int) -> str:
    """Where the journal of an upload of that file to *remote* lives."""
    return os.path.join(state_dir(environ),
                        upload_key(site, remote, size, mtime_ns))


class UploadJournals:
    """The upload journals of one command, listed once.

    A ``put`` of thousands of small files looked for journals of each
    (a directory listing, a hash of the state directory's path and an
    open) although there are rarely any: the listing is taken once, at
    the first file, and a file looks further only when it is named
    there.  A retried or resumed file still reads the directory itself
    (its own first try may have left a journal since).
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.dir = state_dir(environ)
        self._names: set[str] | None = None

    def path(self, site: str, remote: str, size: int, mtime_ns: int) -> str:
        """Where the journal of that upload lives (:func:`upload_path`)."""
        return os.path.join(self.dir,
                            upload_key(site, remote, size, mtime_ns))

    def _listed(self) -> set[str]:
        if self._names is None:
            try:
                self._names = set(os.listdir(self.dir))
            except OSError:
                self._names = set()
        return self._names

    def others(self, path: str) -> list[str]:
        """:func:`other_uploads`, from the listing."""
        target = _target_part(os.path.basename(path))
        if not any(n.startswith(target) for n in self._listed()):
            return []
        return other_uploads(path)

    def listed(self, path: str) -> bool:
        """Whether the journal *path* was there when listed."""
        return os.path.basename(path) in self._listed()
