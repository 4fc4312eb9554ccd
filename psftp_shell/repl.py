"""The interactive shell: a prompt_toolkit REPL with the ``sftp> `` prompt.

Only this module and its completer import prompt_toolkit.  A command runs
as a task while the prompt is away; Ctrl-C during it prints sftp's
``Interrupt`` and asks the command to stop (transfers drain their
outstanding requests and close their handles); a second Ctrl-C cancels it
outright.  Ctrl-C at the prompt clears the line, Ctrl-D leaves.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from psftp_shell.commands import FAILED, QUIT, run_line
from psftp_shell.context import Shell

PROMPT = "sftp> "


def history_path(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/psftp-shell/history``."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return Path(state) / "psftp-shell" / "history"


def _history() -> History:
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()


async def run_command(shell: Shell, line: str) -> int:
    """Run one line with Ctrl-C bound to interrupting it."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run_line(shell, line, echo=False,
                                          abort=False))

    def interrupt() -> None:
        shell.out.stderr.write(b"\rInterrupt  \n")
        shell.out.stderr.flush()
        if shell.interrupted:
            task.cancel()
        shell.interrupted = True

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        return await task
    except asyncio.CancelledError:
        if asyncio.current_task() is not None and \
                asyncio.current_task().cancelling():  # type: ignore
            raise
        return 0
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        shell.interrupted = False


async def run_repl(shell: Shell) -> int:
    """Prompt for commands until quit or end of input; return 0."""
    session: PromptSession[str] = PromptSession(history=_history())
    while True:
        try:
            line = await session.prompt_async(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            shell.out.write("\n")
            return 0
        result = await run_command(shell, line)
        if result in (QUIT, FAILED):
            return 0
