"""The REPL typed into through prompt_toolkit's pipe input.

A real shell runs over OpenSSH's sftp-server (pipes, no sshd); keys are
sent as a terminal would send them, and the tests watch the buffer, the
shell's output and the files.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.enums import EditingMode
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from psftp_shell.core.output import Output
from psftp_shell.engine.transfer_engine import TEMP_MARK, TransferEngine
from psftp_shell.filecopy import journal
from psftp_shell.frontend import config_file as config_module
from psftp_shell.frontend.repl import (
    editing_mode,
    editrc_mode,
    history_path,
    make_session,
    run_repl,
)
from psftp_shell.shell.context import Settings, Shell
from psftp_shell.shell.remote_session import RemoteSession
from psftp_shell.ssh.transport import PipeTransport

UP = "\x1b[A"
CTRL_C = "\x03"
CTRL_D = "\x04"
TAB = "\t"


async def wait_until(condition: Callable[[], bool], what: str,
                     timeout: float = 10.0) -> None:
    """Poll *condition* until true; fail with *what* after *timeout*."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Repl:
    """A running REPL and the means to type into it."""

    shell: Shell
    session: PromptSession[str]
    keys: PipeInput
    task: asyncio.Task[int]
    root: Path

    @property
    def stdout(self) -> bytes:
        return self.shell.out.stdout.getvalue()  # type: ignore

    @property
    def stderr(self) -> bytes:
        return self.shell.out.stderr.getvalue()  # type: ignore

    @property
    def text(self) -> str:
        return self.session.default_buffer.text

    async def prompting(self) -> None:
        """Wait for the prompt to be up again."""
        await wait_until(lambda: self.session.app.is_running
                         and not self.session.default_buffer.text,
                         "the prompt")

    async def command(self, line: str, expect: bytes) -> None:
        """Type *line* and Enter; wait for *expect* on stdout."""
        await self.prompting()
        before = len(self.stdout)
        self.keys.send_text(line + "\r")
        await wait_until(lambda: expect in self.stdout[before:],
                         f"{expect!r} after {line!r}")

    async def finish(self) -> int:
        """Ctrl-D; return the REPL's status."""
        await self.prompting()
        self.keys.send_text(CTRL_D)
        return await asyncio.wait_for(self.task, 10)


@pytest.fixture
def keys() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe:
        yield pipe


@pytest.fixture
async def repl(tmp_path: Path, sftp_server_bin: str, keys: PipeInput
               ) -> AsyncIterator[Repl]:
    """A REPL over sftp-server: remote files in ``remote``, local cwd
    ``local``, history under ``state``."""
    (tmp_path / "remote").mkdir()
    (tmp_path / "local").mkdir()
    (tmp_path / "remote" / "alpha.txt").write_text("alpha\n")
    (tmp_path / "remote" / "alpine").mkdir()
    (tmp_path / "remote" / "two words.txt").write_text("2\n")
    transport = PipeTransport([sftp_server_bin])
    client = await transport.open_client()
    out = Output(io.BytesIO(), io.BytesIO())
    remote = RemoteSession(client, out)
    await remote.start()
    remote.cwd = str(tmp_path / "remote")
    engine = await TransferEngine.create(client, out)
    shell = Shell(out, remote, engine, str(tmp_path / "local"),
                  Settings(interactive=True))
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    session = make_session(shell, input=keys, output=DummyOutput(),
                           environ=env)
    task = asyncio.ensure_future(run_repl(shell, session=session))
    yield Repl(shell, session, keys, task, tmp_path)
    if not task.done():
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await transport.close()


# -- typing commands ----------------------------------------------------------

async def test_commands_run_and_ctrl_d_leaves(repl: Repl) -> None:
    await repl.command("pwd", b"Remote working directory: " +
                       str(repl.root / "remote").encode() + b"\n")
    await repl.command("lpwd", b"Local working directory: ")
    assert await repl.finish() == 0
    assert repl.stdout.endswith(b"\n\n")    # Ctrl-D prints a newline
    assert repl.stderr == b""


async def test_the_line_editor_is_frozen_after_its_first_line(
        repl: Repl, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its layout and key bindings live as long as the session: out of
    the collector's sight once the first line is read, before the
    command runs."""
    calls: list[bytes] = []
    monkeypatch.setattr("psftp_shell.frontend.gc_pause.freeze_more",
                        lambda: calls.append(repl.stdout))
    await repl.command("pwd", b"Remote working directory")
    assert calls == [b""]
    await repl.command("version", b"SFTP protocol version")
    assert len(calls) == 2          # (the call itself is once-only)
    assert await repl.finish() == 0


async def test_quit_leaves(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("quit\r")
    assert await asyncio.wait_for(repl.task, 10) == 0


async def test_ctrl_c_at_the_prompt_clears_the_line(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("rm alpha.txt")
    await wait_until(lambda: repl.text == "rm alpha.txt", "typing")
    repl.keys.send_text(CTRL_C)
    await repl.command("version", b"SFTP protocol version 3\n")
    assert (repl.root / "remote" / "alpha.txt").exists()
    assert await repl.finish() == 0


async def test_history_is_kept_and_recalled(repl: Repl) -> None:
    await repl.command("pwd", b"Remote working directory")
    await repl.command("version", b"SFTP protocol version")
    await repl.prompting()
    repl.keys.send_text(UP + UP)
    await wait_until(lambda: repl.text == "pwd", "pwd from history")
    repl.keys.send_text("\r")
    await wait_until(lambda: repl.stdout.count(b"Remote working") == 2,
                     "the recalled pwd to run")
    assert await repl.finish() == 0
    path = repl.root / "state" / "psftp-shell" / "history"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # What the next session will find, newest first.
    assert list(FileHistory(str(path)).load_history_strings()) == [
        "pwd", "version", "pwd"]


# -- completion ---------------------------------------------------------------

async def test_tab_completes_a_remote_name(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("get alph" + TAB)
    await wait_until(lambda: repl.text == "get alpha.txt ", "completion")
    repl.keys.send_text("\r")
    await wait_until(lambda: (repl.root / "local" / "alpha.txt").exists(),
                     "the download")
    assert await repl.finish() == 0


def menu(repl: Repl) -> list[str]:
    """The completions the menu shows so far (prompt_toolkit sets the
    menu up first and fills it as the completer yields)."""
    state = repl.session.default_buffer.complete_state
    return [] if state is None else \
        [c.display_text for c in state.completions]


async def test_tab_inserts_common_part_then_cycles(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("get al" + TAB)
    await wait_until(lambda: repl.text == "get alp" and len(menu(repl)) >= 2,
                     "the common part and the menu")
    assert menu(repl) == ["alpha.txt", "alpine/"]
    repl.keys.send_text(TAB + TAB)
    await wait_until(lambda: repl.text == "get alpine/", "the second one")
    repl.keys.send_text(CTRL_C)
    assert await repl.finish() == 0


async def test_names_with_spaces_are_escaped(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("get tw" + TAB)
    await wait_until(lambda: repl.text == "get two\\ words.txt ",
                     "escaped completion")
    repl.keys.send_text("\r")
    await wait_until(
        lambda: (repl.root / "local" / "two words.txt").exists(),
        "the download")
    assert await repl.finish() == 0


async def test_common_part_stops_short_of_a_split_escape(
        repl: Repl) -> None:
    (repl.root / "remote" / "x y").write_text("1")
    (repl.root / "remote" / "x[z").write_text("2")
    await repl.prompting()
    repl.keys.send_text("get x" + TAB)
    await wait_until(lambda: len(menu(repl)) >= 2, "the menu")
    assert repl.text == "get x"         # not "get x\\"
    repl.keys.send_text(TAB)
    await wait_until(lambda: repl.text == "get x\\ y", "the first one")
    repl.keys.send_text(CTRL_C)
    assert await repl.finish() == 0


async def test_local_names_for_put(repl: Repl) -> None:
    (repl.root / "local" / "upload me").write_text("u")
    await repl.prompting()
    repl.keys.send_text("put up" + TAB)
    await wait_until(lambda: repl.text == "put upload\\ me ", "completion")
    repl.keys.send_text(CTRL_C)
    assert await repl.finish() == 0


async def test_listings_are_fresh_after_a_command(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("cd alp" + TAB)
    await wait_until(lambda: repl.text == "cd alp", "the menu")
    repl.keys.send_text(CTRL_C)
    await repl.command("mkdir alps", b"")
    await wait_until(lambda: (repl.root / "remote" / "alps").is_dir(),
                     "mkdir")
    await repl.prompting()
    repl.keys.send_text("cd alpi" + TAB)
    await wait_until(lambda: repl.text == "cd alpine/", "completion")
    repl.keys.send_text(CTRL_C)
    await repl.prompting()
    repl.keys.send_text("rmdir alps" + TAB)
    await wait_until(lambda: repl.text == "rmdir alps/", "the new name")
    repl.keys.send_text(CTRL_C)
    assert await repl.finish() == 0


# -- Ctrl-C during a command --------------------------------------------------

def _temps(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if TEMP_MARK in n]


async def test_ctrl_c_interrupts_a_download(repl: Repl) -> None:
    big = repl.root / "remote" / "big.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)                 # sparse: 1 GiB of zeros
    local = repl.root / "local"
    await repl.prompting()
    repl.keys.send_text("get big.bin\r")
    await wait_until(lambda: bool(_temps(local)), "the download to start")
    assert signal.getsignal(signal.SIGINT) is not \
        signal.default_int_handler
    os.kill(os.getpid(), signal.SIGINT)
    await repl.prompting()
    assert repl.stderr == b"\rInterrupt  \n"
    left = os.listdir(local)            # no big.bin: a temporary, and
    assert len(left) == 1 and _temps(local) == left, left
    assert os.path.isfile(journal.download_path(   # its journal, for reget
        repl.shell.engine.ctx.environ, str(local / "big.bin")))
    assert not repl.shell.interrupted
    await repl.command("pwd", b"Remote working directory")
    assert await repl.finish() == 0


async def test_second_ctrl_c_cancels_the_command(repl: Repl) -> None:
    await repl.prompting()
    repl.keys.send_text("!sleep 3\r")
    # the command's Ctrl-C handler, not Python's: a SIGINT in between
    # would raise KeyboardInterrupt in the test run itself
    await wait_until(lambda: not repl.session.app.is_running and
                     signal.getsignal(signal.SIGINT) is not
                     signal.default_int_handler, "the command to start")
    await asyncio.sleep(0.2)            # and its child with it
    loop = asyncio.get_running_loop()
    started = loop.time()
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
    await repl.prompting()
    assert loop.time() - started < 2
    assert repl.stderr == b"\rInterrupt  \n" * 2
    await repl.command("version", b"SFTP protocol version 3\n")
    assert await repl.finish() == 0


# -- settings -----------------------------------------------------------------

def test_history_path(tmp_path: Path) -> None:
    assert history_path({"XDG_STATE_HOME": "/s", "HOME": "/h"}) == \
        Path("/s/psftp-shell/history")
    assert history_path({"XDG_STATE_HOME": "rel", "HOME": "/h"}) == \
        Path("/h/.local/state/psftp-shell/history")


@pytest.mark.parametrize(("text", "mode"), [
    ("bind -v\n", "vi"),
    ("# bind -v\n", None),
    ("bind -v\nbind -e\n", "emacs"),
    ("sftp:bind -v\n", "vi"),
    ("sftp: bind -v\n", "vi"),
    ("ssh:bind -v\n", None),
    ("bind ^W ed-delete-prev-word\n", None),
])
def test_editrc_mode(text: str, mode: str | None) -> None:
    assert editrc_mode(text) == mode


def test_editing_mode_from_editrc(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c")}
    assert editing_mode(env) is EditingMode.EMACS
    (tmp_path / ".editrc").write_text("bind -v\n")
    assert editing_mode(env) is EditingMode.VI
    other = tmp_path / "other"
    other.write_text("bind -e\n")
    assert editing_mode({**env, "EDITRC": str(other)}) is EditingMode.EMACS


def test_editing_mode_from_config(tmp_path: Path) -> None:
    if "editing-mode" not in config_module.SETTINGS:
        pytest.skip("the config file does not know editing-mode yet")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c")}
    (tmp_path / ".editrc").write_text("bind -v\n")
    (tmp_path / "c" / "psftp-shell").mkdir(parents=True)
    (tmp_path / "c" / "psftp-shell" / "config").write_text(
        "editing-mode = emacs\n")
    assert editing_mode(env) is EditingMode.EMACS
    (tmp_path / ".editrc").unlink()
    (tmp_path / "c" / "psftp-shell" / "config").write_text(
        "editing-mode = vi\n")
    assert editing_mode(env) is EditingMode.VI
