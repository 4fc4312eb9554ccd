"""A ProxyJump value (``-J`` or ``ProxyJump``) checked as ssh checks it.

:func:`jump_error` is readconf.c's ``parse_jump`` as Debian's ssh 9.2
has it (with OpenSSH 10.3's stricter names backported): each hop, last
first, must be ``[user@]host[:port]`` or an ``ssh://`` URI without a
path, and on the command line the host and user may not hold shell
characters.  The ``ssh://`` host is not checked with ``valid_domain``.
"""

from __future__ import annotations

from psftp_shell.core.libc_parse import (
    a2port,
    cleanhostname,
    hpdelim2,
    parse_user_host_port,
)

_HOST_BAD = "'`\"$\\;&<>|(){},"
_USER_BAD = "'`\";&<>|(){}"


def _valid_hostname(host: str) -> bool:
    """ssh's ``ssh_valid_hostname``."""
    return not host.startswith("-") and not any(
        c in _HOST_BAD or c.isspace() or not c.isprintable() for c in host)


def _valid_user(user: str) -> bool:
    """ssh's ``ssh_valid_ruser``."""
    if user.startswith("-") or user.endswith("\\"):
        return False
    for index, char in enumerate(user):
        if char in _USER_BAD or (char.isascii() and not char.isprintable()):
            return False
        if char.isspace() and user[index + 1:index + 2] == "-":
            return False
    return True


def _ssh_uri(text: str) -> tuple[str | None, str] | None | bool:
    """misc.c ``parse_ssh_uri``: (user, host); False if not a URI."""
    if not text.startswith("ssh://"):
        return False
    text = text[len("ssh://"):]
    user = None
    at = text.find("@")
    if at >= 0:
        user = text[:at].split(";", 1)[0]
        if not user:
            return None
        text = text[at + 1:]
    fields = hpdelim2(text)
    if fields is None or not fields[0]:
        return None
    rest = fields[2]
    if rest and fields[1] == ":":
        port, _, rest = rest.partition("/")
        if a2port(port) <= 0:
            return None
    return None if rest else (user, cleanhostname(fields[0]))


def jump_error(value: str, *, strict: bool) -> list[str] | None:
    """None if ssh takes the ProxyJump *value*; else ssh's lines before
    its own "Invalid" line (*strict*: given on the command line)."""
    if value.lower() == "none":
        return None
    hops = value.split("#", 1)[0].rstrip(" \t\r\n").split(",")
    for hop in reversed(hops):
        parsed = _ssh_uri(hop)
        if parsed is False:
            parsed = parse_user_host_port(hop)
        if not isinstance(parsed, tuple):
            return []
        user, host = parsed
        if strict and not _valid_hostname(host):
            return [f'parse_jump: invalid hostname "{host}"']
        if strict and user is not None and not _valid_user(user):
            return [f'parse_jump: invalid username "{user}"']
    return None
