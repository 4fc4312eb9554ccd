"""known_hosts files as OpenSSH reads and writes them.

Entries (plain or hashed names, host patterns, @revoked and
@cert-authority markers), key types and fingerprints, and what the
user and global files say about one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import asyncssh

DEFAULT_USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts",
                        "/etc/ssh/ssh_known_hosts2")


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
