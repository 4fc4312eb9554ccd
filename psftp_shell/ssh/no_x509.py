"""asyncssh without its X.509 shim where the shim cannot load anyway.

When asyncssh is imported it tries its X.509 certificate support (RFC
6187 host keys and client certificates): the shim imports cryptography's
X.509 package, then pyOpenSSL.  psftp-shell does not install pyOpenSSL,
so where it is absent the attempt always ends in an ImportError that
asyncssh catches, and the first half costs about 18 ms of CPU at every
start (the X.509 name parser compiles its regular expressions).

Marking the shim absent before asyncssh's first import takes the path
asyncssh keeps for a system without X.509 support, at no cost.  Where
pyOpenSSL is installed nothing is changed: a later asyncssh that needed
its shim would have it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping

SHIM = "asyncssh.crypto.x509"
NEEDS = "OpenSSL"
"""What the shim imports after cryptography's X.509 (pyOpenSSL)."""


def unloadable(modules: Mapping[str, object],
               find_spec: Callable[[str], object]) -> bool:
    """Whether asyncssh is still to be imported and its shim would fail."""
    return "asyncssh" not in modules and SHIM not in modules and \
        find_spec(NEEDS) is None


def leave_out() -> None:
    """Spare asyncssh's import the shim it cannot load (before asyncssh
    is imported; afterwards, or with pyOpenSSL, nothing changes)."""
    if unloadable(sys.modules, importlib.util.find_spec):
        sys.modules[SHIM] = None    # type: ignore[assignment]
