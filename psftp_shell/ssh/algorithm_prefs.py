"""The ciphers and host key algorithms a connection offers, in order.

:func:`preferred_ciphers` reads a ``Ciphers`` value as ssh does (names,
patterns, ``^``/``+``/``-`` lists) over asyncssh's ciphers and puts
AES-GCM first; :func:`host_key_algs` offers the algorithms of the keys
known_hosts holds for the host first, as ssh does.  The names checked
against ssh's own lists are :mod:`psftp_shell.ssh.algorithms`.
"""

from __future__ import annotations

import fnmatch

from psftp_shell.ssh import asyncssh_checks as sshinternals


def preferred_ciphers(spec: str | None = None,
                      lists: tuple[list[str], list[str]] | None = None
                      ) -> list[str] | None:
    """The ciphers allowed, AES-GCM first: it costs the least CPU.

    *spec* is a ``Ciphers`` value (ssh_config, ``-o`` or ``-c``): a list
    of names or wildcard patterns, or one with a ``^`` (before the
    defaults), ``+`` (after them) or ``-`` (removed from them) in front.
    Without one, asyncssh's defaults.  An empty result is returned as
    is (asyncssh then reports the bad setting itself).  *lists* are
    asyncssh's (default, known) ciphers, :data:`sshinternals.CIPHERS`
    by default; without them, None: asyncssh reads ``Ciphers`` itself.
    """
    lists = lists or sshinternals.CIPHERS
    if lists is None:
        return None
    defaults, known = lists
    gcm = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    allowed = defaults if spec is None else _expand_ciphers(spec, defaults,
                                                            known)
    return [a for a in gcm if a in allowed] + [
        a for a in allowed if a not in gcm]


def _expand_ciphers(spec: str, defaults: list[str], known: list[str]
                    ) -> list[str]:
    """ssh's reading of a ``Ciphers`` value, over asyncssh's ciphers."""
    prefix = spec[:1] if spec[:1] in ("^", "+", "-") else ""
    named = [alg for pattern in spec[len(prefix):].split(",")
             for alg in known if fnmatch.fnmatchcase(alg, pattern)]
    if prefix == "^":
        named += defaults
    elif prefix == "+":
        named = defaults + named
    elif prefix == "-":
        named = [alg for alg in defaults if alg not in named]
    return list(dict.fromkeys(named))


def host_key_algs(known: list[bytes], set_by_user: bool
                  ) -> list[str] | None:
    """The host key algorithms to offer: *known* first, then the rest.

    *known* are the algorithms of the keys known_hosts holds for the
    host; the rest are asyncssh's defaults.  None (asyncssh's own
    choice) when nothing is known, ``HostKeyAlgorithms`` is set
    (*set_by_user*) or asyncssh's defaults cannot be read.
    """
    known_algs = [a.decode("ascii") for a in known]
    defaults = sshinternals.HOST_KEY_DEFAULTS
    if known_algs and not set_by_user and defaults:
        return known_algs + [a for a in defaults if a not in known_algs]
    return None
