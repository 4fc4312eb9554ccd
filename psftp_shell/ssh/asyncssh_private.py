"""The check that guards every use of asyncssh's private internals.

A few speed-ups reach below asyncssh's public API (the login shortcuts
of :mod:`psftp_shell.ssh.quicklogin`).  asyncssh may change its internals in
any release, and psftp-shell lets every asyncssh release install, so each
such use names the private functions it relies on and the digest of
their source as reviewed.  At start-up the use is switched on only when
the installed asyncssh still has exactly that source; otherwise
psftp-shell keeps asyncssh's public behaviour: slower, the same result.

Digests are computed once per process, and only for an asyncssh release
not already reviewed (hashing the source costs tens of milliseconds).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class PrivateUse:
    """One use of asyncssh internals and what it was reviewed against.

    :param name: what the use is, for the debug log
    :param relies_on: returns the private functions and classes used
        (it may raise ImportError or AttributeError when they are gone)
    :param reviewed: asyncssh version -> source digest, as reviewed
    """

    name: str
    relies_on: Callable[[], Sequence[object]]
    reviewed: dict[str, str]
    _verdict: str | None = field(default=None, init=False)
    _checked: bool = field(default=False, init=False)

    def problem(self, version: str) -> str | None:
        """Why the use must stay off with asyncssh *version*, or None."""
        if not self._checked:
            self._verdict = self._judge(version)
            self._checked = True
        return self._verdict

    def _judge(self, version: str) -> str | None:
        try:
            objects = self.relies_on()
        except (ImportError, AttributeError) as exc:
            return f"asyncssh {version} lacks what it uses ({exc})"
        if version in self.reviewed:
            return None
        found = digest(objects)
        if found in self.reviewed.values():
            return None
        return (f"asyncssh {version} changed the internals it uses "
                f"(digest {found})")


def digest(objects: Sequence[object]) -> str:
    """A short digest of the source of *objects*, or 'no-source'."""
    sha = hashlib.sha256()
    for obj in objects:
        try:
            source = inspect.getsource(obj)  # type: ignore[arg-type]
        except (OSError, TypeError):
            return "no-source"
        lines = [line.rstrip() for line in source.splitlines()]
        sha.update("\n".join(line for line in lines if line).encode())
        sha.update(b"\0")
    return sha.hexdigest()[:16]
