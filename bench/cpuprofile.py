"""``python -m bench.cpuprofile SSH_CONFIG BATCH [OPTION...]``: where a
transfer's CPU goes.

Runs psftp-shell's command line (``-F SSH_CONFIG -b BATCH OPTION...
psftp-test``) in this process under cProfile on the CPU clock
(``time.process_time``) and prints the functions that took most of it,
by their own time and then cumulatively.  The profiler's own cost
inflates call-heavy Python code, so the shares are indicative; the
benchmark's user + system times are the figures.
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import time

from psftp_shell.devserver import HOST_ALIAS


def main(argv: list[str]) -> int:
    """Profile one psftp-shell run; return 0, or 2 on a usage error."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    config, batch, *options = argv
    sys.argv = ["psftp-shell", "-F", config, "-b", batch, *options,
                HOST_ALIAS]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        runpy.run_module("psftp_shell", run_name="__main__")
    except SystemExit:
        pass
    finally:
        profile.disable()
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumtime").print_stats(60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
