"""Which differential fuzz lines would only show a deliberate difference.

psftp-shell replaces a remote file that a transfer overwrites (it
renames a temporary over it) where sftp rewrites it in place, and it
refuses ``cp f f`` where sftp truncates the file (README, *Known
differences*).  The lines that show those differences are sequences:

- a ``chown``/``chgrp`` of a remote file (to an owner other than the
  writer, root), then a ``put``/``mput``/``reput`` that replaces it:
  the new file is the writer's in psftp-shell, keeps its owner in sftp;
- a hard ``ln``, then a replacing upload of either name: psftp-shell
  breaks the link, sftp keeps it;
- a ``cp``/``copy`` whose source and target are one file (the same
  path, or names a link joins).

A long session gives owners to most names early (``chown 644 *``), so
dropping every upload that follows would drop nearly all of them.
:class:`Deliberate` follows the session and drops whichever side is
fewer lines: the replacing upload, or, when its marks would drop
:data:`CAUSE_LIMIT` uploads or more, the ``chown``/``chgrp``/``ln``
itself; and the copy onto itself.  It cannot know the remote working
directory or what a glob matches, so it works on names: a
``chown``/``chgrp`` *marks* every name of the session's vocabulary its
pattern's last component may match (none for owner 0, the writer), a
hard ``ln`` both names, and an upload may replace a marked name when
the last component of its source or target may match it (any name, when
recursive).  Links join names into one class (``ln_a`` names ``a``
from the start), a rename carries marks and links to the new name, and
a mark holds for the whole class.  ``cp`` is dropped for the same path,
or for last components one class holds when a link joins any of its
components.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable

from psftp_shell.shell.context import Invocation
from tests.fuzzlines import parsed

TREE_NAMES = ("a", "b.txt", "sp ace", "dir1", "f", "g.txt", "ln_a", "st*r",
              "e", "q'uote", "sub", "deep", "x", "dangling", "nowhere")
"""The basenames :func:`tests.fuzzlines.build_tree` makes."""

UPLOADS = ("put", "mput", "reput")
CAUSE_LIMIT = 2
"""Uploads a mark may drop before its cause is dropped instead."""
LINKS = ("ln", "symlink", "rename")
"""Commands after which two names may be one file (or the same file)."""


def last(path: str) -> str:
    """The last non-empty component of *path* ('' for none)."""
    parts = [part for part in path.split("/") if part]
    return parts[-1] if parts else ""


def _alternatives(pattern: str) -> list[str]:
    """*pattern* with its first ``{x,y}`` group expanded (recursively);
    the pattern as written is always among them."""
    found = re.search(r"\{([^{}]*)\}", pattern)
    if found is None or "," not in found.group(1):
        return [pattern]
    out = [pattern]
    for alt in found.group(1).split(","):
        out += _alternatives(pattern[:found.start()] + alt +
                             pattern[found.end():])
    return out


@functools.cache
def may_match(name: str, pattern: str) -> bool:
    """Whether glob *pattern* may match *name* (erring towards yes)."""
    if name == pattern or name == pattern.replace("\\", ""):
        return True
    for alt in _alternatives(pattern):
        text = re.sub(r"\\(.)", lambda m: "[" + m.group(1) + "]"
                      if m.group(1) in "*?[]" else m.group(1), alt)
        if fnmatch.fnmatchcase(name, text):
            return True
    return False


class Deliberate:
    """Follows one session's lines and says which to drop.

    :param lines: every line of the session, for the vocabulary of names
        its patterns are matched against
    """

    def __init__(self, lines: Iterable[bytes]) -> None:
        names = set(TREE_NAMES)
        for raw in lines:
            found = parsed(raw)
            if found is not None:
                for arg in found[1].args:
                    parts = [part for part in arg.split("/") if part]
                    names.update(parts)
                    names.update(part.replace("\\", "") for part in parts)
        self.names = frozenset(names)
        self.joined: dict[str, frozenset[str]] = {}
        self.marked: set[str] = set()
        self.join("a", "ln_a")

    def copy(self, marked: set[str]) -> Deliberate:
        """A tracker in this one's state with *marked* marked only."""
        other = Deliberate(())
        other.names, other.joined = self.names, dict(self.joined)
        other.marked = set(marked)
        return other

    def join(self, one: str, other: str) -> None:
        """Make *one* and *other* (names) one class."""
        group = self.group(one) | self.group(other)
        for name in group:
            self.joined[name] = group

    def group(self, name: str) -> frozenset[str]:
        """The class of *name* (itself alone when never joined)."""
        return self.joined.get(name, frozenset((name,)))

    def follow(self, cmd: str, inv: Invocation) -> None:
        """Take in a link or rename that *inv* may have made."""
        if cmd not in LINKS or len(inv.args) != 2:
            return
        old, new = (last(arg) for arg in inv.args)
        if cmd != "rename" or len(self.group(old)) > 1:
            self.join(old, new)         # a rename moves links along
        if self.group(old) & self.marked:
            self.marked.add(new)

    def marks(self, cmd: str, inv: Invocation) -> set[str]:
        """The names *inv* may give an owner or a second link."""
        if cmd in ("chown", "chgrp") and inv.number != 0 and inv.args:
            pattern = last(inv.args[0])
            return {name for name in self.names if may_match(name, pattern)}
        if cmd == "ln" and "s" not in inv.flags and len(inv.args) == 2:
            return {last(arg) for arg in inv.args}
        return set()

    def keep(self, lines: list[bytes]) -> list[bytes]:
        """*lines* less those that would show a deliberate difference.

        An upload over a marked name is dropped; a ``chown``, ``chgrp``
        or ``ln`` whose marks would drop :data:`CAUSE_LIMIT` uploads or
        more is dropped itself instead (one line, not many).
        """
        out = []
        for index, raw in enumerate(lines):
            found = parsed(raw)
            if found is None:
                out.append(raw)
                continue
            cmd, inv = found[0].name, found[1]
            marks = self.marks(cmd, inv)
            if marks and self.copy(marks).hits(lines[index + 1:]) >= \
                    CAUSE_LIMIT:
                continue
            self.marked |= marks
            self.follow(cmd, inv)
            if cmd in ("cp", "copy") and len(inv.args) == 2 and \
                    self.copies_onto_itself(*inv.args):
                continue
            if cmd in UPLOADS and self.replaces_marked(inv.args, inv.flags):
                continue
            out.append(raw)
        return out

    def hits(self, lines: list[bytes]) -> int:
        """How many of *lines* are uploads over the marked names (at most
        :data:`CAUSE_LIMIT`)."""
        count = 0
        for raw in lines:
            found = parsed(raw)
            if found is None:
                continue
            cmd, inv = found[0].name, found[1]
            self.follow(cmd, inv)
            if cmd in UPLOADS and self.replaces_marked(inv.args, inv.flags):
                count += 1
                if count >= CAUSE_LIMIT:
                    break
        return count

    def copies_onto_itself(self, old: str, new: str) -> bool:
        """Whether ``cp old new`` may copy a file onto itself.

        The same path, or the same last component (or last components a
        link joins) where a link joins any component's name to another.
        """
        if [p for p in old.split("/") if p] == [p for p in new.split("/")
                                                 if p]:
            return True
        return last(new) in self.group(last(old)) and any(
            len(self.group(part)) > 1
            for part in (old + "/" + new).split("/") if part)

    def replaces_marked(self, args: tuple[str, ...], flags: str) -> bool:
        """Whether an upload of *args* may write over a marked file.

        It writes the local matches' names (any name beneath them when
        recursive) in the target directory, or the target itself.
        """
        if not self.marked or not args:
            return False
        patterns = [last(args[0])]
        if len(args) > 1:
            patterns.append(last(args[1]))
        if {"r", "R"} & set(flags):
            patterns.append("*")
        hot = set().union(*(self.group(name) for name in self.marked))
        return any(may_match(name, pattern)
                   for name in hot for pattern in patterns)


def without_deliberate(lines: list[bytes]) -> list[bytes]:
    """*lines* less those :class:`Deliberate` says to drop."""
    return Deliberate(lines).keep(lines)
