"""Command-line entry point (work in progress)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run psftp-shell; return the process exit status."""
    raise SystemExit("psftp-shell: not implemented yet")
