"""Logging in with up to three round trips fewer than ssh, where safe.

ssh first asks the server which methods it allows (a "none" request),
then asks whether it would accept a key before signing with it.  Each
question costs a round trip per connection: 200 ms before the first
prompt on a 100 ms path, and again for every stream of ``-n``.  Two
shortcuts, both answered by any server exactly as the questions are:

- When public-key authentication comes first in the client's order, the
  first request is a key, not "none": a refusal lists the methods just
  as the answer to "none" does, and asyncssh goes on from that list.
- A key that is unencrypted on disk (not an agent's, not on a security
  key) is offered with its signature at once (RFC 4252 allows it):
  signing it asks the user nothing, and a server that does not take the
  key refuses it as it would the question.  Keys that need a passphrase,
  an agent's consent or a touch are still only offered first, as ssh
  does, so that no one is asked for a key the server would refuse.

And one more with OpenSSH's sshd, which reads its client's packets in
order: authentication starts right behind the request for the
"ssh-userauth" service instead of a round trip later, when the service
is accepted (:func:`_early_ext_info`).  The trigger is the server's
EXT_INFO, which OpenSSH sends with its NEWKEYS, so that the key's
signature algorithm is chosen with the server's list in hand.

This reaches into asyncssh's client authentication.  :data:`HOOKS`
names what it relies on and the digest it was reviewed against
(:mod:`psftp_shell.ssh.asyncssh_private`): with an asyncssh whose internals
differ, :func:`install` leaves asyncssh as it is and logins take the
ordinary round trips.  :func:`install` is idempotent, :func:`uninstall`
puts asyncssh back, and connections whose owner does not opt in keep
asyncssh's behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import asyncssh

from psftp_shell.ssh.asyncssh_private import PrivateUse

# Methods that come before publickey in the usual order but never apply
# to a connection without Kerberos or host-based keys.
_NEVER_HERE = (b"gssapi-keyex", b"gssapi-with-mic", b"hostbased")
_USERAUTH = b"ssh-userauth"


class Owner(Protocol):
    """What a connection's client object offers to opt in."""

    def signs_at_once(self, keypair: asyncssh.SSHKeyPair) -> bool:
        """Whether *keypair* may be offered with its signature at once."""
        ...

    def auth_early(self) -> bool:
        """Whether authentication may start before the service is
        accepted (only OpenSSH servers are asked)."""
        ...


def _relies_on() -> Sequence[object]:
    """asyncssh's private code the shortcuts replace or call."""
    from asyncssh import auth
    from asyncssh.connection import SSHClientConnection, SSHConnection
    from asyncssh.constants import MSG_EXT_INFO, MSG_SERVICE_ACCEPT
    from asyncssh.packet import Boolean, SSHPacket, String  # noqa: F401
    from asyncssh.public_key import SSHLocalKeyPair  # noqa: F401
    handlers = SSHConnection._packet_handlers
    if handlers[MSG_EXT_INFO] is not SSHConnection._process_ext_info or \
            handlers[MSG_SERVICE_ACCEPT] is not \
            SSHConnection._process_service_accept:
        raise AttributeError("packet handlers moved")
    if b"publickey" not in auth._client_auth_handlers:
        raise AttributeError("no publickey client auth handler")
    return (auth._ClientPublicKeyAuth, auth.ClientAuth.send_request,
            SSHConnection._process_ext_info,
            SSHConnection._process_service_accept,
            SSHClientConnection.try_next_auth)


HOOKS = PrivateUse("quick login", _relies_on, {
    "2.24.1": "18aa77ceed5bfece",
})
"""The internals the login shortcuts use, as reviewed."""

_saved: dict[str, Any] = {}


def problem() -> str | None:
    """Why the shortcuts are off with this asyncssh, or None."""
    return HOOKS.problem(asyncssh.__version__)


def active() -> bool:
    """Whether the shortcuts are installed."""
    return bool(_saved)


def install() -> bool:
    """Use the quick public-key method and the early start of
    authentication for asyncssh's client side, when asyncssh's
    internals are the reviewed ones; returns whether they are in use."""
    if _saved:
        return True
    if problem() is not None:
        return False
    from asyncssh import auth
    if auth._client_auth_handlers[b"publickey"] is not \
            auth._ClientPublicKeyAuth:
        return False    # someone else's already
    from asyncssh.connection import SSHClientConnection, SSHConnection
    from asyncssh.constants import MSG_EXT_INFO, MSG_SERVICE_ACCEPT
    _saved["publickey"] = auth._client_auth_handlers[b"publickey"]
    _saved["handlers"] = vars(SSHClientConnection).get("_packet_handlers")
    auth._client_auth_handlers[b"publickey"] = _quick_public_key_auth()
    SSHClientConnection._packet_handlers = {
        **SSHConnection._packet_handlers,
        MSG_EXT_INFO: _early_ext_info,
        MSG_SERVICE_ACCEPT: _accept_after_early_auth,
    }
    return True


def uninstall() -> None:
    """Give asyncssh its own behaviour back (tests of the fallback)."""
    if not _saved:
        return
    from asyncssh import auth
    from asyncssh.connection import SSHClientConnection
    auth._client_auth_handlers[b"publickey"] = _saved["publickey"]
    if _saved["handlers"] is None:
        del SSHClientConnection._packet_handlers
    else:
        SSHClientConnection._packet_handlers = _saved["handlers"]
    _saved.clear()


def skip_probe(conn: asyncssh.SSHClientConnection) -> bool:
    """Start *conn*'s authentication with a key instead of "none".

    Only when the shortcuts are installed, publickey is the first method
    that can apply in the client's order (PreferredAuthentications) and
    authentication has not begun; returns whether it did.
    """
    if not _saved:
        return False
    methods = getattr(conn, "_auth_methods", None)
    preferred = getattr(conn, "_preferred_auth", None)
    if methods != [b"none"] or not preferred:
        return False
    if getattr(conn, "_gss", None) is not None or \
            getattr(conn, "_client_host_keys", None):
        return False
    usable = [m for m in preferred if m not in _NEVER_HERE]
    if not usable or usable[0] != b"publickey":
        return False
    # "none" stays behind it: with no key to offer, asyncssh moves on
    # to it and learns the methods as usual.
    conn._auth_methods = [b"publickey", b"none"]
    return True


def _quick_public_key_auth() -> type:
    """asyncssh's public-key authentication, signing at once when the
    connection's owner allows it for the key."""
    from asyncssh import auth
    from asyncssh.packet import Boolean, String

    class QuickPublicKeyAuth(auth._ClientPublicKeyAuth):
        async def _start(self) -> None:
            conn: Any = self._conn
            keypair = await conn.public_key_auth_requested()
            self._keypair = keypair
            if keypair is None:
                conn.try_next_auth(next_method=True)
                return
            owner = getattr(conn, "_owner", None)
            check = getattr(owner, "signs_at_once", None)
            if check is not None and check(keypair):
                self.logger.debug1("Trying public key auth with %s key, "
                                   "signed at once", keypair.algorithm)
                await self._send_signed_request()
                return
            self.logger.debug1("Trying public key auth with %s key",
                               keypair.algorithm)
            await self.send_request(Boolean(False),
                                    String(keypair.algorithm),
                                    String(keypair.public_data))

    return QuickPublicKeyAuth


def _early_ext_info(conn: Any, pkttype: int, pktid: int,
                    packet: Any) -> None:
    """asyncssh's EXT_INFO handler; then, on an OpenSSH server whose
    owner opts in, authentication begins without waiting for the
    SERVICE_ACCEPT (sshd dispatches the USERAUTH_REQUEST after it)."""
    from asyncssh.connection import SSHConnection
    SSHConnection._process_ext_info(conn, pkttype, pktid, packet)
    owner: Any = getattr(conn, "_owner", None)
    opted = getattr(owner, "auth_early", None)
    if conn._next_service != _USERAUTH or conn._auth_in_progress or \
            conn._auth_complete or opted is None or not opted() or \
            not conn._server_version.startswith(b"SSH-2.0-OpenSSH_"):
        return
    conn.logger.info("Beginning auth for user %s, before the service "
                     "is accepted", conn._username)
    conn._auth_in_progress = True
    conn._psftp_early_auth = True
    owner.begin_auth(conn._username)
    conn.try_next_auth()


def _accept_after_early_auth(conn: Any, pkttype: int, pktid: int,
                             packet: Any) -> None:
    """asyncssh's SERVICE_ACCEPT handler, unless authentication began
    already (:func:`_early_ext_info`): then the accept is only checked."""
    from asyncssh.connection import SSHConnection
    from asyncssh.misc import ServiceNotAvailable
    if not getattr(conn, "_psftp_early_auth", False):
        SSHConnection._process_service_accept(conn, pkttype, pktid, packet)
        return
    service = packet.get_string()
    packet.check_end()
    if service != conn._next_service:
        raise ServiceNotAvailable("Unexpected service in service accept")
    conn.logger.debug2("Request for service %s accepted", service)
    conn._next_service = None


def plain(keypair: asyncssh.SSHKeyPair) -> bool:
    """Whether signing with *keypair* asks nothing of anyone: a key held
    in memory, not on a security key."""
    try:
        from asyncssh.public_key import SSHLocalKeyPair
    except ImportError:
        return False
    return isinstance(keypair, SSHLocalKeyPair) and \
        not keypair.algorithm.startswith(b"sk-") and \
        b"-sk-" not in keypair.algorithm
