"""ssh's "Unable to negotiate" line, when the server hangs up first.

A server that finds nothing in common with the client's KEXINIT closes
the connection at once, and asyncssh may see the close before it has
compared the lists itself (always so for host key types, which it
leaves to the server).  ssh, comparing first, says which list had no
match and what the server offered.  :func:`server_offer` reads the
server's KEXINIT on a fresh connection (it is sent in the clear, right
after the version line; RFC 4253, 7.1) and :func:`unmatched` compares
it with the client's lists in ssh's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncssh

from psftp_shell.core.errors import FatalError
from psftp_shell.ssh.auth import LogLevel
from psftp_shell.ssh.hostkeys import Message

if TYPE_CHECKING:
    from psftp_shell.ssh.attempt import Transport
    from psftp_shell.ssh.ssh_config import Resolved

# The KEXINIT name-lists, in their order on the wire (RFC 4253, 7.1).
KEX, HOST_KEY, ENC_CS, ENC_SC, MAC_CS, MAC_SC, CMP_CS, CMP_SC = range(8)
_LISTS = 10
_MSG_KEXINIT = 20
_MAX_PACKET = 256 * 1024


async def server_offer(reader: Any, writer: Any, version: str
                       ) -> list[list[str]] | None:
    """The server's KEXINIT name-lists, or None if it sent none.

    *reader* and *writer* are asyncio's or asyncssh's byte streams.
    """
    writer.write(version.encode("ascii") + b"\r\n")
    await writer.drain()
    for _ in range(64):                     # lines before the version
        line = await reader.readline()
        if not line:
            return None
        if line.startswith(b"SSH-"):
            break
    else:
        return None
    length = int.from_bytes(await reader.readexactly(4), "big")
    if not 6 <= length <= _MAX_PACKET:
        return None
    packet = await reader.readexactly(length)
    payload = packet[1:length - packet[0]]
    if payload[:1] != bytes([_MSG_KEXINIT]):
        return None
    pos = 17
    lists = []
    for _ in range(_LISTS):
        size = int.from_bytes(payload[pos:pos + 4], "big")
        text = payload[pos + 4:pos + 4 + size].decode("ascii", "replace")
        lists.append(text.split(",") if text else [])
        pos += 4 + size
    return lists


def unmatched(ours: dict[int, list[str]], theirs: list[list[str]]
              ) -> tuple[str, str] | None:
    """ssh's word for the first list with no match, and the server's
    offer for it; None if every list of *ours* has a match.

    *ours* maps :data:`KEX`, :data:`HOST_KEY`, :data:`ENC_CS`,
    :data:`MAC_CS` and :data:`CMP_CS` to the client's lists (the same
    both ways); a MAC is not needed with an AEAD cipher.
    """
    words = ((KEX, "key exchange method"), (HOST_KEY, "host key type"),
             (ENC_CS, "cipher"), (ENC_SC, "cipher"), (MAC_CS, "MAC"),
             (MAC_SC, "MAC"), (CMP_CS, "compression method"),
             (CMP_SC, "compression method"))
    chosen: dict[int, str] = {}
    for index, word in words:
        mine = ours.get(index if index < ENC_CS else index - index % 2)
        if mine is None:
            continue
        if index in (MAC_CS, MAC_SC) and _aead(chosen.get(index - 2, "")):
            continue
        match = next((alg for alg in mine if alg in theirs[index]), None)
        if match is None:
            return word, ",".join(theirs[index])
        chosen[index] = match
    return None


def _aead(cipher: str) -> bool:
    return cipher.endswith("-gcm@openssh.com") or \
        cipher == "chacha20-poly1305@openssh.com"


def offered_lists(config: list[str], host: str, options: dict[str, Any]
                  ) -> dict[int, list[str]]:
    """The lists asyncssh offers with *config* and connect *options*
    (its public :class:`asyncssh.SSHClientConnectionOptions`)."""
    keep = ("encryption_algs", "server_host_key_algs", "kex_algs",
            "mac_algs", "compression_algs")
    settings = asyncssh.SSHClientConnectionOptions(
        config=config, host=host, known_hosts=None, client_keys=None,
        agent_path=None, x509_trusted_certs=None,
        x509_trusted_cert_paths=[],
        **{key: value for key, value in options.items() if key in keep})

    def names(algs: Any) -> list[str]:
        return [a.decode("ascii") if isinstance(a, bytes) else str(a)
                for a in algs]

    ours = {KEX: names(settings.kex_algs),
            ENC_CS: names(settings.encryption_algs),
            MAC_CS: names(settings.mac_algs),
            CMP_CS: names(settings.compression_algs)}
    if options.get("server_host_key_algs"):
        ours[HOST_KEY] = names(options["server_host_key_algs"])
    return ours


async def probe(transport: Transport, host: str, port: int,
                ours: dict[int, list[str]], version: str,
                host_keys_set: bool) -> tuple[str, str] | None:
    """Read the server's offer over *transport*; what :func:`unmatched`
    says of it.  With no host key list of ours to compare and
    HostKeyAlgorithms set (*host_keys_set*), a server that matches all
    the other lists is taken to have refused the host key types."""
    reader: Any
    writer: Any
    if transport.sock is not None:
        reader, writer = await asyncio.open_connection(sock=transport.sock)
    elif transport.tunnel is not None:
        reader, writer = await transport.tunnel.open_connection(host, port)
    else:
        return None
    try:
        theirs = await server_offer(reader, writer, version)
    finally:
        writer.close()
    if theirs is None:
        return None
    found = unmatched(ours, theirs)
    if found is None and host_keys_set and HOST_KEY not in ours:
        return "host key type", ",".join(theirs[HOST_KEY])
    return found


async def negotiation_failure(
        open_transport: Callable[[], Awaitable[Transport]], r: Resolved,
        our_lists: Callable[[], dict[int, list[str]]], version: str
        ) -> list[Message] | None:
    """ssh's "Unable to negotiate" line, if that is why the server hung
    up; None if it is not (or the server cannot be asked again).

    *our_lists* gives the client's lists (:func:`offered_lists`).
    """
    transport: Transport | None = None
    try:
        ours = our_lists()
        transport = await open_transport()
        found = await asyncio.wait_for(probe(
            transport, r.hostname, r.port, ours, version,
            r.host_key_algorithms_set), 15)
    except (asyncssh.Error, OSError, ValueError, EOFError, FatalError,
            asyncio.IncompleteReadError, TimeoutError):
        return None
    finally:
        if transport is not None:
            transport.close()
    if found is None:
        return None
    ip, port = (transport.addr, r.port) if transport.addr else \
        ("UNKNOWN", 65535)
    return [(LogLevel.ERROR,
             f"Unable to negotiate with {ip} port {port}: no matching "
             f"{found[0]} found. Their offer: {found[1]}")]
