"""Host key checking as OpenSSH does it.

known_hosts files (user and global, hashed entries, ``[host]:port``
names, ``@revoked`` and ``@cert-authority`` markers) are read line by line
so that messages can name the file and line, with asyncssh's own
known_hosts matching deciding which lines are about a host.
:class:`HostKeyPolicy` applies ``StrictHostKeyChecking`` (yes, accept-new,
ask, no) to the key a server presents, records accepted keys (hashed when
``HashKnownHosts`` says so) and words every outcome as ssh does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import asyncssh

from psftp_shell.ssh.auth import AskFn, LogLevel, NotifyFn
from psftp_shell.ssh.hostkey_messages import (
    changed_key_warning,
    new_key_prompt,
    revoked_warning,
)
from psftp_shell.ssh.known_hosts import (
    KnownEntry,
    KnownHosts,
    Status,
    fingerprint,
    hostfile_name,
    key_type,
)

NO_PROXY_IP = "<no hostip for proxy command>"

Message = tuple[LogLevel, str]


class StrictMode(Enum):
    """``StrictHostKeyChecking`` values."""

    YES = "yes"
    ACCEPT_NEW = "accept-new"
    ASK = "ask"
    NO = "no"


def parse_strict(value: str) -> StrictMode:
    """Parse a StrictHostKeyChecking value as ssh does."""
    text = value.strip().lower()
    if text in ("yes", "true"):
        return StrictMode.YES
    if text in ("no", "false", "off"):
        return StrictMode.NO
    if text == "ask":
        return StrictMode.ASK
    if text == "accept-new":
        return StrictMode.ACCEPT_NEW
    raise ValueError(f"unsupported StrictHostKeyChecking value {value!r}")


VERIFY_FAILED = "Host key verification failed."


@dataclass(slots=True)
class Outcome:
    """What :meth:`HostKeyPolicy.validate` decided for one connection."""

    accepted: bool
    key: asyncssh.SSHKey | None = None
    failure: list[Message] = field(default_factory=list)
    question: str | None = None     # set when the user must be asked


@dataclass(slots=True)
class HostIdentity:
    """How ssh names the host in known_hosts and messages."""

    name: str                       # known_hosts name ([host]:port)
    fallback: str | None            # port-less name, or None
    ip: str                         # "[addr]:port", or NO_PROXY_IP
    recordable: bool = True


def host_identity(host: str, port: int, alias: str | None,
                  addr: str | None) -> HostIdentity:
    """Return the names ssh would use for *host* reached at *addr*."""
    name = hostfile_name(host, port, alias)
    fallback = host if (alias is None and port != 22) else None
    ip = hostfile_name(addr, port) if addr else NO_PROXY_IP
    recordable = not any(c in host for c in "@?*#[]|'\"\\")
    return HostIdentity(name, fallback, ip, recordable)


class HostKeyPolicy:
    """StrictHostKeyChecking for one session's connections to one host.

    :meth:`validate` runs inside asyncssh's key exchange and so cannot
    wait; when the user must be asked it refuses the key and leaves a
    question in the :class:`Outcome`, which the caller puts with
    :meth:`confirm` (once per key, however many connections ask) before
    connecting again.
    """

    def __init__(self, known: KnownHosts, mode: StrictMode, *,
                 hash_hosts: bool = False, batch: bool = False,
                 notify: NotifyFn, unsafe_notes: Sequence[str] = ()
                 ) -> None:
        self.known = known
        self.mode = mode
        self.hash_hosts = hash_hosts
        self.batch = batch
        self._notify = notify
        self._unsafe_notes = list(unsafe_notes)
        self._accepted: set[bytes] = set()
        self._refused: set[bytes] = set()
        self._unsafe: set[bytes] = set()
        self._lock = asyncio.Lock()
        self.mitm = False

    def known_hosts(self, ident: HostIdentity
                    ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey],
                               list[asyncssh.SSHKey]]:
        """Return asyncssh's (trusted, CA, revoked) keys for the host."""
        keys, cas = self.known.trusted(ident.name)
        return keys, cas, []

    def host_key_algorithms(self, ident: HostIdentity) -> list[bytes]:
        """Return the signature algorithms of the keys known for the host.

        ssh offers these first so that the server picks a known key.
        """
        algs: list[bytes] = []
        names = [ident.name] + ([ident.fallback] if ident.fallback else [])
        for name in names:
            for entry in self.known.lookup(name):
                if entry.marker is None:
                    algs += [a for a in entry.key.sig_algorithms
                             if a not in algs]
        return algs

    def validate(self, key: asyncssh.SSHKey,
                 ident: HostIdentity) -> Outcome:
        """Decide on a key that is not simply trusted (runs in the kex)."""
        data = key.public_data
        if data in self._accepted:
            return Outcome(True, key)
        if data in self._unsafe:
            self.mitm = True
            return Outcome(True, key)
        verdict = self.known.check(key, ident.name, ident.fallback)
        if verdict.status is Status.OK:
            return Outcome(True, key)
        if verdict.status is Status.REVOKED:
            return self._revoked(key, ident)
        if verdict.status is Status.CHANGED:
            assert verdict.offending is not None
            return self._changed(key, ident, verdict.offending)
        return self._new(key, ident)

    def _fail(self, key: asyncssh.SSHKey, lines: Sequence[Message]
              ) -> Outcome:
        return Outcome(False, key, [*lines, (LogLevel.FATAL, VERIFY_FAILED)])

    def _revoked(self, key: asyncssh.SSHKey, ident: HostIdentity
                 ) -> Outcome:
        text = revoked_warning(key, ident.name)
        if self.mode is not StrictMode.NO:
            text.append(f"{key_type(key)} host key for {ident.name} was "
                        "revoked and you have requested strict checking.")
            return self._fail(key, [(LogLevel.ERROR, t) for t in text])
        return self._continue_unsafe(key, text)

    def _changed(self, key: asyncssh.SSHKey, ident: HostIdentity,
                 offending: KnownEntry) -> Outcome:
        text = changed_key_warning(key, offending, self.known, ident.name)
        if self.mode is not StrictMode.NO:
            text.append(f"Host key for {ident.name} has changed and you "
                        "have requested strict checking.")
            return self._fail(key, [(LogLevel.ERROR, t) for t in text])
        return self._continue_unsafe(key, text)

    def _continue_unsafe(self, key: asyncssh.SSHKey,
                         text: list[str]) -> Outcome:
        for line in text + self._unsafe_notes:
            self._notify(LogLevel.ERROR, line)
        self._unsafe.add(key.public_data)
        self.mitm = True
        return Outcome(True, key)

    def _new(self, key: asyncssh.SSHKey, ident: HostIdentity) -> Outcome:
        if not self.known.user_files or not ident.recordable:
            return self._fail(key, [])
        if self.mode is StrictMode.YES:
            return self._fail(key, [(
                LogLevel.ERROR,
                f"No {key_type(key)} host key is known for {ident.name} "
                "and you have requested strict checking.")])
        if self.mode is StrictMode.ASK:
            if self.batch or key.public_data in self._refused:
                return self._fail(key, [])
            question = new_key_prompt(
                key, ident.name, ident.ip,
                self.known.other_names(key, ident.name))
            return Outcome(False, key, [(LogLevel.FATAL, VERIFY_FAILED)],
                           question)
        self._accept(key, ident)
        return Outcome(True, key)

    def _accept(self, key: asyncssh.SSHKey, ident: HostIdentity) -> None:
        self._accepted.add(key.public_data)
        if self.known.record(ident.name, key, hashed=self.hash_hosts):
            self._notify(LogLevel.INFO,
                         f"Warning: Permanently added '{ident.name}' "
                         f"({key_type(key)}) to the list of known hosts.")
        else:
            self._notify(LogLevel.INFO,
                         "Failed to add the host to the list of known hosts "
                         f"({self.known.user_files[0]}).")

    async def confirm(self, outcome: Outcome, ident: HostIdentity,
                      ask: AskFn) -> bool:
        """Put the host key question once; record the key on "yes".

        Connections that arrive with the same question while it is being
        asked wait for that answer instead of asking again.
        """
        key = outcome.key
        assert key is not None and outcome.question is not None
        async with self._lock:
            if key.public_data in self._accepted:
                return True
            if key.public_data in self._refused:
                return False
            if await self._ask_yes_no(outcome.question, fingerprint(key),
                                      ask):
                self._accept(key, ident)
                return True
            self._refused.add(key.public_data)
            return False

    @staticmethod
    async def _ask_yes_no(question: str, fp: str, ask: AskFn) -> bool:
        """ssh's ``confirm``: yes, no (or nothing), or the fingerprint."""
        prompt = question
        while True:
            answer = (await ask(prompt, True)).strip(" \t")
            answer = answer.split()[0] if answer.split() else ""
            if answer == "" or answer.lower() == "no":
                return False
            if answer.lower() == "yes" or answer == fp:
                return True
            prompt = "Please type 'yes', 'no' or the fingerprint: "
