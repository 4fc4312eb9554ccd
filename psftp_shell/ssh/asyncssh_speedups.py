"""Cheaper bytes through asyncssh: three adapters on its per-packet path.

A 1 GiB download is about 33,000 SSH packets of 32 KiB, each handled in
Python.  Three costs there do no useful work:

- :func:`split_reads`: asyncssh keeps its input as ``bytes`` and slices
  the rest off after every packet, so one 256 KiB socket read holding
  eight packets is copied about eight times over.  Handed on in pieces
  of :data:`PIECE` bytes, each byte is copied about twice.
- :func:`quiet_packet_log`: before each packet is handled or sent,
  asyncssh formats a description of it (its name, a plural, a copy of
  the payload) that its logger then drops unless packet logging is on
  (``asyncssh.set_debug_level(3)``).  The adapter skips the formatting
  while that is off and calls asyncssh's own code when it is on.
- :func:`skip_ignores`: asyncssh sends an empty IGNORE packet before
  every packet, a defence for CBC ciphers (whose next IV an attacker
  could otherwise predict) that costs each upload packet a second
  encryption.  The adapter drops those while the cipher is not CBC.

Each checks at start-up that asyncssh looks as expected and otherwise
leaves it alone (asyncssh's public behaviour, only slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PIECE = 64 * 1024
"""The most bytes handed to asyncssh's ``data_received`` at once."""


def split_reads(conn: object, piece: int = PIECE) -> bool:
    """Make *conn* take what its socket delivers in *piece*-byte pieces.

    *conn* is an asyncssh connection, an asyncio protocol: its transport
    calls ``data_received(data)`` with up to 256 KiB.  Returns whether
    *conn* was adapted (not when it has no ``data_received`` or is
    adapted already).  A connection closed by one piece gets no more.
    """
    receive = getattr(conn, "data_received", None)
    if not callable(receive) or getattr(receive, "split_reads", False):
        return False
    closed: Callable[[], bool] = getattr(conn, "is_closed", lambda: False)

    def data_received(data: bytes, datatype: Any = None) -> None:
        if len(data) <= piece:
            receive(data, datatype)
            return
        view = memoryview(data)
        for start in range(0, len(data), piece):
            if start and closed():
                return
            receive(view[start:start + piece], datatype)

    data_received.split_reads = True   # type: ignore[attr-defined]
    conn.data_received = data_received  # type: ignore[attr-defined]
    return True


IGNORE = 2
"""SSH_MSG_IGNORE (RFC 4253)."""
EMPTY = b"\0\0\0\0"
"""An empty SSH string: the payload of asyncssh's IGNORE packets."""


def skip_ignores(conn: object) -> bool:
    """Drop the empty IGNORE packet asyncssh puts before each packet it
    sends on *conn*, while its cipher is not CBC.

    asyncssh sends it as ``self.send_packet(MSG_IGNORE, String(b""))``,
    which finds this instance's wrapper.  Returns whether *conn* was
    adapted (not when it has no ``send_packet`` or is adapted already).
    """
    send = getattr(conn, "send_packet", None)
    info = getattr(conn, "get_extra_info", None)
    if not callable(send) or not callable(info) or \
            getattr(send, "skip_ignores", False):
        return False

    def send_packet(pkttype: int, *args: Any, **kwargs: Any) -> None:
        if pkttype == IGNORE and args == (EMPTY,) and not kwargs and \
                not str(info("send_cipher", "cbc")).endswith("-cbc"):
            return
        send(pkttype, *args, **kwargs)

    send_packet.skip_ignores = True     # type: ignore[attr-defined]
    conn.send_packet = send_packet      # type: ignore[attr-defined]
    return True


def _packet_logging_parts() -> tuple[Any, Any] | None:
    """asyncssh's packet logger class and its logger class, if they are
    as :func:`quiet_packet_log` expects."""
    try:
        from asyncssh.logging import SSHLogger
        from asyncssh.packet import SSHPacketLogger
    except ImportError:
        return None
    if not isinstance(getattr(SSHLogger, "_debug_level", None), int):
        return None
    for name in ("log_sent_packet", "log_received_packet"):
        if not callable(getattr(SSHPacketLogger, name, None)):
            return None
    return SSHPacketLogger, SSHLogger


def quiet_packet_log() -> bool:
    """Skip asyncssh's per-packet log formatting while it would be
    dropped; return whether asyncssh was adapted (once per process)."""
    parts = _packet_logging_parts()
    if parts is None:
        return False
    packet_logger, logger = parts
    if getattr(packet_logger.log_sent_packet, "quiet", False):
        return True
    for name in ("log_sent_packet", "log_received_packet"):
        setattr(packet_logger, name,
                _quiet(getattr(packet_logger, name), logger))
    return True


def _quiet(log: Callable[..., None], logger: type
           ) -> Callable[..., None]:
    """*log*, called only at asyncssh's packet debug level (3)."""
    def quiet(self: object, *args: Any, **kwargs: Any) -> None:
        if logger._debug_level >= 3:  # type: ignore[attr-defined]
            log(self, *args, **kwargs)

    quiet.quiet = True    # type: ignore[attr-defined]
    quiet.__wrapped__ = log     # type: ignore[attr-defined]
    return quiet
