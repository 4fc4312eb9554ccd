"""Logins that may neither ask nor tell the user anything.

An interactive session opens its ``-n`` streams in the background just
before its first prompt is drawn, while the user types: mostly by
taking the logins held beside the control login
(:mod:`psftp_shell.ssh.held_logins`), else by logging in then.  Those
logins reuse what the control login learnt (the host key, passwords and
passphrases, asked once for all streams); a login that would need a
question or print a message (a banner, a warning, a one-time code)
fails instead, and the streams are opened at the first transfer as they
always were, questions and messages included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from psftp_shell.ssh.connect import Connector
from psftp_shell.ssh.prompter import Prompter


class Unasked(Exception):
    """A quiet login needed an answer from the user."""


class HushedPrompter:
    """Stands in for the session's prompter: no question, no message.

    :attr:`spoke` turns true when a login wanted either; after
    :meth:`speak` everything goes to the real prompter again.
    """

    def __init__(self, inner: Prompter) -> None:
        self.inner = inner
        self.spoke = False
        self.quiet = True

    def speak(self) -> None:
        """Let logins ask and tell from now on (a transfer wants them)."""
        self.quiet = False

    def ask(self, prompt: str, *, echo: bool) -> str:
        """Refuse, and make the login fail (while quiet)."""
        if not self.quiet:
            return self.inner.ask(prompt, echo=echo)
        self.spoke = True
        raise Unasked(prompt)

    def tell(self, text: str) -> None:
        """Say nothing while quiet; remember that something was said."""
        if not self.quiet:
            self.inner.tell(text)
            return
        self.spoke = True

    def cancel(self) -> None:
        """Abandon the real prompter's question, if it asks one."""
        cancel = getattr(self.inner, "cancel", None)
        if callable(cancel):
            cancel()


def can_log_in_quietly(connector: Connector) -> bool:
    """Whether more logins can be tried without a word, after the first.

    Not when a login runs another program that may write to the terminal
    (ProxyCommand), goes through jump hosts (their own logins), prints
    ``-v``'s debug lines, or answered keyboard-interactive questions
    (one-time codes are not reusable: the stream would fail and count
    as a failed login on the server).
    """
    r = connector.resolved
    if r is None or r.proxy_command or r.jump or connector.target.verbose:
        return False
    return not connector.auth.kbdint_used


@contextlib.contextmanager
def quietly(connector: Connector) -> Iterator[HushedPrompter | None]:
    """The connector's logins stay silent inside (None: they cannot)."""
    if not can_log_in_quietly(connector):
        yield None
        return
    hushed = HushedPrompter(connector.prompter)
    connector.prompter = hushed
    try:
        yield hushed
    finally:
        connector.prompter = hushed.inner
