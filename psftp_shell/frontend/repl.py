"""The interactive shell: a prompt_toolkit REPL with the ``sftp> `` prompt.

Only this module and :mod:`psftp_shell.frontend.completion` import
prompt_toolkit. Editing is emacs-style unless ``~/.editrc`` says ``bind -v``
(as for sftp's libedit) or psftp-shell's config has ``editing-mode = vi``.  The
history persists in ``$XDG_STATE_HOME/psftp-shell/history``.

A command runs as a task while the prompt is away.  Ctrl-C during it
prints sftp's ``Interrupt`` and asks the command to stop (transfers drain
their outstanding requests and close their handles); a second Ctrl-C
cancels it outright.  Ctrl-C at the prompt clears the line, Ctrl-D
leaves, Ctrl-Z suspends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output as PTOutput
from prompt_toolkit.output import create_output
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.shortcuts import CompleteStyle

from psftp_shell.core.output import INTERRUPT
from psftp_shell.frontend import gc_pause
from psftp_shell.frontend.completion import ShellCompleter, completion_bindings
from psftp_shell.frontend.progress import observing
from psftp_shell.shell.command_line import QUIT, run_line
from psftp_shell.shell.context import Shell

PROMPT = "sftp> "
CONFIG_EDITING_MODE = "editing-mode"
_EDITRC_PROGRAMS = ("sftp", "psftp-shell")


# -- settings -----------------------------------------------------------------

def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def history_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/psftp-shell/history`` (``~/.local/state/...``).

    As the XDG specification says, a relative ``$XDG_STATE_HOME`` is
    ignored.
    """
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(_home(env), ".local", "state")
    return Path(state) / "psftp-shell" / "history"


def open_history(path: Path) -> History:
    """A file history at *path*, created private (0600); in memory if the
    file cannot be created.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o600))
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def editrc_mode(text: str) -> str | None:
    """The editing mode an editrc sets (``bind -v``/``bind -e``), if any.

    Lines may be limited to a program with a ``prog:`` prefix, as libedit
    allows; those for ``sftp`` and ``psftp-shell`` count.
    """
    mode = None
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        first = words[0]
        if ":" in first:
            program, _, rest = first.partition(":")
            if program not in _EDITRC_PROGRAMS:
                continue
            words = ([rest] if rest else []) + words[1:]
        if len(words) >= 2 and words[0] == "bind":
            if words[1] == "-v":
                mode = "vi"
            elif words[1] == "-e":
                mode = "emacs"
    return mode


def _config_mode(env: Mapping[str, str]) -> str | None:
    try:
        from psftp_shell.frontend.config_file import load_config
        value = load_config(env).values.get(CONFIG_EDITING_MODE)
    except Exception:   # a broken config was reported at startup
        return None
    return value if value in ("vi", "emacs") else None


def _editrc_file_mode(env: Mapping[str, str]) -> str | None:
    path = env.get("EDITRC") or os.path.join(_home(env), ".editrc")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return editrc_mode(f.read())
    except OSError:
        return None


def editing_mode(environ: Mapping[str, str] | None = None) -> EditingMode:
    """vi or emacs: the config file first, then ``~/.editrc``."""
    env = os.environ if environ is None else environ
    mode = _config_mode(env) or _editrc_file_mode(env)
    return EditingMode.VI if mode == "vi" else EditingMode.EMACS


# -- running commands ---------------------------------------------------------

def _write_interrupt(shell: Shell) -> None:
    with contextlib.suppress(OSError, ValueError):
        shell.out.stderr.write(INTERRUPT)
        shell.out.stderr.flush()


async def run_command(shell: Shell, line: str) -> int:
    """Run one line with Ctrl-C bound to interrupting it.

    Returns what :func:`~psftp_shell.shell.command_line.run_line` returns; 0 if
    the command was cancelled by a second Ctrl-C.
    """
    loop = asyncio.get_running_loop()
    shell.interrupted = False
    with observing(shell):
        task = asyncio.ensure_future(
            run_line(shell, line, echo=False, abort=False))

        def interrupt() -> None:
            _write_interrupt(shell)
            if shell.interrupted:
                task.cancel()
            shell.interrupted = True

        handled = True
        try:
            loop.add_signal_handler(signal.SIGINT, interrupt)
        except (ValueError, RuntimeError):     # not the main thread
            handled = False
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return 0
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGINT)
            shell.interrupted = False


def terminal_output() -> PTOutput:
    """prompt_toolkit's output for the terminal, asking it nothing.

    prompt_toolkit asks a terminal where its cursor is (a cursor
    position request) and, when the first line is entered, waits up to
    a second for the answer, then two more at the next prompt.  A
    program driving the session (expect, pexpect) never answers, and
    sftp asks nothing; without the question the menus are sized from
    the terminal's height alone.
    """
    output = create_output()
    if isinstance(output, Vt100_Output):
        output.enable_cpr = False
    return output


def make_session(shell: Shell, *, completer: ShellCompleter | None = None,
                 history: History | None = None,
                 input: Input | None = None,
                 output: PTOutput | None = None,
                 environ: Mapping[str, str] | None = None
                 ) -> PromptSession[str]:
    """The prompt session: history, completion, editing mode, Ctrl-Z."""
    if completer is None:
        completer = ShellCompleter(shell)
    if history is None:
        history = open_history(history_path(environ))
    return PromptSession(
        history=history, completer=completer,
        complete_while_typing=False,
        complete_style=CompleteStyle.MULTI_COLUMN,
        key_bindings=completion_bindings(completer),
        editing_mode=editing_mode(environ),
        enable_suspend=True, enable_history_search=False,
        mouse_support=False, input=input,
        output=output if output is not None else terminal_output())


async def run_repl(shell: Shell, *, session: PromptSession[str] | None
                   = None) -> int:
    """Prompt for commands until quit or end of input; return 0."""
    if session is None:
        session = make_session(shell)
    completer = session.completer
    while True:
        try:
            line = await session.prompt_async(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            shell.out.write("\n")
            return 0
        gc_pause.freeze_more()
        try:
            result = await run_command(shell, line)
        finally:
            if isinstance(completer, ShellCompleter):
                completer.cache.clear()
        if result == QUIT:
            return 0
