"""End the program without tearing the interpreter down.

Once psftp-shell is done, Python's own shutdown frees every object and
module one at a time: about 45 ms of CPU after the last byte, on every
run (a script calling psftp-shell once per file pays it each time; sftp
exits at once).  Nothing in that teardown is needed: streams are
flushed, connections closed and temporaries removed before it starts.

:func:`watch` runs from the package's ``__init__``, so its exit handler
is registered before any library's and runs after all of them (atexit
runs handlers last-registered first).  It does nothing unless the
program's entry point said, through :func:`leave_with`, that it is
ending on its own terms; then it flushes stdout and stderr and leaves
with ``os._exit``.  A library importing psftp-shell, a test calling
``main()``, or a program running ``psftp_shell`` with ``runpy`` never
arms it; nor does anything when exit handlers were registered before
psftp-shell was imported (coverage's, a host program's): those belong
to whoever runs it, and the normal shutdown runs them.  If a flush
fails, the normal shutdown runs and reports it as before.
"""

from __future__ import annotations

import atexit
import os
import sys

_armed: list[int] = []         # the status to leave with, once armed
_others_first: list[bool] = []  # set by watch(): handlers came first


def _handlers_before() -> bool:
    """Whether exit handlers were registered before this module's."""
    count = getattr(atexit, "_ncallbacks", None)
    try:
        return bool(count()) if callable(count) else False
    except Exception:       # an interpreter without it: assume none
        return False


def _leave() -> None:
    if not _armed or _others_first != [False]:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(_armed[-1])


def watch() -> None:
    """Register the exit handler (once, first of all)."""
    if not _others_first:
        _others_first.append(_handlers_before())
        atexit.register(_leave)


def leave_with(status: int) -> int:
    """Arm the quick exit with *status*; return *status* for sys.exit."""
    _armed.append(status)
    return status
