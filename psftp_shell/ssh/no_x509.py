"""asyncssh without its X.509 shim, which OpenSSH has no counterpart of.

When asyncssh is imported it tries its X.509 certificate support (RFC
6187 host keys and client certificates): the shim imports cryptography's
X.509 package, then pyOpenSSL.  psftp-shell does not install pyOpenSSL,
so the attempt always ends in an ImportError that asyncssh catches, and
the first half costs about 18 ms of CPU at every start (the X.509 name
parser compiles its regular expressions).  Where pyOpenSSL happens to be
installed, asyncssh would offer ``x509v3-*`` host key algorithms and
check such host keys against certificate authorities, which OpenSSH's
ssh never does: host keys are to be checked as ssh checks them.

Marking the shim absent before asyncssh's first import takes the path
asyncssh keeps for a system without X.509 support, at no cost.
"""

from __future__ import annotations

import sys

SHIM = "asyncssh.crypto.x509"


def leave_out() -> None:
    """Make asyncssh find no X.509 support (before asyncssh's import;
    afterwards nothing changes)."""
    if "asyncssh" not in sys.modules:
        sys.modules.setdefault(SHIM, None)  # type: ignore[arg-type]
