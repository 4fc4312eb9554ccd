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
import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import asyncssh

from psftp_shell.auth import AskFn, LogLevel, NotifyFn

DEFAULT_USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts",
                        "/etc/ssh/ssh_known_hosts2")
NO_PROXY_IP = "<no hostip for proxy command>"
_MAX_OTHER_NAMES = 8
_BANNER = "@" * 59

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


def hostfile_name(host: str, port: int, alias: str | None = None) -> str:
    """Return the name a host's keys are filed under in known_hosts."""
    if alias:
        return alias
    return host if port == 22 else f"[{host}]:{port}"


def key_type(key: asyncssh.SSHKey) -> str:
    """Return ssh's name for a key's type (``ED25519``, ``RSA``, ...)."""
    alg = key.algorithm.decode("ascii", "replace")
    names = {
        "ssh-rsa": "RSA", "ssh-dss": "DSA", "ssh-ed25519": "ED25519",
        "ssh-ed448": "ED448", "sk-ssh-ed25519@openssh.com": "ED25519-SK",
        "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
    }
    if alg in names:
        return names[alg]
    if alg.startswith("ecdsa-sha2-"):
        return "ECDSA"
    return alg.upper()


def fingerprint(key: asyncssh.SSHKey) -> str:
    """Return the ``SHA256:...`` fingerprint ssh shows."""
    return str(key.get_fingerprint("sha256"))


def hash_hostname(name: str, salt: bytes | None = None) -> str:
    """Return the ``|1|salt|hash`` form of *name* (HashKnownHosts)."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return ("|1|" + base64.b64encode(salt).decode() + "|"
            + base64.b64encode(digest).decode())


@dataclass(frozen=True, slots=True)
class KnownEntry:
    """One usable line of a known_hosts file."""

    path: str
    line: int
    hosts: str
    marker: str | None
    key: asyncssh.SSHKey
    matcher: asyncssh.SSHKnownHosts

    def matches(self, name: str) -> bool:
        """Return whether this line is about host *name*."""
        return any(self.matcher.match(name, "", None)[:3])

    @property
    def hashed(self) -> bool:
        """Whether the host names are hashed."""
        return self.hosts.startswith("|")


def read_known_hosts_file(path: str) -> list[KnownEntry]:
    """Return the entries of one known_hosts file; bad lines are skipped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return []
    entries = []
    for number, raw in enumerate(lines, 1):
        entry = _parse_line(path, number, raw)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_line(path: str, number: int, raw: str) -> KnownEntry | None:
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    marker = None
    parts = line.split(None, 1)
    if parts[0].startswith("@"):
        marker = parts[0][1:]
        if marker not in ("revoked", "cert-authority") or len(parts) < 2:
            return None
        parts = parts[1].split(None, 1)
    if len(parts) < 2:
        return None
    hosts, keytext = parts
    try:
        key = asyncssh.import_public_key(keytext)
        matcher = asyncssh.import_known_hosts(f"{hosts} {keytext}")
    except (asyncssh.KeyImportError, ValueError):
        return None
    return KnownEntry(path, number, hosts, marker, key, matcher)


def _same_key(one: asyncssh.SSHKey, two: asyncssh.SSHKey) -> bool:
    return bool(one.public_data == two.public_data)


def _tilde(path: str) -> str:
    home = os.environ.get("HOME", "")
    if not home or not path.startswith("/"):
        return path
    home = home.rstrip("/") or "/"
    if path == home:
        return "~/"
    if path.startswith(home + "/"):
        return "~/" + path[len(home) + 1:]
    return path


class Status(Enum):
    """How a presented key relates to what is known."""

    OK = "ok"
    NEW = "new"
    CHANGED = "changed"
    REVOKED = "revoked"


@dataclass(slots=True)
class Verdict:
    """The known_hosts answer about one key."""

    status: Status
    offending: KnownEntry | None = None


class KnownHosts:
    """The user and global known_hosts files of one session."""

    def __init__(self, user_files: Sequence[str],
                 global_files: Sequence[str]) -> None:
        self.user_files = [os.path.expanduser(p) for p in user_files]
        self.global_files = [os.path.expanduser(p) for p in global_files]
        self._entries: list[KnownEntry] | None = None

    def entries(self) -> list[KnownEntry]:
        """Every entry, user files first, read once."""
        if self._entries is None:
            self._entries = []
            for path in self.user_files + self.global_files:
                self._entries.extend(read_known_hosts_file(path))
        return self._entries

    def lookup(self, name: str) -> list[KnownEntry]:
        """Return the entries about *name*, in file order."""
        return [e for e in self.entries() if e.matches(name)]

    def check(self, key: asyncssh.SSHKey, name: str,
              fallback: str | None = None) -> Verdict:
        """Classify *key* for *name*, as ssh's ``check_host_key`` does.

        Any known key for the name other than *key* makes it CHANGED,
        whatever its type, and the last such line is the offending one.
        *fallback* is the port-less name tried for a new key on a
        non-standard port (ssh accepts a key known there).
        """
        found = self.lookup(name)
        for entry in found:
            if entry.marker == "revoked" and _same_key(entry.key, key):
                return Verdict(Status.REVOKED, entry)
        plain = [e for e in found if e.marker is None]
        if any(_same_key(e.key, key) for e in plain):
            return Verdict(Status.OK)
        if plain:
            return Verdict(Status.CHANGED, plain[-1])
        if fallback and any(e.marker is None and _same_key(e.key, key)
                            for e in self.lookup(fallback)):
            return Verdict(Status.OK)
        return Verdict(Status.NEW)

    def trusted(self, name: str) -> tuple[list[asyncssh.SSHKey],
                                          list[asyncssh.SSHKey]]:
        """Return the (host keys, CA keys) for *name*, minus revoked keys.

        Revoked keys are left to :meth:`check`, so that the refusal is
        worded as ssh words it.
        """
        found = self.lookup(name)
        revoked = [e.key for e in found if e.marker == "revoked"]
        keys = [e.key for e in found if e.marker is None and
                not any(_same_key(e.key, r) for r in revoked)]
        cas = [e.key for e in found if e.marker == "cert-authority"]
        return keys, cas

    def other_names(self, key: asyncssh.SSHKey, name: str) -> list[str]:
        """Return ``file:line: hosts`` for the key known under other names."""
        names = []
        for entry in self.entries():
            if entry.marker is not None or not _same_key(entry.key, key):
                continue
            if entry.matches(name):
                continue
            hosts = "[hashed name]" if entry.hashed else entry.hosts
            names.append(f"{_tilde(entry.path)}:{entry.line}: {hosts}")
        return names

    def record(self, name: str, key: asyncssh.SSHKey, *,
               hashed: bool) -> bool:
        """Append *key* for *name* to the first user file; False on error."""
        if not self.user_files:
            return False
        path = Path(self.user_files[0])
        host = hash_hostname(name) if hashed else name
        parts = key.export_public_key("openssh").decode().split()
        line = f"{host} {parts[0]} {parts[1]}\n"
        try:
            if not path.parent.exists() and \
                    path.parent == Path.home() / ".ssh":
                path.parent.mkdir(mode=0o700)
            prefix = ""
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as stream:
                    stream.seek(-1, os.SEEK_END)
                    if stream.read(1) != b"\n":
                        prefix = "\n"
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(prefix + line)
        except OSError:
            return False
        try:
            number = path.read_bytes().count(b"\n")
        except OSError:
            number = 0
        entry = _parse_line(str(path), number, line)
        if entry is not None:
            self.entries().append(entry)
        return True


def changed_key_warning(key: asyncssh.SSHKey, offending: KnownEntry,
                        known: KnownHosts, name: str) -> list[str]:
    """Return ssh's REMOTE HOST IDENTIFICATION HAS CHANGED text."""
    lines = [
        _BANNER,
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        _BANNER,
        "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
        "Someone could be eavesdropping on you right now "
        "(man-in-the-middle attack)!",
        "It is also possible that a host key has just been changed.",
        f"The fingerprint for the {key_type(key)} key sent by the remote "
        f"host is\n{fingerprint(key)}.",
        "Please contact your system administrator.",
    ]
    files = known.user_files or known.global_files
    if files:
        lines.append(f"Add correct host key in {files[0]} to get rid of "
                     "this message.")
    lines += [
        f"Offending {key_type(offending.key)} key in "
        f"{offending.path}:{offending.line}",
        "  remove with:",
        f'  ssh-keygen -f "{offending.path}" -R "{name}"',
    ]
    return lines


def revoked_warning(key: asyncssh.SSHKey, name: str) -> list[str]:
    """Return ssh's REVOKED HOST KEY DETECTED text."""
    return [
        _BANNER,
        "@       WARNING: REVOKED HOST KEY DETECTED!               @",
        _BANNER,
        f"The {key_type(key)} host key for {name} is marked as revoked.",
        "This could mean that a stolen key is being used to",
        "impersonate this host.",
    ]


def new_key_prompt(key: asyncssh.SSHKey, name: str, ip: str,
                   other_names: Sequence[str]) -> str:
    """Return ssh's "authenticity of host ... can't be established" question.
    """
    lines = [f"The authenticity of host '{name} ({ip})' can't be "
             "established.",
             f"{key_type(key)} key fingerprint is {fingerprint(key)}."]
    if not other_names:
        lines.append("This key is not known by any other names.")
    else:
        lines.append("This host key is known by the following other "
                     "names/addresses:")
        lines += [f"    {n}" for n in other_names[:_MAX_OTHER_NAMES]]
        extra = len(other_names) - _MAX_OTHER_NAMES
        if extra > 0:
            lines.append(f"    ({extra} additional names omitted)")
    lines.append("Are you sure you want to continue connecting "
                 "(yes/no/[fingerprint])? ")
    return "\n".join(lines)


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
