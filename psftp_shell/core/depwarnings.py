"""Keep the libraries' own warnings off the user's terminal.

sftp prints nothing but its own lines, and scripts compare stderr with
what sftp writes.  A library release that starts warning at import time
(cryptography 51 deprecating DSA inside asyncssh's import, for example)
must not change that.  The filters here are narrow: only the deprecation
family and plain ``UserWarning`` subclasses (cryptography's deprecation
warning is one), and only when the warning is attributed to one of the
libraries psftp-shell runs on.  Anything raised in psftp-shell's own
modules still shows.  ``-v`` lifts the filters: debug output is where a
user looks for such things.

:func:`quiet` runs from the package's ``__init__``, so it is in place
before the first import of asyncssh or cryptography whichever way the
program starts (the console script, ``python -m psftp_shell``, the
demo).
"""

from __future__ import annotations

import warnings

# The libraries psftp-shell imports, directly or through them.
DEPENDENCIES = ("asyncssh", "cryptography", "bcrypt", "nacl", "cffi",
                "prompt_toolkit", "rich", "pygments", "wcwidth",
                "markdown_it", "mdurl")
CATEGORIES: tuple[type[Warning], ...] = (
    DeprecationWarning, PendingDeprecationWarning, FutureWarning,
    UserWarning)

_MODULES = "(" + "|".join(DEPENDENCIES) + r")(\..*)?$"
_installed: list[type[Warning]] = []


def quiet() -> None:
    """Ignore the dependencies' deprecation-family warnings (idempotent)."""
    if _installed:
        return
    for category in CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=_MODULES)
        _installed.append(category)


def show() -> None:
    """Let the dependencies' warnings through again (``-v``)."""
    if not _installed:
        return
    for category in CATEGORIES:
        warnings.filterwarnings("default", category=category, module=_MODULES)
    _installed.clear()
