"""Client side of the ``check-file-handle`` / ``check-file-name`` extensions.

The server hashes a range of a file (draft-ietf-secsh-filexfer-extensions
-00, section 3): the request names a handle or a path, a comma-separated
list of algorithms in preference order, a start offset, a length (0: to
end of file) and a block size (0: one hash over the whole range,
otherwise one hash per block).  The reply names the algorithm used and
carries the hashes back to back.

What ProFTPD 1.3.8's mod_sftp (Debian bookworm) really does, measured
against hashlib on the file's bytes (tests/test_checkfile.py):

* It honours both names (``check-file-handle`` and ``check-file-name``,
  relative paths too) but at protocol version 3 advertises neither: its
  VERSION lists only ``versions``, ``home-directory`` and the
  ``@openssh.com`` ones.  :func:`probe_check_file` finds it out.
* Algorithms: md5, sha1, sha224, sha256, sha384, sha512; the first of
  the client's list it knows wins.  Anything else (crc32 too) is refused
  with status 8 and the text "Invalid parameter".
* start 0 is exact: length 0 hashes to end of file, length L the first
  L bytes, block size B gives ceil(L / B) hashes of whole B-byte blocks,
  the last one short only at end of file.  So with B > 0 and L not a
  multiple of B the last hash covers up to the next multiple of B, past
  L.
* start S > 0 with length 0 is exact (S to end of file, in blocks of B).
* start S > 0 with length L > 0 is wrong: the server reads S + L bytes
  from S (as if the length were an end offset plus S), with B > 0
  ceil((S + L) / B) blocks from S.  Never rely on this form.
* A range past end of file: with block size 0 the hash simply stops at
  end of file; with B > 0 every block wholly past it is answered with
  the hash of no bytes (md5 d41d8cd9...), not left out.
* block sizes 1..255 are refused (status 8, "Invalid parameter"); any
  size from 256 up works, it need not divide the length.
* start at or past end of file is refused the same way, so an empty file
  can never be checked (status 8).
* A directory gives status 4 "File is a directory", a missing path 2,
  a bad handle status 9 ("Invalid handle", a code beyond version 3).
* It sends every hash in one reply however many there are: one beyond
  the 256 KiB packet limit ends the session.  :func:`check_file_handle`
  and :func:`check_file_name` refuse a request whose reply could be that
  large when they can tell (length given).

The forms exact both on ProFTPD and on a server that follows the
draft: any start with length 0 (to end of file), or start 0 with a
length that is a multiple of the block size or ends at end of file;
block size 0 or at least 256.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from collections.abc import Sequence

from .client import (
    FX_OP_UNSUPPORTED,
    MAX_MSG_LENGTH,
    U32,
    U64,
    ProtocolError,
    SFTPClient,
    StatusError,
    encode_path,
    pack_string,
)

ADVERTISED_NAMES = ("check-file-handle", "check-file-name", "check-file")
"""Extension names that announce the check-file family."""

DIGEST_SIZES: dict[str, int] = {
    "md5": 16, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48,
    "sha512": 64, "crc32": 4,
}
"""Hash sizes of the draft's algorithm names."""

MIN_BLOCK_SIZE = 256
"""The smallest non-zero block size the draft allows."""

_REPLY_OVERHEAD = 64
"""Room for the reply's header and algorithm name."""

_probed: weakref.WeakKeyDictionary[SFTPClient, bool] = (
    weakref.WeakKeyDictionary())


def digest_size(algorithm: str) -> int:
    """Return the size of one *algorithm* hash; ProtocolError if unknown."""
    size = DIGEST_SIZES.get(algorithm)
    if size is not None:
        return size
    try:
        return int(hashlib.new(algorithm).digest_size)
    except (ValueError, TypeError):
        raise ProtocolError(
            f"check-file: unknown hash algorithm {algorithm!r}") from None


def _check_args(algorithms: Sequence[str], start: int, length: int,
                block_size: int) -> bytes:
    """Validate the request fields; return the algorithm list as bytes."""
    if isinstance(algorithms, str):
        raise TypeError("algorithms must be a sequence of names")
    if not algorithms or any(not a or "," in a for a in algorithms):
        raise ValueError(f"bad algorithm list {list(algorithms)!r}")
    if not (0 <= start < 1 << 64 and 0 <= length < 1 << 64):
        raise ValueError("start and length must fit in 64 bits")
    if not 0 <= block_size < 1 << 32:
        raise ValueError("block_size must fit in 32 bits")
    if 0 < block_size < MIN_BLOCK_SIZE:
        raise ValueError(f"block_size must be 0 or >= {MIN_BLOCK_SIZE}")
    return ",".join(algorithms).encode("ascii")


def encode_request(target: bytes, algorithms: Sequence[str], start: int,
                   length: int, block_size: int) -> bytes:
    """Return the request body after the extension name.

    *target* is the handle or the encoded path; both go as SFTP strings.
    """
    names = _check_args(algorithms, start, length, block_size)
    return b"".join((pack_string(target), pack_string(names),
                     U64.pack(start), U64.pack(length),
                     U32.pack(block_size)))


def max_hashes(algorithms: Sequence[str], limit: int = MAX_MSG_LENGTH
               ) -> int:
    """How many hashes of the largest of *algorithms* fit in one reply."""
    widest = max(DIGEST_SIZES.get(a, 64) for a in algorithms)
    return (limit - _REPLY_OVERHEAD) // widest


def hashes_asked(start: int, length: int, block_size: int) -> int | None:
    """Return the most hashes a reply may carry; None if unknown.

    Counted from offset 0 to start + length, which covers ProFTPD's
    reading of the length as an end offset.
    """
    if block_size == 0:
        return 1
    if length == 0:
        return None
    return -(-(start + length) // block_size)


def _check_reply_size(algorithms: Sequence[str], start: int, length: int,
                      block_size: int) -> None:
    count = hashes_asked(start, length, block_size)
    if count is not None and count > max_hashes(algorithms):
        raise ValueError(
            f"check-file: {count} hashes would not fit in one reply; "
            "use a larger block size or a shorter range")


def split_hashes(algorithm: str, data: bytes) -> list[bytes]:
    """Split the reply's hash bytes into hashes of *algorithm*."""
    size = digest_size(algorithm)
    if not data or len(data) % size:
        raise ProtocolError(
            f"check-file: {len(data)} bytes are not whole {algorithm} "
            "hashes")
    return [data[i:i + size] for i in range(0, len(data), size)]


def decode_reply(body: bytes, algorithms: Sequence[str]
                 ) -> tuple[str, list[bytes]]:
    """Parse a check-file reply body (after the request id).

    The server must choose one of *algorithms*; anything malformed
    raises :class:`ProtocolError`.
    """
    if len(body) < 4:
        raise ProtocolError("check-file: reply too short")
    (size,) = struct.unpack_from(">I", body)
    if 4 + size > len(body):
        raise ProtocolError("check-file: reply too short")
    try:
        algorithm = body[4:4 + size].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("check-file: algorithm name not ASCII") from None
    if algorithm not in algorithms:
        raise ProtocolError(
            f"check-file: server chose {algorithm!r}, not one asked for")
    return algorithm, split_hashes(algorithm, body[4 + size:])


def offers_check_file(client: SFTPClient) -> bool:
    """Whether the server offers check-file.

    True when its VERSION advertised one of :data:`ADVERTISED_NAMES`, or
    when :func:`probe_check_file` found it on this client.
    """
    if any(client.has_extension(name) for name in ADVERTISED_NAMES):
        return True
    return _probed.get(client, False)


async def probe_check_file(client: SFTPClient) -> bool:
    """Find out (once per client) whether an unadvertised check-file works.

    Sends ``check-file-handle`` with an empty handle: "unsupported"
    means no; a refusal of the handle (ProFTPD: "Invalid handle") means
    the server knows the request.  The answer is kept for
    :func:`offers_check_file`.
    """
    if offers_check_file(client):
        return True
    if client in _probed:
        return False
    payload = encode_request(b"", ["md5"], 0, 0, 0)
    try:
        await client.extended("check-file-handle", payload)
        found = True
    except StatusError as exc:
        found = exc.code != FX_OP_UNSUPPORTED or \
            "parameter" in exc.server_message.lower()
    _probed[client] = found
    return found


async def _check_file(client: SFTPClient, name: str, target: bytes,
                      algorithms: Sequence[str], start: int, length: int,
                      block_size: int) -> tuple[str, list[bytes]]:
    payload = encode_request(target, algorithms, start, length, block_size)
    _check_reply_size(algorithms, start, length, block_size)
    body = await client.extended(name, payload)
    if body is None:
        raise ProtocolError(f"{name}: server answered OK without hashes")
    return decode_reply(body, algorithms)


async def check_file_handle(client: SFTPClient, handle: bytes,
                            algorithms: Sequence[str], start: int,
                            length: int, block_size: int
                            ) -> tuple[str, list[bytes]]:
    """Hash a range of an open file on the server.

    Returns the algorithm the server chose and its hashes (one, or one
    per block).  A refusal raises StatusError; a malformed reply
    ProtocolError; bad arguments ValueError, before anything is sent.
    """
    return await _check_file(client, "check-file-handle", handle,
                             algorithms, start, length, block_size)


async def check_file_name(client: SFTPClient, path: str,
                          algorithms: Sequence[str], start: int,
                          length: int, block_size: int
                          ) -> tuple[str, list[bytes]]:
    """Hash a range of the file at *path* on the server.

    As :func:`check_file_handle`, by name.
    """
    target = encode_path(path)
    return await _check_file(client, "check-file-name", target,
                             algorithms, start, length, block_size)
