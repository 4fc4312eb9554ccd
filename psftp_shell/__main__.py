"""Entry point for ``python -m psftp_shell``."""

import sys

from psftp_shell.frontend.cli import main, run

# As the program itself (``python -m``), leave without the interpreter's
# teardown; run by another program (``runpy.run_module``), return as
# main() does, so that the caller carries on.
sys.exit(run() if sys.modules["__main__"].__dict__ is globals() else main())
