"""A shorter road for a download's bytes through asyncssh.

asyncssh takes every received SSH packet through the same general path:
the first block and the rest are sliced off its input, AES-GCM gets a new
key object and two more copies of the packet, the payload is sliced out,
wrapped in an ``SSHPacket``, dispatched through tables to the channel,
read again as an SSH string, checked and logged, and the result tested
for being awaitable.  For the 32 KiB CHANNEL_DATA packets that carry a
download, that is most of the client's CPU.

:func:`install` gives one connection a receive handler that, while the
incoming cipher is AES-GCM with no compression and logins are over,
decrypts each packet from the input in one call (with a key object kept
per key) and hands a CHANNEL_DATA packet's data to its channel's
``_accept_data``, where asyncssh's window accounting, pausing and session
delivery take over; or, while none of those has anything to do, straight
to its session (as a memoryview of the packet where the session says it
``takes_views``: the SFTP channel's joins a reply's pieces in one copy).
Every other packet, and any data packet the channel would refuse, goes
on through asyncssh's own code with the plaintext already in hand, so
that its checks, errors and handlers decide as before.  The handler
leaves the stream at a packet boundary, so a change of cipher at a
re-key is seen at the next packet.

:func:`install` checks the connection and asyncssh's GCM shim first, and
that asyncssh's code it mirrors is as reviewed (:data:`USE`), and does
nothing otherwise: asyncssh's own path is then used, only slower.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from psftp_shell.ssh.asyncssh_private import PrivateUse

_CONN_ATTRS = ("_inpbuf", "_recv_encryption", "_decompressor",
               "_recv_blocksize", "_transport",
               "_max_recv_pktlen", "_recv_seq", "_channels",
               "_auth_complete", "_recv_handler", "_packet", "_pktlen")
_CONN_METHODS = ("_recv_pkthdr", "_recv_packet", "_finish_recv_packet")
_CHANNEL_ATTRS = ("_recv_state", "_recv_window", "_accept_data",
                  "_deliver_data", "_send_state", "_recv_paused",
                  "_encoding", "_session", "_init_recv_window",
                  "_send_window", "_flush_send_buf")
_CLOSING = frozenset(("close_pending", "closed"))
_CIPHER_ATTRS = ("_key", "_iv", "_update_iv")

DATA = bytes([94])
"""SSH_MSG_CHANNEL_DATA (RFC 4254), as the payload's first byte."""
ADJUST = bytes([93])
"""SSH_MSG_CHANNEL_WINDOW_ADJUST: an upload gets thousands."""
_ADJUSTABLE = frozenset(("open", "eof_pending", "eof"))
GCM_TAG = 16
HEADER = 4
_ID_LEN = struct.Struct(">II")
"""A channel packet's recipient channel and its data length (or, in a
WINDOW_ADJUST, the bytes to add), after the type byte."""
_INVOCATIONS = 0xffffffffffffffff
"""The AES-GCM nonce's invocation counter wraps at 64 bits (RFC 5647)."""


class _Parts:
    """asyncssh's pieces the fast path uses, found once."""

    def __init__(self) -> None:
        from asyncssh.encryption import GCMEncryption
        from asyncssh.logging import SSHLogger
        from asyncssh.misc import MACError, ProtocolError
        from asyncssh.packet import PacketDecodeError
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.gcm: Any = GCMEncryption
        self.logger: Any = SSHLogger
        self.mac_error: type[Exception] = MACError
        self.protocol_error: type[Exception] = ProtocolError
        self.invalid_tag: type[Exception] = InvalidTag
        self.decode_error: type[Exception] = PacketDecodeError
        self.aesgcm: Callable[[bytes], Any] = AESGCM


def _relies_on() -> Sequence[object]:
    """asyncssh's private code the fast path replaces or mirrors."""
    from asyncssh.channel import SSHChannel
    from asyncssh.connection import SSHConnection
    from asyncssh.crypto.cipher import GCMCipher
    from asyncssh.encryption import GCMEncryption
    return (SSHConnection._recv_data, SSHConnection._recv_pkthdr,
            SSHConnection._recv_packet, SSHConnection._finish_recv_packet,
            SSHChannel._process_data, SSHChannel._accept_data,
            SSHChannel._deliver_data, SSHChannel._process_window_adjust,
            GCMEncryption.decrypt_header, GCMEncryption.decrypt_packet,
            GCMCipher.verify_and_decrypt, GCMCipher._update_iv)


USE = PrivateUse("fast receive", _relies_on, {
    "2.24.1": "942acf85b3231e52",
})
"""The internals the fast path uses, as reviewed."""


def _parts() -> _Parts | None:
    """The parts, or None where asyncssh or cryptography differ."""
    try:
        parts = _Parts()
    except ImportError:
        return None
    import asyncssh
    if not isinstance(getattr(parts.logger, "_debug_level", None), int) \
            or USE.problem(asyncssh.__version__) is not None:
        return None
    return parts


_PARTS: list[_Parts | None] = []


def parts() -> _Parts | None:
    """The parts, found at the first call."""
    if not _PARTS:
        _PARTS.append(_parts())
    return _PARTS[0]


class _Decrypted:
    """Stands in for the connection's decryption for one packet that was
    already decrypted, so that asyncssh's own ``_recv_packet`` goes on
    with its plaintext."""

    def __init__(self, plaintext: bytes) -> None:
        self.plaintext = plaintext

    def decrypt_packet(self, *_args: Any) -> bytes:
        return self.plaintext


def connection_ok(conn: object) -> bool:
    """Whether *conn* has the internals the fast path reads and sets."""
    cls = type(conn)
    return all(hasattr(conn, name) for name in _CONN_ATTRS) and \
        all(callable(getattr(cls, name, None)) for name in _CONN_METHODS)


def cipher_ok(enc: object) -> bool:
    """Whether *enc*, asyncssh's GCM shim, holds a cipher as expected."""
    cipher = getattr(enc, "_cipher", None)
    return cipher is not None and \
        all(hasattr(cipher, name) for name in _CIPHER_ATTRS) and \
        isinstance(cipher._key, bytes)


def channel_ok(chan: object) -> bool:
    """Whether *chan* has the internals :meth:`_Handler._deliver` uses,
    and takes data as asyncssh's base channel does."""
    if chan is None or \
            not all(hasattr(chan, name) for name in _CHANNEL_ATTRS):
        return False
    from asyncssh.channel import SSHChannel
    cls: Any = type(chan)
    return isinstance(chan, SSHChannel) and \
        cls._accept_data is SSHChannel._accept_data and \
        cls._deliver_data is SSHChannel._deliver_data


def installed(conn: object) -> bool:
    """Whether *conn* has the fast receive handler."""
    owner = getattr(getattr(conn, "_recv_pkthdr", None), "__self__", None)
    return isinstance(owner, _Handler)


def install(conn: Any) -> bool:
    """Give *conn* the fast receive handler; return whether it has it.

    Not when asyncssh is not as expected or the connection's incoming
    cipher is not AES-GCM.  Given once: a second call changes nothing.
    """
    if installed(conn):
        return True
    found = parts()
    if found is None or not connection_ok(conn) or \
            type(conn._recv_encryption) is not found.gcm or \
            not cipher_ok(conn._recv_encryption):
        return False
    fast = _Handler(conn, found).receive
    slow = conn._recv_pkthdr
    conn._recv_pkthdr = fast
    if conn._recv_handler == slow:
        conn._recv_handler = fast
    return True


class _Handler:
    """The receive handler of one connection."""

    def __init__(self, conn: Any, found: _Parts) -> None:
        self._conn = conn
        self._parts = found
        cls = type(conn)
        self._slow_header: Callable[[Any], bool] = cls._recv_pkthdr
        self._slow_packet: Callable[[Any], bool] = cls._recv_packet
        self._enc: object = None        # the decryption judged below
        self._aes: Any = None           # ... its AES-GCM, None: not GCM
        self._chan: Any = None          # the last channel found as expected

    def _judge(self, enc: object) -> None:
        """Take the connection's new decryption (a new key comes with a
        new one): an AES-GCM object for its key if it is asyncssh's GCM
        shim as expected, else None (asyncssh's path)."""
        self._enc = enc
        self._aes = None
        if type(enc) is self._parts.gcm and cipher_ok(enc):
            self._aes = self._parts.aesgcm(enc._cipher._key)  # type: ignore

    def receive(self) -> bool:
        """Handle the complete packets at the head of the input, as
        asyncssh's ``_recv_pkthdr`` and ``_recv_packet`` would; return
        False once the rest is incomplete (asyncssh's loop then waits for
        more), True after a packet handed on to asyncssh."""
        conn = self._conn
        enc: Any = conn._recv_encryption
        if enc is not self._enc:
            self._judge(enc)
        if self._aes is None or conn._decompressor or \
                not conn._auth_complete or \
                self._parts.logger._debug_level >= 2:
            return self._slow_header(conn)
        cipher = enc._cipher
        decrypt = self._aes.decrypt
        inp = conn._inpbuf
        view = memoryview(inp)
        size = len(inp)
        limit = conn._max_recv_pktlen
        start = 0
        # The nonce, stepped as the cipher's _update_iv does, and stored
        # back into the cipher before asyncssh's code may look at it.
        nonce = cipher._iv
        fixed, count = nonce[:4], int.from_bytes(nonce[4:], "big")
        owned = True
        try:
            while size - start >= HEADER:
                pktlen = int.from_bytes(view[start:start + HEADER], "big")
                if pktlen > limit:
                    raise self._parts.protocol_error(
                        "Max packet size exceeded")
                end = start + HEADER + pktlen + GCM_TAG
                if size < end:
                    break
                try:
                    plaintext = decrypt(nonce, view[start + HEADER:end],
                                        view[start:start + HEADER])
                except self._parts.invalid_tag:
                    plaintext = b""
                count = (count + 1) & _INVOCATIONS
                nonce = fixed + count.to_bytes(8, "big")
                if not plaintext:
                    start = end
                    raise self._parts.mac_error("MAC verification failed")
                kind = plaintext[1:2]
                if not (self._deliver(plaintext) if kind == DATA else
                        kind == ADJUST and self._adjust(plaintext)):
                    cipher._iv, owned = nonce, False
                    return self._hand_on(plaintext, inp[start:])
                start = end
                if conn._inpbuf is not inp:     # changed by the delivery
                    return False
                if conn._transport:
                    conn._recv_seq = (conn._recv_seq + 1) & 0xffffffff
            return False
        finally:
            if owned:
                cipher._iv = nonce
            if start and conn._inpbuf is inp:
                conn._inpbuf = inp[start:]

    def _deliver(self, plaintext: bytes) -> bool:
        """Hand a CHANNEL_DATA packet's data to its channel; False (and
        nothing done) when asyncssh's own checks should decide."""
        padding = plaintext[0]
        size = len(plaintext) - padding
        if size <= 10 or not padding:   # no data, or asyncssh's errors
            return False
        recipient, datalen = _ID_LEN.unpack_from(plaintext, 2)
        chan = self._channel(recipient)
        if chan is None:
            return False
        if 10 + datalen != size or \
                chan._recv_state != "open" or \
                datalen > chan._recv_window:
            return False
        window = chan._recv_window - datalen
        try:
            if chan._recv_paused or chan._encoding or \
                    chan._session is None or \
                    window < chan._init_recv_window / 2 or \
                    chan._send_state in _CLOSING:
                chan._accept_data(plaintext[10:size])
            else:                   # what _accept_data would do, shorter
                chan._recv_window = window
                session = chan._session
                session.data_received(
                    memoryview(plaintext)[10:size]
                    if getattr(session, "takes_views", False) is True
                    else plaintext[10:size], None)
        except self._parts.decode_error as exc:     # as _recv_packet does
            raise self._parts.protocol_error(str(exc)) from None
        return True

    def _channel(self, recipient: int) -> Any:
        """Channel *recipient*, if it is as expected."""
        chan = self._conn._channels.get(recipient)
        if chan is not self._chan:
            if not channel_ok(chan):
                return None
            self._chan = chan
        return chan

    def _adjust(self, plaintext: bytes) -> bool:
        """Add a WINDOW_ADJUST to its channel's send window and send what
        waited for it, as asyncssh's ``_process_window_adjust``; False
        (and nothing done) when asyncssh's own checks should decide."""
        padding = plaintext[0]
        if len(plaintext) - padding != 10 or not padding:
            return False
        recipient, adjust = _ID_LEN.unpack_from(plaintext, 2)
        chan = self._channel(recipient)
        if chan is None or chan._recv_state not in _ADJUSTABLE:
            return False
        chan._send_window += adjust
        chan._flush_send_buf()
        return True

    def _hand_on(self, plaintext: bytes, inp: bytes) -> bool:
        """Let asyncssh's ``_recv_packet`` handle a decrypted packet, as
        if its ``_recv_pkthdr`` had just taken the packet's first block
        off *inp*."""
        conn = self._conn
        enc = conn._recv_encryption
        first = conn._recv_blocksize
        conn._packet = inp[:first]
        conn._pktlen = len(plaintext)
        conn._inpbuf = inp[first:]
        stand_in = _Decrypted(plaintext)
        conn._recv_encryption = stand_in
        try:
            return self._slow_packet(conn)
        finally:
            if conn._recv_encryption is stand_in:
                conn._recv_encryption = enc
