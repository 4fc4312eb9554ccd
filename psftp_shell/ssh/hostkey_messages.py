"""ssh's texts about host keys, word for word.

The changed-key and revoked-key warnings and the new-key question.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncssh

from psftp_shell.ssh.known_hosts import (
    KnownEntry,
    KnownHosts,
    fingerprint,
    key_type,
)

_MAX_OTHER_NAMES = 8
_BANNER = "@" * 59


def changed_key_warning(key: asyncssh.SSHKey, offending: KnownEntry,
                        known: KnownHosts, name: str) -> list[str]:
    """Return ssh's REMOTE HOST IDENTIFICATION HAS CHANGED text."""
    lines = [
        _BANNER,
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        _BANNER,
        "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
        "Someone could be eavesdropping on you right now "
        "(man-in-the-middle attack)!",
        "It is also possible that a host key has just been changed.",
        f"The fingerprint for the {key_type(key)} key sent by the remote "
        f"host is\n{fingerprint(key)}.",
        "Please contact your system administrator.",
    ]
    files = known.user_files or known.global_files
    if files:
        lines.append(f"Add correct host key in {files[0]} to get rid of "
                     "this message.")
    lines += [
        f"Offending {key_type(offending.key)} key in "
        f"{offending.path}:{offending.line}",
        "  remove with:",
        f'  ssh-keygen -f "{offending.path}" -R "{name}"',
    ]
    return lines


def revoked_warning(key: asyncssh.SSHKey, name: str) -> list[str]:
    """Return ssh's REVOKED HOST KEY DETECTED text."""
    return [
        _BANNER,
        "@       WARNING: REVOKED HOST KEY DETECTED!               @",
        _BANNER,
        f"The {key_type(key)} host key for {name} is marked as revoked.",
        "This could mean that a stolen key is being used to",
        "impersonate this host.",
    ]


def new_key_prompt(key: asyncssh.SSHKey, name: str, ip: str,
                   other_names: Sequence[str]) -> str:
    """Return ssh's "authenticity of host ... can't be established" question.
    """
    lines = [f"The authenticity of host '{name} ({ip})' can't be "
             "established.",
             f"{key_type(key)} key fingerprint is {fingerprint(key)}."]
    if not other_names:
        lines.append("This key is not known by any other names.")
    else:
        lines.append("This host key is known by the following other "
                     "names/addresses:")
        lines += [f"    {n}" for n in other_names[:_MAX_OTHER_NAMES]]
        extra = len(other_names) - _MAX_OTHER_NAMES
        if extra > 0:
            lines.append(f"    ({extra} additional names omitted)")
    lines.append("Are you sure you want to continue connecting "
                 "(yes/no/[fingerprint])? ")
    return "\n".join(lines)
