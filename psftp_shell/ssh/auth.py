"""Client authentication the way ssh does it: prompts, secrets, identities.

A :class:`Prompter` asks the user questions (passwords, passphrases, the
host key question) and tells them things; :class:`TerminalPrompter` talks
to ``/dev/tty`` or ``SSH_ASKPASS`` with ssh's rules, :class:`BatchPrompter`
refuses to ask (``BatchMode yes``).  :class:`SecretCache` makes concurrent
connections ask once.  :class:`AuthContext` holds what every connection of
a session shares (answers, decrypted keys); :class:`AuthSession` drives one
connection's publickey, keyboard-interactive and password attempts.

Secrets are never logged, and never put on a command line or in the
environment.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, cast

import asyncssh

from psftp_shell.ssh.identities import (
    LazyKeyPair,
    identity_public_key,
    is_plain_key,
)
from psftp_shell.ssh.prompter import SecretCache

# ssh's identities when neither -i nor IdentityFile names any (9.2 order).
DEFAULT_IDENTITIES = (
    "~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
)


class LogLevel(IntEnum):
    """ssh's LogLevel; a message is shown when its level <= the setting.

    Messages that ssh prints whatever the level use ``QUIET``.
    """

    QUIET = 0
    FATAL = 1
    ERROR = 2
    INFO = 3
    VERBOSE = 4
    DEBUG1 = 5
    DEBUG2 = 6
    DEBUG3 = 7


def parse_log_level(name: str) -> LogLevel:
    """Return the level for a LogLevel value (``ValueError`` if bad)."""
    name = name.strip().upper()
    if name == "DEBUG":
        return LogLevel.DEBUG1
    try:
        return LogLevel[name]
    except KeyError:
        raise ValueError(f"unsupported log level {name!r}") from None


AskFn = Callable[[str, bool], Awaitable[str]]
NotifyFn = Callable[[LogLevel, str], None]


# ----------------------------------------------------------------------
# Identity files


@dataclass(slots=True)
class AuthSettings:
    """What authentication needs from the resolved configuration."""

    user: str
    host: str                     # as ssh names it in prompts
    batch: bool = False
    password_prompts: int = 3     # NumberOfPasswordPrompts
    identities: list[str] = field(default_factory=list)
    default_identities: bool = False    # ssh's defaults: missing is fine
    identities_only: bool = False
    agent_path: str | None = None
    certificates: list[str] = field(default_factory=list)


class AuthContext:
    """Authentication state shared by all connections of one session."""

    def __init__(self, settings: AuthSettings, ask: AskFn,
                 notify: NotifyFn) -> None:
        self.settings = settings
        self.cache = SecretCache()
        self._ask = ask
        self._notify = notify
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._key_lock = asyncio.Lock()
        self._missing_told: set[str] = set()
        self.mitm = False    # host key changed, StrictHostKeyChecking no
        self.kbdint_used = False    # keyboard-interactive questions seen

    def notify(self, level: LogLevel, text: str) -> None:
        """Pass a message to the user, subject to LogLevel."""
        self._notify(level, text)

    async def ask(self, prompt: str, echo: bool) -> str:
        """Ask the user (serialised and run off the event loop)."""
        return await self._ask(prompt, echo)

    def missing_identity(self, path: str) -> None:
        """Say once that a configured identity file does not exist."""
        if self.settings.default_identities or path in self._missing_told:
            return
        self._missing_told.add(path)
        self.notify(LogLevel.INFO, f"no such identity: {path}: "
                                   "No such file or directory")

    def session(self) -> AuthSession:
        """Return the per-connection authentication driver."""
        return AuthSession(self)

    async def private_key(self, path: str) -> asyncssh.SSHKey | None:
        """Load *path*'s private key, asking for its passphrase if needed.

        As ssh: try without a passphrase, then ask up to
        NumberOfPasswordPrompts times (never in batch mode); an empty
        answer skips the key.  A decrypted key is kept for later
        connections.
        """
        async with self._key_lock:
            if path in self._keys:
                return self._keys[path]
            key = await self._decrypt(path)
            if key is not None:
                self._keys[path] = key
            return key

    async def _decrypt(self, path: str) -> asyncssh.SSHKey | None:
        loop = asyncio.get_running_loop()
        read = functools.partial(asyncssh.read_private_key, path)
        try:
            return await loop.run_in_executor(None, read)
        except OSError as exc:
            self.notify(LogLevel.ERROR,
                        f'Load key "{path}": {exc.strerror or exc}')
            return None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError,
                ValueError) as exc:
            if "passphrase" not in str(exc).lower():
                self.notify(LogLevel.ERROR,
                            f'Load key "{path}": invalid format')
                return None
        if self.settings.batch:
            return None
        prompt = f"Enter passphrase for key '{path}': "
        tried: str | None = None
        for _ in range(self.settings.password_prompts):
            answer = await self.cache.get(
                ("passphrase", path),
                functools.partial(self.ask, prompt, False), reject=tried)
            if not answer:
                return None
            try:
                return await loop.run_in_executor(
                    None, functools.partial(asyncssh.read_private_key,
                                            path, answer))
            except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError,
                    ValueError):
                tried = answer
        return None


class AuthSession:
    """One connection's authentication attempts, in ssh's order."""

    def __init__(self, context: AuthContext) -> None:
        self._ctx = context
        self._queue: list[Callable[[], Awaitable[Any]]] | None = None
        self._agent: asyncssh.SSHAgentClient | None = None
        self._password_tries = 0
        self._last_password: str | None = None
        self._kbdint_tries = 0
        self._info_seen = False
        self._last_answers: dict[Hashable, str] = {}
        self.methods_seen: list[str] = []

    def close(self) -> None:
        """Release the agent connection, if any."""
        if self._agent is not None:
            self._agent.close()
            self._agent = None

    def _saw(self, method: str) -> None:
        if method not in self.methods_seen:
            self.methods_seen.append(method)

    # -- publickey -------------------------------------------------------

    async def next_key(self) -> asyncssh.SSHKeyPair | None:
        """Return the next key pair to offer, or ``None`` when done."""
        self._saw("publickey")
        if self._queue is None:
            self._queue = await self._plan_keys()
        while self._queue:
            make = self._queue.pop(0)
            found = await make()
            if isinstance(found, list):
                # a key with a certificate: offer both forms in turn
                self._queue[:0] = [_ready(kp) for kp in found[1:]]
                found = found[0] if found else None
            if found is not None:
                return cast(asyncssh.SSHKeyPair, found)
        self.close()
        return None

    async def _agent_keys(self) -> list[asyncssh.SSHKeyPair]:
        path = self._ctx.settings.agent_path
        if not path:
            return []
        try:
            self._agent = await asyncssh.connect_agent(path)
            return list(await self._agent.get_keys())
        except (OSError, asyncssh.Error, ValueError):
            self.close()
            return []

    async def _plan_keys(self) -> list[Callable[[], Awaitable[Any]]]:
        """Agent keys first (those named by identities first), then files."""
        settings = self._ctx.settings
        files = [(path, identity_public_key(path))
                 for path in settings.identities]
        agent = await self._agent_keys()
        by_data = {kp.public_data: kp for kp in agent}
        plan: list[Callable[[], Awaitable[Any]]] = []
        used: set[bytes] = set()
        for _, public in files:
            if public is not None and public.public_data in by_data:
                plan.append(_ready(by_data[public.public_data]))
                used.add(public.public_data)
        if not settings.identities_only:
            plan.extend(_ready(kp) for kp in agent
                        if kp.public_data not in used)
        for path, public in files:
            if public is not None and public.public_data in used:
                continue
            plan.append(functools.partial(self._file_key, path, public))
        return plan

    async def _file_key(self, path: str, public: asyncssh.SSHKey | None
                        ) -> asyncssh.SSHKeyPair | list[Any] | None:
        if not os.path.exists(path):
            self._ctx.missing_identity(path)
            return None
        if public is not None and not is_plain_key(path):
            return LazyKeyPair(public, path, self._ctx.private_key)
        key = await self._ctx.private_key(path)
        if key is None:
            return None
        cert = path + "-cert.pub"
        certs: Sequence[str] = [cert] if os.path.exists(cert) else []
        try:
            return list(asyncssh.load_keypairs([key], certlist=certs))
        except (OSError, asyncssh.KeyImportError, ValueError):
            return list(asyncssh.load_keypairs([key]))

    # -- password --------------------------------------------------------

    async def password(self) -> str | None:
        """Return a password to try, or ``None`` to stop (ssh's rules)."""
        self._saw("password")
        settings = self._ctx.settings
        if self._ctx.mitm or settings.batch:
            return None
        if self._password_tries >= settings.password_prompts:
            return None
        self._password_tries += 1
        if self._password_tries > 1:
            self._ctx.notify(LogLevel.ERROR,
                             "Permission denied, please try again.")
        prompt = f"{settings.user}@{settings.host}'s password: "
        answer = await self._ctx.cache.get(
            ("password", settings.user, settings.host),
            functools.partial(self._ctx.ask, prompt, False),
            reject=self._last_password)
        self._last_password = answer
        return answer

    # -- keyboard-interactive --------------------------------------------

    def kbdint_start(self) -> str | None:
        """Return the submethods to request, or ``None`` to skip."""
        self._saw("keyboard-interactive")
        settings = self._ctx.settings
        if self._ctx.mitm or settings.batch:
            return None
        if self._kbdint_tries >= settings.password_prompts:
            return None
        if self._kbdint_tries >= 1 and not self._info_seen:
            return None
        self._kbdint_tries += 1
        return ""

    async def kbdint_answers(self, name: str, instructions: str,
                             prompts: Sequence[tuple[str, bool]]
                             ) -> list[str]:
        """Answer a keyboard-interactive challenge, asking once per prompt."""
        self._info_seen = True
        if prompts:
            self._ctx.kbdint_used = True
        if name:
            self._ctx.notify(LogLevel.INFO, name)
        if instructions:
            self._ctx.notify(LogLevel.INFO, instructions)
        settings = self._ctx.settings
        answers: list[str] = []
        for prompt, echo in prompts:
            display = f"({settings.user}@{settings.host}) {prompt}"
            key = ("kbdint", settings.user, settings.host, prompt, echo)
            answer = await self._ctx.cache.get(
                key, functools.partial(self._ctx.ask, display, echo),
                reject=self._last_answers.get(key))
            self._last_answers[key] = answer
            answers.append(answer)
        return answers


def _ready(keypair: asyncssh.SSHKeyPair
           ) -> Callable[[], Awaitable[asyncssh.SSHKeyPair]]:
    async def give() -> asyncssh.SSHKeyPair:
        return keypair
    return give


