"""Cheaper uploads through asyncssh: a lean path for channel data.

A 512 MiB upload is about 17,000 SSH packets of 32 KiB.  asyncssh sends
each through five Python functions (the channel's buffer flush and
``send_packet``, the connection's ``send_packet``, the cipher's shim and
its ``_send``), which copy the 32 KiB about ten times (a ``bytearray``
of every write, a slice per packet, then one concatenation per layer
for the length prefix, the channel number, the packet type, the padding
and the MAC), make a new AES-GCM context per packet and look up the
cipher's name for :func:`~psftp_shell.ssh.asyncssh_speedups.skip_ignores`.

:func:`lean_channel` gives one channel a buffer flush that builds each
CHANNEL_DATA packet in one piece (the data copied once), encrypts it
with a context kept per key, and hands header and ciphertext to the
socket's writer; like ``skip_ignores``, it sends no IGNORE packet
before them.  A packet it cannot send exactly as asyncssh would (a key
exchange due or under way, compression, a CBC cipher, asyncssh's packet
logging on) takes asyncssh's own path; so do channels on an asyncssh
whose internals differ from those reviewed (:data:`USE`).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from psftp_shell.ssh.asyncssh_private import PrivateUse

MSG_CHANNEL_DATA = 94
_PREFIX = struct.Struct(">BBII")    # padding length, type, channel, length
_U32 = struct.Struct(">I")
_MAC = 16


def _relies_on() -> Sequence[object]:
    """asyncssh's private code the lean path replaces or mirrors."""
    from asyncssh.channel import SSHChannel
    from asyncssh.connection import SSHConnection
    from asyncssh.crypto.cipher import GCMCipher
    from asyncssh.encryption import GCMEncryption
    from asyncssh.logging import SSHLogger
    if not isinstance(getattr(SSHLogger, "_debug_level", None), int):
        raise AttributeError("no SSHLogger._debug_level")
    return (SSHChannel._flush_send_buf, SSHChannel.write,
            SSHChannel.send_packet, SSHConnection.send_packet,
            SSHConnection._send, GCMEncryption.encrypt_packet,
            GCMCipher.encrypt_and_sign, GCMCipher._update_iv)


USE = PrivateUse("lean channel data", _relies_on, {
    "2.24.1": "3f58cb8cca3ed090",
})
"""The internals :func:`lean_channel` uses, as reviewed."""


def problem() -> str | None:
    """Why the lean path is off with this asyncssh, or None."""
    # asyncssh is imported late: -v must see its import's warnings
    import asyncssh

    return USE.problem(asyncssh.__version__)


def lean_channel(chan: Any) -> bool:
    """Give asyncssh channel *chan* the lean path for its data; return
    whether it did (not with an asyncssh that differs, nor twice)."""
    if problem() is not None or getattr(chan, "_lean", False):
        return False
    sender = _PacketSender(chan._conn)
    chan._flush_send_buf = _flusher(chan, sender)
    chan.write = _writer(chan)
    chan.write_two = _two(chan)
    chan._lean = True
    return True


def _writer(chan: Any) -> Callable[..., None]:
    """*chan*'s ``write``: bytes are queued without asyncssh's copy
    (and without its debug message, unless that is logged)."""
    from asyncssh.logging import SSHLogger
    write = chan.write

    def lean_write(data: Any, datatype: Any = None) -> None:
        if datatype is not None or chan._encoding or \
                not isinstance(data, bytes) or \
                SSHLogger._debug_level >= 2:
            write(data, datatype)
            return
        if chan._send_state != "open":
            raise BrokenPipeError("Channel not open for sending")
        if data:
            chan._send_buf.append((data, None))
            chan._send_buf_len += len(data)
            chan._flush_send_buf()

    return lean_write


def _two(chan: Any) -> Callable[..., None]:
    """*chan*'s ``write_two``: *head* and *data* queued as two pieces;
    the flush sends *head* in one packet with the start of *data*."""
    from asyncssh.logging import SSHLogger
    write = chan.write

    def write_two(head: bytes, data: Any) -> None:
        if chan._encoding or SSHLogger._debug_level >= 2:
            write(b"".join((head, data)))
            return
        if chan._send_state != "open":
            raise BrokenPipeError("Channel not open for sending")
        chan._send_buf.append((head, None))
        chan._send_buf.append((data, None))
        chan._send_buf_len += len(head) + len(data)
        chan._flush_send_buf()

    return write_two


def _flusher(chan: Any, sender: _PacketSender) -> Callable[[], None]:
    """asyncssh's ``SSHChannel._flush_send_buf`` for *chan*, its data
    packets sent by *sender*.  Buffered data may be ``bytes`` or
    ``memoryview`` as well as ``bytearray``: the rest of a long piece
    is a view, not a copy.  A short data piece shares its packet with
    the start of the next."""
    from asyncssh.constants import (
        MSG_CHANNEL_EOF,
        MSG_CHANNEL_EXTENDED_DATA,
    )
    from asyncssh.packet import String, UInt32

    def take(send_buf: Any, size: int) -> Any:
        """Up to *size* bytes off the head of *send_buf*."""
        buf, datatype = send_buf[0]
        if len(buf) > size:
            view = memoryview(buf)
            send_buf[0] = (view[size:], datatype)
            return view[:size]
        del send_buf[0]
        return buf

    def flush() -> None:
        send_buf = chan._send_buf
        while send_buf and chan._send_window:
            pktsize = min(chan._send_window, chan._send_pktsize)
            datatype = send_buf[0][1]
            first = b""
            # a short piece (a WRITE's header) and the start of the next
            # in one packet, as if they had been joined
            if datatype is None and len(send_buf[0][0]) < pktsize and \
                    len(send_buf) > 1 and send_buf[1][1] is None:
                first = take(send_buf, pktsize)
            data = take(send_buf, pktsize - len(first))
            size = len(first) + len(data)
            chan._send_buf_len -= size
            chan._send_window -= size
            if datatype is None:
                if not sender.send(chan._send_chan, data, first):
                    chan.send_packet(MSG_CHANNEL_DATA,
                                     String(b"".join((first, data))))
            else:
                chan.send_packet(MSG_CHANNEL_EXTENDED_DATA,
                                 UInt32(datatype), String(bytes(data)))
        chan._pause_resume_writing()
        if not send_buf:
            if chan._send_state == "eof_pending":
                chan.send_packet(MSG_CHANNEL_EOF)
                chan._send_state = "eof"
            elif chan._send_state == "close_pending":
                chan._close_send()

    return flush


class _PacketSender:
    """Sends CHANNEL_DATA packets on one asyncssh connection the way its
    ``send_packet`` does, when it safely can."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._enc: object = None      # the encryption judged below
        self._ok = False              # ... may take the lean path
        self._aead: Any = None        # ... its AES-GCM context, if GCM
        self._cipher: Any = None
        self._gather = False          # the writer joins what it is given
        from asyncssh.logging import SSHLogger
        self._logger: Any = SSHLogger

    def _judge(self, enc: object) -> None:
        from asyncssh.crypto.cipher import AESGCM, GCMCipher
        from asyncssh.encryption import GCMEncryption
        self._enc = enc
        name = str(self._conn.get_extra_info("send_cipher", "cbc"))
        self._ok = enc is not None and not name.endswith("-cbc")
        self._aead = self._cipher = None
        self._gather = callable(getattr(self._conn._transport, "push", None))
        cipher = getattr(enc, "_cipher", None)
        if self._ok and type(enc) is GCMEncryption and \
                type(cipher) is GCMCipher:
            self._cipher = cipher
            self._aead = AESGCM(cipher._key)

    def send(self, send_chan: int | None, data: Any,
             first: Any = b"") -> bool:
        """Send *first* and *data* as one CHANNEL_DATA packet to
        *send_chan*; False
        (nothing sent) when asyncssh's own path must send it."""
        conn = self._conn
        enc = conn._send_encryption
        if enc is not self._enc:
            self._judge(enc)
        if not self._ok or send_chan is None or \
                not (conn._kex_complete and conn._auth_complete) or \
                conn._compressor is not None or \
                conn._rekey_bytes_sent >= conn._rekey_bytes or \
                (conn._rekey_seconds and
                 time.monotonic() >= conn._rekey_time) or \
                self._logger._debug_level >= 3:
            return False
        size = len(data) + len(first)
        blocksize = conn._send_blocksize
        padlen = -(conn._send_enchdrlen + 9 + size) % blocksize
        if padlen < 4:
            padlen += blocksize
        body = b"".join((_PREFIX.pack(padlen, MSG_CHANNEL_DATA, send_chan,
                                      size), first, data,
                         os.urandom(padlen)))
        pktlen = len(body)
        hdr = _U32.pack(pktlen)
        seq = conn._send_seq
        cipher = self._cipher
        if cipher is not None:
            iv = cipher._iv
            sealed = self._aead.encrypt(iv, body, hdr)
            count = (int.from_bytes(iv[4:], "big") + 1) & 0xFFFFFFFFFFFFFFFF
            cipher._iv = iv[:4] + count.to_bytes(8, "big")
            if self._gather:
                conn._send(hdr)
                conn._send(sealed)
            else:
                conn._send(hdr + sealed)
        else:
            packet, mac = enc.encrypt_packet(seq, hdr, body)
            conn._send(packet + mac)
        conn._send_seq = (seq + 1) & 0xFFFFFFFF
        conn._rekey_bytes_sent += pktlen
        return True
