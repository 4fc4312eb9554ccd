"""Entry point for ``python -m psftp_shell``."""

import sys

from psftp_shell.cli import main

sys.exit(main())
