"""For the fault campaign only: SIGUSR1 prints every asyncio task's stack.

:mod:`tests.campaign` puts this directory on ``PYTHONPATH`` of the
psftp-shell it runs; when a trial does not end within its bound, the
campaign sends SIGUSR1 before the kill, and the stacks (on stderr) go
into the trial's report: where it waited.
"""

from __future__ import annotations

import signal
import sys
import types
from typing import Any


def _chain(coro: Any) -> list[str]:
    """The frames of *coro* and of what it awaits, outermost first."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or \
            getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f"  {code.co_filename.rsplit('/', 1)[-1]}:"
                         f"{frame.f_lineno} {code.co_name}")
        coro = getattr(coro, "cr_await", None) or \
            getattr(coro, "gi_yieldfrom", None)
    return lines


def _dump(signum: int, frame: types.FrameType | None) -> None:
    import asyncio
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        return
    for task in tasks:
        print(f"=== task {task.get_name()}", file=sys.stderr)
        print("\n".join(_chain(task.get_coro())), file=sys.stderr)
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _dump)
