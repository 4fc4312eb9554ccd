"""ssh's own answers to ``-o`` options that cannot apply under sftp.

:data:`ALIASES` are the old names ssh reads as other options.
:func:`refusal` gives ssh's error lines for a ``-o`` that ssh refuses
on the command line or that cannot go with sftp's ``-s sftp`` session:
``Host``, ``Match`` and ``Include``, a ``SessionType`` other than
``subsystem``, a ``RemoteCommand``, ``StdinNull yes``, and a
``LocalCommand`` with a token ssh does not know (it is never run: sftp
turns ``PermitLocalCommand`` off).
"""

from __future__ import annotations

from psftp_shell.ssh.target import ConnectError
from psftp_shell.ssh.tokens import ALL_TOKENS, expand

# ssh's other names for options (readconf.c), lower case.
ALIASES = {
    "dsaauthentication": "PubkeyAuthentication",
    "keepalive": "TCPKeepAlive",
    "identityfile2": "IdentityFile",
    "skeyauthentication": "KbdInteractiveAuthentication",
    "tisauthentication": "KbdInteractiveAuthentication",
    "pubkeyacceptedkeytypes": "PubkeyAcceptedAlgorithms",
    "hostbasedkeytypes": "HostbasedAcceptedAlgorithms",
}

_SESSION_TYPES = ("none", "subsystem", "default")


def refusal(lower: str, value: str) -> list[str] | None:
    """ssh's lines refusing ``-o lower=value`` under sftp, or None."""
    if lower in ("host", "match"):
        return ["Host directive not supported as a command-line option"]
    if lower == "include":
        return ["Include directive not supported as a command-line option"]
    if lower == "sessiontype":
        if value.lower() not in _SESSION_TYPES:
            return [f'command-line line 0: unsupported option "{value}".']
        if value.lower() != "subsystem":
            return ["Cannot specify -s with -N/SessionType"]
    if lower == "remotecommand" and value.lower() != "none":
        return ["Cannot execute command-line and remote command."]
    if lower == "stdinnull" and value.lower() in ("yes", "true"):
        return []           # sftp's server reads nothing: it just closes
    if lower == "localcommand":
        try:
            expand(value, {key: "" for key in ALL_TOKENS}, ALL_TOKENS,
                   environment=False)
        except ConnectError as exc:
            return exc.ssh_lines
    return None
