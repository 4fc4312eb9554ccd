"""Stream logins started beside the control login, held before they
authenticate.

The ``-n`` streams of a session that may ask the user something log in
after its control connection, with what that login learnt (the host
key, passwords and passphrases are asked once for all).  Started only
then, their logins followed it: a command typed as soon as the first
prompt showed waited for them (about 0.1 s on a LAN, a whole login on a
long path), where a batch script's streams log in beside the control
login because BatchMode asks nothing.

Held logins do beside it the part of a login that needs nothing from
the user.  They start when the control login offers a public key (the
server has taken that connection, its host key has passed, and the
login will most likely succeed without a question), and each makes its
TCP connection, exchanges keys, and checks the host key against the
known_hosts files alone.  Then it waits: it
sends nothing for its authentication, not even the user's name, until
the control login has succeeded (:meth:`HeldLogins.release`), and then
logs in with what that login was told; nothing is asked twice.  A
stream takes one (:meth:`HeldLogins.claim`) instead of logging in.

A held login never asks or tells the user anything: it runs with
:func:`current` set, and the connector refuses its questions and keeps
its messages (one the user was shown already, such as the banner every
login gets, is no news).  One whose host key is not simply known, that
the server dropped, or whose login wanted a word ends silently, and its
stream logs in afresh, as without held logins.

A held login given up costs the server's patience, so there are few,
briefly held, and only where they will most likely be used:

- at most :data:`MAX_HELD`: with the control login, that keeps this
  client's unauthenticated connections under sshd's MaxStartups (10 by
  default, above which it starts refusing new ones);
- none to a host whose key is not in known_hosts, nor for a login by
  password or keyboard-interactive alone (a mistyped answer fails it);
- given up unused after a keyboard-interactive login (its answers may
  be one-time codes);
- each held at most :data:`HOLD_SECONDS` seconds, well inside sshd's
  LoginGraceTime (120 s by default).

OpenSSH 9.8 and later count a connection closed without trying to
authenticate as a one-second "noauth" penalty against the client's
address, and refuse an address whose penalties add up to more than
15 s (PerSourcePenalties).  A session whose held logins are all given
up (its key was refused and then its login failed, used
keyboard-interactive, or waited for the user past the hold limit) adds
at most :data:`MAX_HELD` seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable

import asyncssh

from psftp_shell.sftp.request_core import retrieved

Login = Callable[["HeldLogin"], Awaitable[asyncssh.SSHClientConnection]]

MAX_HELD = 8
"""Logins a session holds at most (see the module docstring)."""
HOLD_SECONDS = 10.0
"""Seconds a held login waits for the control login before it gives
up."""


class HeldLoginLost(Exception):
    """A held login ended unclaimed, or wanted to ask or tell the user."""


_CURRENT: contextvars.ContextVar[HeldLogin | None] = contextvars.ContextVar(
    "held_login", default=None)


def current() -> HeldLogin | None:
    """The held login running here (asyncssh's callbacks run in its
    task's context), or None for any other login, or once it is over
    (its connection's callbacks keep the context)."""
    held = _CURRENT.get()
    return None if held is None or held.over else held


class HeldLogin:
    """One login held before it authenticates."""

    def __init__(self) -> None:
        self.gate: asyncio.Future[None] = \
            asyncio.get_running_loop().create_future()
        self.passed = False     # released, and its authentication began
        self.spoke = False      # its login wanted to ask or tell
        self.over = False       # its login has ended, one way or another
        self.task: asyncio.Future[asyncssh.SSHClientConnection] | None = \
            None

    async def wait(self) -> None:
        """Hold the login until it is released; HeldLoginLost after
        :data:`HOLD_SECONDS` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self.gate), HOLD_SECONDS)
        except TimeoutError:
            raise HeldLoginLost("held too long") from None
        self.passed = True

    def lost(self) -> HeldLoginLost | None:
        """The error that ends this login silently if it fails while
        held or wanted a word (None: it fails as any login does)."""
        return HeldLoginLost() if self.spoke or not self.passed else None

    def open(self) -> None:
        """Let the login authenticate."""
        if not self.gate.done():
            self.gate.set_result(None)

    async def run(self, login: Login) -> asyncssh.SSHClientConnection:
        """Run *login* for this one, marked as the :func:`current` one."""
        _CURRENT.set(self)      # in this task's own context
        try:
            return await login(self)
        finally:
            self.over = True


class HeldLogins:
    """A connector's held logins, claimed one per stream."""

    def __init__(self) -> None:
        self._held: list[HeldLogin] = []
        self._dropped: list[asyncio.Future[asyncssh.SSHClientConnection]] \
            = []

    def __len__(self) -> int:
        return len(self._held)

    def start(self, count: int, login: Login) -> None:
        """Start *count* logins (:data:`MAX_HELD` at most), each held
        by *login* before it authenticates (its client awaits
        :meth:`HeldLogin.wait`)."""
        for _ in range(min(count, MAX_HELD)):
            held = HeldLogin()
            held.task = asyncio.ensure_future(held.run(login))
            held.task.add_done_callback(retrieved)
            self._held.append(held)

    def release(self) -> None:
        """Let every held login authenticate (the control login has);
        one that wanted a word already is given up."""
        for held in list(self._held):
            if held.spoke:
                self._held.remove(held)
                self._give_up(held)
            else:
                held.open()

    async def claim(self) -> asyncssh.SSHClientConnection | None:
        """A held login's connection, once authenticated; None once none
        is left.  Those lost are passed over; one that fails to
        authenticate raises as a fresh login would.
        """
        while self._held:
            held = self._held.pop(0)
            assert held.task is not None
            if held.spoke:
                self._give_up(held)
                continue
            held.open()
            try:
                return await held.task
            except HeldLoginLost:
                continue
        return None

    def _give_up(self, held: HeldLogin) -> None:
        assert held.task is not None
        held.task.cancel()
        self._dropped.append(held.task)

    def drop(self) -> None:
        """Give up every held login (the control login failed, or
        nothing will claim them)."""
        for held in self._held:
            self._give_up(held)
        self._held.clear()

    async def close(self) -> None:
        """Drop the held logins and wait until they are gone."""
        self.drop()
        dropped, self._dropped = self._dropped, []
        for outcome in await asyncio.gather(*dropped,
                                            return_exceptions=True):
            if not isinstance(outcome, BaseException):
                outcome.close()     # it was done as it was dropped
                await outcome.wait_closed()
