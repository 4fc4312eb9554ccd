"""How the SSH layer asks the user.

On the terminal, through SSH_ASKPASS, or never (BatchMode):
prompters for passphrases, passwords, keyboard-interactive answers
and host-key questions, and the cache that lets the connections of
one session ask each question once.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import termios
import threading
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import IO, Protocol

DEFAULT_ASKPASS = "/usr/bin/ssh-askpass"


class PromptRefused(Exception):
    """Raised by a prompter that must not ask (``BatchMode yes``)."""


class Prompter(Protocol):
    """How the SSH layer talks to the user."""

    def ask(self, prompt: str, *, echo: bool) -> str:
        """Ask *prompt* and return the answer (blocking; run in a thread).

        An empty string means no answer, as ssh reads it: no password,
        skip this key, "no" to the host key question.
        """
        ...

    def tell(self, text: str) -> None:
        """Show the message *text* on stderr.

        *text* has no line end, or ends with ``\\n`` when ssh writes it
        itself rather than through its log (which ends lines with CR LF).
        """
        ...


def _write_message(stream: IO[str] | None, text: str) -> None:
    out = stream or sys.stderr
    if not text.endswith("\n"):
        text += "\r\n"
    elif out.isatty():
        text = text[:-1] + "\r\n"
    out.write(text)
    out.flush()


class TerminalPrompter:
    """Prompts on the controlling terminal, or through ``SSH_ASKPASS``.

    Follows ssh's ``read_passphrase``: ``SSH_ASKPASS_REQUIRE`` (force,
    prefer, never) and ``DISPLAY`` decide whether the askpass program may
    be used; without ``force`` or ``prefer`` it is used only when
    ``/dev/tty`` cannot be opened.  With neither, the answer is empty,
    which makes ssh's callers give up as ssh does.
    """

    def __init__(self, *, tty: str = "/dev/tty",
                 environ: Mapping[str, str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self._tty = tty
        self._environ = environ
        self._stderr = stderr
        self._cancelled = threading.Event()

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def tell(self, text: str) -> None:
        """Write *text* to stderr, ended as ssh's log ends it (CR LF)."""
        _write_message(self._stderr, text)

    def cancel(self) -> None:
        """Abandon a prompt in progress (called from another thread)."""
        self._cancelled.set()

    def ask(self, prompt: str, *, echo: bool) -> str:
        """Ask on the tty or through askpass, with ssh's rules."""
        self._cancelled.clear()
        env = self._env()
        allow_askpass = bool(env.get("DISPLAY"))
        use_askpass = False
        require = env.get("SSH_ASKPASS_REQUIRE", "").lower()
        if require == "force":
            use_askpass = allow_askpass = True
        elif require == "prefer":
            use_askpass = allow_askpass
        elif require == "never":
            allow_askpass = False
        fd = -1
        if not use_askpass:
            try:
                fd = os.open(self._tty, os.O_RDWR | os.O_NOCTTY)
            except OSError:
                use_askpass = True
        try:
            if use_askpass and allow_askpass:
                return self._askpass(prompt, env)
            if fd < 0:
                return ""
            return self._read_tty(fd, prompt, echo)
        finally:
            if fd >= 0:
                os.close(fd)

    def _askpass(self, prompt: str, env: Mapping[str, str]) -> str:
        program = env.get("SSH_ASKPASS") or DEFAULT_ASKPASS
        try:
            result = subprocess.run([program, prompt], stdout=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, check=False,
                                    env=dict(env))
        except OSError:
            return ""
        if result.returncode != 0:
            return ""
        text = result.stdout.decode(errors="replace")
        return text.split("\n", 1)[0].split("\r", 1)[0]

    def _read_tty(self, fd: int, prompt: str, echo: bool) -> str:
        try:
            saved = termios.tcgetattr(fd)
        except termios.error:
            saved = None
        os.write(fd, b"\r")
        if saved is not None and not echo:
            quiet = list(saved)
            quiet[3] &= ~(termios.ECHO | termios.ECHONL)
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        try:
            os.write(fd, prompt.encode())
            line = self._read_line(fd)
        finally:
            if saved is not None and not echo:
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
                os.write(fd, b"\n")
        return line.decode(errors="replace")

    def _read_line(self, fd: int) -> bytes:
        data = b""
        while b"\n" not in data and b"\r" not in data:
            if self._cancelled.is_set():
                raise PromptRefused("prompt cancelled")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            data += chunk
        return data.split(b"\n", 1)[0].split(b"\r", 1)[0]


class BatchPrompter:
    """A prompter for ``BatchMode yes``: it never asks."""

    def __init__(self, *, stderr: IO[str] | None = None) -> None:
        self._stderr = stderr

    def ask(self, prompt: str, *, echo: bool) -> str:
        """Refuse: batch mode never prompts."""
        raise PromptRefused(prompt)

    def tell(self, text: str) -> None:
        """Write *text* to stderr, ended as ssh's log ends it (CR LF)."""
        _write_message(self._stderr, text)


class SecretCache:
    """Answers shared by concurrent connections, each asked once.

    :meth:`get` holds a lock while it asks, so connections that want the
    same secret at the same time wait for the first one's answer.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._values: dict[Hashable, str] = {}

    async def get(self, key: Hashable, ask: Callable[[], Awaitable[str]],
                  *, reject: str | None = None) -> str:
        """Return the cached answer for *key*, or ask for one.

        *reject* is an answer the caller has just seen fail: if it is
        still the cached one, ask again.  Empty answers are not cached.
        """
        async with self._lock:
            value = self._values.get(key)
            if value is not None and value != reject:
                return value
            value = await ask()
            if value:
                self._values[key] = value
            else:
                self._values.pop(key, None)
            return value

    def forget(self, key: Hashable) -> None:
        """Drop the answer for *key*."""
        self._values.pop(key, None)
