"""Entry point for ``python -m psftp_shell``."""

import sys

from psftp_shell.frontend.cli import run

sys.exit(run())
