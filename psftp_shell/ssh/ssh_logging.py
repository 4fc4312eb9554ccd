"""asyncssh's debug log on stderr, for ssh's ``-v``, ``-vv`` and ``-vvv``."""

from __future__ import annotations

import logging
import sys

import asyncssh

_logging_configured = False


def configure_logging(verbose: int) -> None:
    """Send asyncssh's debug log to stderr for ``-v`` (once per process)."""
    global _logging_configured
    if verbose <= 0 or _logging_configured:
        return
    _logging_configured = True
    level = min(verbose, 3)
    asyncssh.set_debug_level(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"debug{level}: %(message)s"))
    log = logging.getLogger("asyncssh")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
