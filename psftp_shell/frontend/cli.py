"""The ``psftp-shell`` command: sftp's ``main()`` and the single place
where errors become exit statuses.

Batch and piped runs never import prompt_toolkit or rich: the REPL and
the progress view are loaded only for an interactive terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import io
import math
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, BinaryIO

from psftp_shell.core import depwarnings, quick_exit
from psftp_shell.core.errors import (
    ConnectionClosed,
    ExitStatus,
    FatalError,
    ShellError,
    UsageError,
)
from psftp_shell.core.output import LOG_DEBUG, LOG_INFO, LOG_QUIET, Output
from psftp_shell.filecopy.copy_context import process_cwd
from psftp_shell.frontend import gc_pause, std_streams
from psftp_shell.frontend.cli_messages import (
    exit_status,
    format_error,
    message_line,
)
from psftp_shell.frontend.config_file import (
    ConfigError,
    load_config,
    resolve_connections,
)
from psftp_shell.frontend.interrupts import (
    Terminator,
    command_interrupts,
    exit_now,
)
from psftp_shell.frontend.options import Options, parse_args
from psftp_shell.sftp.client import ConnectionLost, ProtocolError
from psftp_shell.shell.context import Settings, Shell
from psftp_shell.ssh.transport import PipeTransport, SSHTransport, Transport

if TYPE_CHECKING:
    from psftp_shell.engine.pool import StreamPool
    from psftp_shell.engine.transfer_engine import TransferEngine


def _prog(argv0: str) -> str:
    return os.path.basename(argv0) or "psftp-shell"


def build_transport(opts: Options) -> Transport:
    """Choose the transport the options ask for."""
    if opts.sftp_server_argv is not None:
        return PipeTransport(opts.sftp_server_argv)
    if opts.ssh_program is not None:
        # -S: the program gets exactly the arguments sftp gives its ssh;
        # with -n, one such process per stream.
        return PipeTransport(opts.ssh_args)
    from psftp_shell.ssh.connect import Connector, SSHTarget
    from psftp_shell.ssh.prompter import BatchPrompter, TerminalPrompter
    dest = opts.destination
    assert dest is not None
    target = SSHTarget(
        host=dest.host, port=opts.effective_port, user=dest.user,
        config_file=opts.ssh_config, options=list(opts.ssh_options),
        identities=list(opts.identities), jump=opts.jump,
        cipher=opts.cipher, compression=opts.compression,
        family=4 if opts.ipv4 else 6 if opts.ipv6 else 0,
        forward_agent=opts.forward_agent,
        batch_mode=opts.batchfile is not None,
        # a -q after the last -v makes ssh quiet again
        verbose=opts.verbose if opts.log_level.startswith("DEBUG") else 0,
        quiet=opts.quiet, given=list(opts.ssh_checked))
    prompter = BatchPrompter() if opts.batchfile is not None \
        else TerminalPrompter()
    subsystem = "sftp" if opts.subsystem is None else opts.subsystem
    return SSHTransport(Connector(target, prompter), subsystem)


def _batch_source(opts: Options) -> BinaryIO:
    """The batch file parse_args opened (sftp opens it while parsing)."""
    if opts.batch_fd is None:
        return sys.stdin.buffer
    try:
        return os.fdopen(opts.batch_fd, "rb")
    except IsADirectoryError:   # sftp's fgets() reads a directory as EOF
        os.close(opts.batch_fd)
        return io.BytesIO()


async def _start_dir_or_fetch(shell: Shell, opts: Options) -> int | None:
    """sftp's ``host:path`` handling: cd into a directory, else fetch.

    The commands get their operands as words, never as a command line
    to parse again (OpenSSH 10.4's fix): the server's start directory
    cannot add operands or choose where the download lands.  Returns an
    exit status when the program should end (auto-fetch).
    """
    from psftp_shell.shell.command_line import run_words
    dest = opts.destination
    if opts.sftp_server_argv is not None or dest is None \
            or dest.path is None:
        return None
    path = shell.remote.absolute(dest.path)
    if await shell.remote.is_dir(path) and opts.local_path is None:
        shell.out.info(f"Changing to: {path}")
        if not await run_words(shell, "cd", (path,)):
            return ExitStatus.ERROR
        return None
    local = () if opts.local_path is None else (opts.local_path,)
    ok = await run_words(shell, "get", (dest.path, *local),
                         "a" if opts.resume_all else "")
    return ExitStatus.OK if ok else ExitStatus.ERROR


def _early_pool(transport: Transport, opts: Options, settings: Settings,
                out: Output, source: BinaryIO | None) -> StreamPool | None:
    """``-n``'s streams for a script that will transfer, opened at once.

    They log in alongside the control connection (BatchMode asks
    nothing), instead of after it when the first get or put runs: on a
    long path that saves a whole login.  Interactive sessions still open
    them on first use.
    """
    if settings.streams < 2 or source is None:
        return None
    from psftp_shell.frontend.batch_loop import transfers_ahead
    if not transfers_ahead(source):
        return None
    from psftp_shell.engine.pool import open_early
    from psftp_shell.filecopy.copy_context import DEFAULT_REQUESTS
    connector = getattr(transport, "connector", None)
    if connector is not None:
        connector.overlap = True
    return open_early(transport, settings.streams, out,
                      channels=settings.channels,
                      requests=opts.num_requests or DEFAULT_REQUESTS)


def _hold_logins(transport: Transport, settings: Settings, spread: bool
                 ) -> None:
    """Have the streams' logins start beside the control login, held
    before they authenticate (:mod:`psftp_shell.ssh.held_logins`).

    For a session whose streams open right after it: an interactive one
    (:func:`_open_streams_ahead`; an auto-fetch's transfer takes them
    too) or piped commands' early pool (``-b``'s log in in full
    beside the control login instead).  Not with ``-X addresses=all``
    (each stream picks its address as it starts).
    """
    connector = getattr(transport, "connector", None)
    if connector is None or settings.streams < 2 or spread:
        return
    connector.held_count = math.ceil(settings.streams / settings.channels)


def _open_streams_ahead(engine: TransferEngine, transport: Transport
                        ) -> None:
    """Start opening ``-n``'s streams for an interactive session.

    Quietly (:mod:`psftp_shell.ssh.quiet_logins`): with what the control
    login was told, and nothing said or asked while the first prompt is
    drawn and the user types; a stream that cannot be had so is opened
    at the first transfer, as without this.  They start once the
    session is sure to reach its prompt (not for an auto-fetch, nor a
    start directory that failed), before the line editor is loaded and
    the prompt drawn.  Most take a login held since the control login
    offered its key (:func:`_hold_logins`): past its key exchange, and
    authenticated since the control login succeeded.  Not for
    ``-S``/``-D`` programs (they may write to the terminal) nor
    ``-n 1``.
    """
    pool = engine.pool
    connector = getattr(transport, "connector", None)
    if pool is None or connector is None:
        return
    from psftp_shell.ssh.quiet_logins import quietly
    pool.open_quietly(functools.partial(quietly, connector))


_INTERACTIVE_MODULES = ("psftp_shell.frontend.repl", "rich.cells")
"""What an interactive session will need: its line editor, and the cell
widths of its views (their first frame would import them mid-transfer).
"""


def _preload(modules: list[str]) -> threading.Thread:
    """Import *modules* in a thread while the login waits on the network.

    The login is mostly waiting (round trips), so the engine's import
    (and the REPL's, for an interactive session) costs no time there.
    The main thread's own import of the same modules later waits for
    this one (Python's import locks); it holds no import lock meanwhile.
    """
    def work() -> None:
        for name in modules:
            with contextlib.suppress(Exception):    # raised again later
                importlib.import_module(name)
    thread = threading.Thread(target=work, name="preload", daemon=True)
    thread.start()
    return thread


SETTLE_TIME = 2.0
"""Seconds background cleanups (closing handles) get at the end."""


async def settle(tasks: set[asyncio.Task[None]]) -> None:
    """Give cleanups still running (handles to close) a moment."""
    if tasks:
        await asyncio.wait(set(tasks), timeout=SETTLE_TIME)


def _last_words(transport: Transport, client: object) -> str:
    """ssh's line on why the control connection ended ("" if none)."""
    words = getattr(transport, "last_words", None)
    return words(client) if words is not None and client else ""


async def run_session(opts: Options, out: Output, settings: Settings,
                      source: BinaryIO | None) -> int:
    """Connect, then run the auto-fetch, batch, piped or interactive loop."""
    terminator = Terminator()
    terminator.install()
    from psftp_shell.sftp.first_questions import FirstQuestions
    from psftp_shell.shell.remote_session import RemoteSession
    transport = build_transport(opts)
    if isinstance(transport, SSHTransport):     # before the preload
        importlib.import_module("psftp_shell.ssh.channel")
    spread = opts.x_settings.get("addresses") == "all" and \
        isinstance(transport, SSHTransport)
    if spread:
        from psftp_shell.ssh.address_spread import Spreader
        assert isinstance(transport, SSHTransport)
        transport.spreader = Spreader()
    engine: TransferEngine | None = None
    client = None
    pool = _early_pool(transport, opts, settings, out, source)
    if source is None or pool is not None:
        _hold_logins(transport, settings, spread)
    _preload(["psftp_shell.engine.transfer_engine",
              "psftp_shell.shell.command_line",
              *(_INTERACTIVE_MODULES if source is None
                else ("psftp_shell.frontend.batch_loop",))])
    first = FirstQuestions()
    try:
        client = await transport.open_client(ahead=first.ask)
        from psftp_shell.engine.transfer_engine import TransferEngine
        if not out.quiet:
            if opts.sftp_server_argv is not None:
                out.notice(f"Attached to {opts.sftp_server}.")
            else:
                assert opts.destination is not None
                out.notice(f"Connected to {opts.destination.host}.")
        remote = RemoteSession(client, out)
        # sftp asks for the limits, then the start directory: both went
        # out behind INIT here, and a failure is reported in sftp's order.
        started = asyncio.ensure_future(remote.start(first.cwd))
        remote_exec = None
        if opts.x_settings.get("verify-exec") is True:
            from psftp_shell.ssh.remote_exec import exec_runner
            remote_exec = exec_runner(transport)
        try:
            engine = await TransferEngine.create(
                client, out, buffer_size=opts.buffer_size,
                max_requests=opts.num_requests, limits=first.limits,
                transport=transport,
                streams=settings.streams, channels=settings.channels,
                limit_kbps=opts.limit_kbps, pool=pool,
                verify=str(opts.x_settings.get("verify", "size")),
                remote_exec=remote_exec,
                spread=spread)
        except BaseException:
            started.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await started
            raise
        await started
        shell = Shell(out=out, remote=remote, engine=engine,
                      local_cwd=process_cwd(), settings=settings)
        gc_pause.settled()
        with command_interrupts(shell):
            status = await _start_dir_or_fetch(shell, opts)
        if status is not None:
            return status
        if source is None:
            _open_streams_ahead(engine, transport)
            from psftp_shell.frontend.repl import run_repl
            result = await run_repl(shell)
        else:
            from psftp_shell.frontend.batch_loop import run_lines
            with command_interrupts(shell):
                result = await run_lines(shell, source,
                                         abort=settings.batch)
        return ExitStatus.OK if result == 0 else ExitStatus.ERROR
    except ConnectionLost as exc:
        if str(exc) in ("", "Connection closed"):
            raise ConnectionClosed(_last_words(transport, client)) \
                from None
        raise FatalError(str(exc)) from None
    except ProtocolError as exc:
        raise FatalError(str(exc)) from None
    finally:
        first.drop()
        if engine is not None:
            await settle(engine.ctx.cleanups)
            await engine.close()
        elif pool is not None:
            await pool.close()
        await transport.close()
        terminator.exit_if_fired(out)


def _make_settings(opts: Options, streams: int) -> Settings:
    batch = opts.batchmode
    return Settings(
        preserve=opts.preserve, recursive=opts.recursive,
        resume=opts.resume_all, fsync=opts.fsync,
        progress=opts.show_progress and os.isatty(2),
        batch=batch, interactive=not batch and os.isatty(0),
        streams=streams)


def _on_terminate(signum: int, frame: object) -> None:
    exit_now()


def run() -> int:
    """The console script and ``python -m``: :func:`main` on safe standard
    streams (:mod:`~psftp_shell.frontend.std_streams`), then a quick exit
    (no interpreter teardown: see :mod:`psftp_shell.core.quick_exit`)."""
    std_streams.install()
    return quick_exit.leave_with(main())


def main(argv: list[str] | None = None) -> int:
    """Run psftp-shell; return the process exit status."""
    gc_pause.pause()
    try:
        return _main(argv)
    finally:
        gc_pause.resume()


def _main(argv: list[str] | None) -> int:
    argv = sys.argv if argv is None else argv
    prog = _prog(argv[0] if argv else "psftp-shell")
    stderr = sys.stderr.buffer
    try:
        opts = parse_args(argv[1:], prog)
        config = load_config(os.environ)
        streams = resolve_connections(opts.connections, os.environ, config)
    except (UsageError, FatalError, ConfigError) as exc:
        stderr.write(format_error(exc, prog))
        stderr.flush()
        return exit_status(exc)
    for warning in config.warnings:
        stderr.write(message_line(prog, warning))
    batch = opts.batchmode
    loglevel = {"ERROR": LOG_QUIET, "INFO": LOG_INFO}.get(opts.log_level,
                                                         LOG_DEBUG)
    if loglevel >= LOG_DEBUG:       # -v, unless a later -q silenced it
        depwarnings.show()
    out = Output(sys.stdout.buffer, stderr, quiet=opts.quiet_mode,
                 loglevel=loglevel)
    settings = _make_settings(opts, streams)
    settings.channels = int(opts.x_settings.get(
        "channels", config.values.get("channels", 1)))  # type: ignore
    for key in ("verify", "verify-exec", "addresses"):  # -X wins
        if key in config.values:
            opts.x_settings.setdefault(key, config.values[key])
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_terminate)
    try:
        source: BinaryIO | None
        if batch:
            source = _batch_source(opts)
        else:
            source = None if settings.interactive else sys.stdin.buffer
        return asyncio.run(run_session(opts, out, settings, source))
    except ConnectionClosed as exc:
        stderr.write(exc.text(quiet=opts.quiet_mode).encode(
            "utf-8", "surrogateescape"))
        stderr.flush()
        return ExitStatus.FATAL
    except FatalError as exc:
        for line in str(exc).splitlines():
            out.error(line)
        return ExitStatus.FATAL
    except ShellError as exc:
        stderr.write(format_error(exc, prog))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.ERROR
