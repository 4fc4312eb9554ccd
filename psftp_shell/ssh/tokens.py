"""ssh_config's ``%`` tokens and ``${VAR}`` references, expanded as ssh does.

ssh expands them once, after every config file has been read, with the
final HostName, Port and User; :func:`tokens` builds that table and
:func:`expand` applies it to one value with ssh's own error lines.
Which keywords take which tokens (ssh_config(5), TOKENS):
:data:`PROXY_TOKENS` for ProxyCommand and ProxyJump, :data:`PATH_TOKENS`
(with environment variables) for IdentityFile, CertificateFile,
IdentityAgent, UserKnownHostsFile and ControlPath.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import pwd
import re
import socket

from psftp_shell.ssh.target import ConnectError

PROXY_TOKENS = frozenset("%hnpr")
PATH_TOKENS = frozenset("%CdhiklLnpru")
ALL_TOKENS = PATH_TOKENS | frozenset("fHIKTtj")    # LocalCommand's

_TOKEN = re.compile(r"%(.?)|\$\{([^}]*)(\}?)", re.S)
_PERCENT = re.compile(r"%(.?)", re.S)     # without ${VAR}: $ is a letter


def tokens(hostname: str, port: int, user: str, original: str,
           alias: str | None = None) -> dict[str, str]:
    """ssh's token values for a connection to *hostname*."""
    local = socket.gethostname()
    local_user = local_user_name()
    table = {
        "%": "%", "h": hostname, "p": str(port), "r": user,
        "n": original, "k": alias or original, "u": local_user,
        "l": local, "L": local.split(".", 1)[0],
        "d": os.path.expanduser("~"), "i": str(os.getuid()),
    }
    table["C"] = hashlib.sha1(
        f"{local}{hostname}{port}{user}".encode()).hexdigest()
    return table


def local_user_name() -> str:
    """The local user's name: ssh's ``%u`` and the default login name.

    Like ssh, from the password database (``getpwuid``), not from
    ``$USER`` or ``$LOGNAME``; from those only for a uid the database
    lacks, then the uid itself.
    """
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def expand(value: str, table: dict[str, str], allowed: frozenset[str],
           *, environment: bool) -> str:
    """*value* with its tokens (and ``${VAR}`` if *environment*) expanded.

    Raises :class:`ConnectError` with ssh's lines for an unknown token
    or an unset variable.
    """
    failed = "percent_dollar_expand: failed" if environment else \
        "percent_expand: failed"

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key is not None:
            if key in allowed and key in table:
                return table[key]
            raise ConnectError([
                "vdollar_percent_expand: invalid format" if key == "" else
                f"vdollar_percent_expand: unknown key %{key}", failed])
        var = match.group(2)
        if not match.group(3):
            raise ConnectError([
                f"vdollar_percent_expand: environment variable '{var}' "
                "missing closing '}'", failed])
        if not var:
            raise ConnectError([
                "vdollar_percent_expand: zero-length environment variable",
                failed])
        found = os.environ.get(var)
        if found is None:
            raise ConnectError([
                f"vdollar_percent_expand: env var ${{{var}}} has no value",
                "invalid environment variable expansion"])
        return found

    return (_TOKEN if environment else _PERCENT).sub(one, value)
