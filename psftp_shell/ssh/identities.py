"""Identity files.

Public keys read without a passphrase, private halves decrypted
only when they sign.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh


def _openssh_private_public(path: Path) -> asyncssh.SSHKey | None:
    """Read the public key stored unencrypted in an OpenSSH private key."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    begin = "-----BEGIN OPENSSH PRIVATE KEY-----"
    end = "-----END OPENSSH PRIVATE KEY-----"
    if begin not in text or end not in text:
        return None
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        blob = base64.b64decode("".join(body.split()))
    except (ValueError, binascii.Error):
        return None
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic):
        return None
    try:
        pos = len(magic)
        for _ in range(3):          # cipher, kdf name, kdf options
            (size,) = struct.unpack_from(">I", blob, pos)
            pos += 4 + size
        (count,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if count < 1:
            return None
        (size,) = struct.unpack_from(">I", blob, pos)
        pub = blob[pos + 4:pos + 4 + size]
        (alg_len,) = struct.unpack_from(">I", pub, 0)
        alg = pub[4:4 + alg_len].decode("ascii")
    except (struct.error, UnicodeDecodeError):
        return None
    try:
        return asyncssh.import_public_key(
            f"{alg} {base64.b64encode(pub).decode()}")
    except (asyncssh.KeyImportError, ValueError):
        return None


def identity_public_key(path: str) -> asyncssh.SSHKey | None:
    """Return an identity's public key without asking for a passphrase.

    Tries ``path.pub``, then the public part of an OpenSSH-format private
    key, then an unencrypted private key; ``None`` if none works.
    """
    try:
        return asyncssh.read_public_key(path + ".pub")
    except (OSError, asyncssh.KeyImportError, ValueError):
        pass
    key = _openssh_private_public(Path(path))
    if key is not None:
        return key
    try:
        return asyncssh.read_private_key(path).convert_to_public()
    except (OSError, asyncssh.KeyImportError, ValueError):
        return None


class LazyKeyPair(asyncssh.SSHKeyPair):
    """A key pair whose private half is decrypted only when it signs.

    The server is first asked whether it would accept the public key; only
    when it says yes does asyncssh call :meth:`sign_async`, which asks for
    the passphrase, as ssh does.
    """

    _key_type = "local"

    def __init__(self, public: asyncssh.SSHKey, path: str,
                 load: Callable[[str], Awaitable[asyncssh.SSHKey | None]]
                 ) -> None:
        algs = public.sig_algorithms
        super().__init__(public.algorithm, public.algorithm, algs, algs,
                         public.public_data, public.get_comment_bytes())
        self._path = path
        self._load = load

    def sign(self, data: bytes) -> bytes:
        """Synchronous signing is not possible before decryption."""
        raise ValueError("key not decrypted")

    async def sign_async(self, data: bytes) -> bytes:
        """Decrypt (asking for the passphrase), then sign *data*."""
        key = await self._load(self._path)
        if key is None:
            # asyncssh moves on to the next key on ValueError
            raise ValueError(f"no passphrase for {self._path}")
        return key.sign(data, self.sig_algorithm)


def is_plain_key(path: str) -> bool:
    """Return whether *path* holds a private key with no passphrase."""
    try:
        asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError):
        return False
    return True
