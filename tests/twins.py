"""Run OpenSSH's sftp and psftp-shell side by side on the same input.

The differential tests build on this: the same command line and the same
stdin go to both programs, and their exit status, stdout and stderr are
compared after the few differences psftp-shell documents (its name, the
``[-n connections]`` group of the usage text) are made equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PSFTP = [sys.executable, "-m", "psftp_shell"]


@dataclass(frozen=True)
class Run:
    """What one program did."""

    status: int
    stdout: bytes
    stderr: bytes


def run(argv: list[str], *, stdin: bytes = b"", cwd: Path | None = None,
        env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """Run *argv* to completion with *stdin* and no terminal."""
    environ = dict(os.environ)
    environ.update(env or {})
    result = subprocess.run(argv, input=stdin, capture_output=True,
                            cwd=cwd, env=environ, timeout=timeout)
    return Run(result.returncode, result.stdout, result.stderr)


def psftp(args: list[str], **kwargs: object) -> Run:
    """Run psftp-shell (as ``python -m psftp_shell``)."""
    return run(PSFTP + args, **kwargs)  # type: ignore[arg-type]


def sftp(sftp_bin: str, args: list[str], **kwargs: object) -> Run:
    """Run OpenSSH's sftp."""
    return run([sftp_bin] + args, **kwargs)  # type: ignore[arg-type]


def same_usage(text: bytes) -> bytes:
    """Make psftp-shell's usage text comparable with sftp's.

    The only differences allowed: the program name, and the
    ``[-n connections]`` group with the line wrapping it causes.
    """
    text = text.replace(b"psftp-shell", b"sftp").replace(
        b"__main__.py", b"sftp")
    start = text.find(b"usage: sftp")
    if start < 0:
        return text
    head, usage = text[:start], text[start:]
    words = usage.replace(b"[-n connections]", b"").split()
    return head + b" ".join(words) + b"\n"
