"""The command line, parsed exactly as OpenSSH 9.2's sftp parses it.

:func:`parse_args` reproduces sftp's ``main()``: BSD ``getopt(3)``
(:class:`~psftp_shell.core.libc_parse.Getopt`) on sftp's option string plus
``n:`` (bundling, attached or separate option arguments, stop at the
first operand or ``--``), each option's checks in the order sftp makes
them, the destination forms of
:func:`~psftp_shell.frontend.destination.parse_destination` and the argument
list sftp would hand to ssh.  Errors are raised as
:class:`~psftp_shell.core.errors.UsageError` (exit status 1, usage text
follows) or :class:`~psftp_shell.core.errors.FatalError` (exit status 255);
:func:`format_error` turns either into the exact bytes sftp writes to
stderr and :func:`exit_status` gives the status.

How sftp prints them (checked against the 9.2p1 binary):

* getopt's complaints (``unknown option -- Z``) and every ``fatal()``
  go through log.c: the text is escaped with ``strnvis(VIS_SAFE |
  VIS_OCTAL)`` and ends in ``\\r\\n``.  ``Bad port "x"`` carries an extra
  ``\\n`` of its own, hence a blank-looking line.
* ``Missing hostname`` is a plain ``fprintf``: it ends in ``\\n`` only
  (:class:`~psftp_shell.frontend.destination.PlainUsageError`).
* The usage text ends in ``\\n``; bad ``-l``, ``-h``, a wrong operand
  count or a malformed ``sftp://`` URI print only the usage.

psftp-shell's additions: ``-n connections`` (1..64; a bad value prints
``<prog>: invalid -n value ...`` then the usage, exit status 1), our own
``-X key=value`` settings from :data:`PSFTP_X_OPTIONS` (a bad value is
fatal like sftp's ``-X buffer=``), and IPv6 literals in brackets inside
``sftp://`` URIs, which sftp rejects.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from psftp_shell.core.errors import (
    FatalError,
    ShellError,
    UsageError,
)
from psftp_shell.core.libc_parse import (
    Getopt,
    a2port,
    argv_split,
    scan_scaled,
    strtol_size,
    strtonum,
)
from psftp_shell.frontend.cli_messages import OwnUsageError
from psftp_shell.frontend.config_file import (
    parse_addresses,
    parse_channels,
    parse_connections,
    parse_verify,
    parse_verify_exec,
)
from psftp_shell.frontend.destination import (
    Destination,
    parse_destination,
)

SFTP_OPTSTRING = "1246AafhNpqrvCc:D:i:l:o:s:S:b:B:F:J:P:R:X:"
OPTSTRING = SFTP_OPTSTRING + "n:"
SSH_PROGRAM = "/usr/bin/ssh"          # _PATH_SSH_PROGRAM
DEFAULT_SUBSYSTEM = "sftp"
MAX_LIMIT_KBPS = 100 * 1024 * 1024    # -l upper bound
MAX_X_VALUE = 256 * 1024              # -X buffer= / nrequests= bound
MAX_VERBOSE = 3
SSH_BASE_ARGS = ("-oForwardX11 no", "-oPermitLocalCommand no",
                 "-oClearAllForwardings yes")
SSH_LAST_OPTION = "-oForwardAgent no"

# psftp-shell's own -X settings: name -> validator.  A validator takes the
# text after "=" and returns the value, or raises ValueError with a short
# reason.  sftp's own buffer= and nrequests= are handled before this table.
PSFTP_X_OPTIONS: dict[str, Callable[[str], object]] = {
    "connections": parse_connections,
    "channels": parse_channels,
    "addresses": parse_addresses,
    "verify": parse_verify,
    "verify-exec": parse_verify_exec,
}


# --- the options -------------------------------------------------------------

@dataclass(slots=True)
class Options:
    """Everything sftp's command line sets, plus psftp-shell's ``-n``."""

    ipv4: bool = False                  # -4
    ipv6: bool = False                  # -6
    forward_agent: bool = False         # -A
    resume_all: bool = False            # -a
    compression: bool = False           # -C
    fsync: bool = False                 # -f
    no_quiet: bool = False              # -N
    preserve: bool = False              # -p
    quiet: bool = False                 # -q
    recursive: bool = False             # -r
    verbose: int = 0                    # -v count, at most 3
    batchfile: str | None = None        # -b ("-" is stdin)
    batch_fd: int | None = None         # -b file, opened (caller closes)
    buffer_size: int | None = None      # -B / -X buffer= (size_t value)
    cipher: str | None = None           # -c (last one)
    sftp_server: str | None = None      # -D command line
    sftp_server_argv: list[str] | None = None   # -D, split
    ssh_config: str | None = None       # -F (last one)
    identities: list[str] = field(default_factory=list)   # -i
    jump: str | None = None             # -J (last one)
    limit_kbps: int | None = None       # -l (rate is value * 1024 bit/s)
    ssh_options: list[str] = field(default_factory=list)  # -o, in order
    ssh_checked: list[tuple[str, str]] = field(default_factory=list)
    """-J, -c and -o as (letter, value), in order: ssh checks them so."""
    port: int | None = None             # -P
    num_requests: int | None = None     # -R / -X nrequests= (size_t)
    ssh_program: str | None = None      # -S
    subsystem: str | None = None        # -s
    connections: int | None = None      # -n / -X connections=
    x_settings: dict[str, object] = field(default_factory=dict)
    destination: Destination | None = None
    local_path: str | None = None
    ssh_args: list[str] = field(default_factory=list)
    # Derived, as sftp computes them after getopt:
    log_level: str = "INFO"             # ERROR, INFO, DEBUG1..DEBUG3
    batchmode: bool = False             # -b given
    quiet_mode: bool = False            # sftp's quiet: (-q or -b), not -N
    show_progress: bool = True          # before sftp's isatty(2) check
    effective_port: int | None = None   # URI port, else -P


class _Parser:
    """The state of one ``parse_args`` run."""

    _FLAG_FIELDS = {"4": "ipv4", "6": "ipv6", "A": "forward_agent",
                    "C": "compression", "a": "resume_all", "f": "fsync",
                    "N": "no_quiet", "p": "preserve", "r": "recursive"}
    _VALUED_FIELDS = {"F": "ssh_config", "J": "jump", "c": "cipher"}

    def __init__(self, open_batchfile: bool) -> None:
        self.opts = Options()
        self.open_batchfile = open_batchfile
        self.passthrough: list[str] = []
        self.ssh_program = SSH_PROGRAM
        self.handlers: dict[str, Callable[[str, str], None]] = {
            "4": self._flag, "6": self._flag, "A": self._flag,
            "C": self._flag, "a": self._flag, "f": self._flag,
            "N": self._flag, "p": self._flag, "r": self._flag,
            "q": self._quiet, "v": self._verbose,
            "1": self._protocol_1, "2": self._ignore, "h": self._help,
            "F": self._ssh_valued, "J": self._ssh_valued,
            "c": self._ssh_valued, "i": self._ssh_valued,
            "o": self._ssh_valued,
            "P": self._port, "B": self._buffer, "R": self._requests,
            "b": self._batch, "D": self._direct, "l": self._limit,
            "s": self._subsystem, "S": self._program, "X": self._x_option,
            "n": self._connections,
        }

    def handle(self, letter: str, arg: str) -> None:
        """Apply one option."""
        self.handlers[letter](letter, arg)

    def _flag(self, letter: str, arg: str) -> None:
        setattr(self.opts, self._FLAG_FIELDS[letter], True)
        if letter in "46AC":
            self.passthrough.append(f"-{letter}")

    def _ssh_valued(self, letter: str, arg: str) -> None:
        self.passthrough += [f"-{letter}", arg]
        if letter in "Jco":
            self.opts.ssh_checked.append((letter, arg))
        if letter == "i":
            self.opts.identities.append(arg)
        elif letter == "o":
            self.opts.ssh_options.append(arg)
        else:
            setattr(self.opts, self._VALUED_FIELDS[letter], arg)

    def _quiet(self, letter: str, arg: str) -> None:
        self.opts.log_level = "ERROR"
        self.opts.quiet = True
        self.passthrough.append("-q")

    def _verbose(self, letter: str, arg: str) -> None:
        if self.opts.verbose < MAX_VERBOSE:
            self.passthrough.append("-v")
            self.opts.log_level = f"DEBUG{self.opts.verbose + 1}"
            self.opts.verbose += 1

    def _protocol_1(self, letter: str, arg: str) -> None:
        raise FatalError("SSH protocol v.1 is no longer supported")

    def _ignore(self, letter: str, arg: str) -> None:
        """-2: accepted silently."""

    def _help(self, letter: str, arg: str) -> None:
        raise UsageError("")

    def _port(self, letter: str, arg: str) -> None:
        port = a2port(arg)
        if port <= 0:
            raise FatalError(f'Bad port "{arg}"\n')
        self.opts.port = port

    def _buffer(self, letter: str, arg: str) -> None:
        size = strtol_size(arg)
        if size is None:
            raise FatalError(f'Invalid buffer size "{arg}"')
        self.opts.buffer_size = size

    def _requests(self, letter: str, arg: str) -> None:
        count = strtol_size(arg)
        if count is None:
            raise FatalError(f'Invalid number of requests "{arg}"')
        self.opts.num_requests = count

    def _batch(self, letter: str, arg: str) -> None:
        if self.opts.batchmode:
            raise FatalError("Batch file already specified.")
        if arg != "-" and self.open_batchfile:
            try:
                self.opts.batch_fd = os.open(arg, os.O_RDONLY)
            except OSError as exc:
                reason = os.strerror(exc.errno or 0)
                raise FatalError(f"{reason} ({arg}).") from None
        self.opts.batchfile = arg
        self.opts.batchmode = True
        self.passthrough.append("-obatchmode yes")

    def _direct(self, letter: str, arg: str) -> None:
        self.opts.sftp_server = arg

    def _limit(self, letter: str, arg: str) -> None:
        value, err = strtonum(arg, 1, MAX_LIMIT_KBPS)
        if err is not None:
            raise UsageError("")
        self.opts.limit_kbps = value

    def _subsystem(self, letter: str, arg: str) -> None:
        self.opts.subsystem = arg

    def _program(self, letter: str, arg: str) -> None:
        self.opts.ssh_program = arg
        self.ssh_program = arg

    def _connections(self, letter: str, arg: str) -> None:
        try:
            value = parse_connections(arg)
        except ValueError as exc:
            message = f'invalid -n value "{arg}": {exc}'
            raise OwnUsageError(message) from None
        self.opts.x_settings["connections"] = value

    def _x_option(self, letter: str, arg: str) -> None:
        if arg.startswith("buffer="):
            self._x_buffer(arg[len("buffer="):])
        elif arg.startswith("nrequests="):
            self._x_requests(arg[len("nrequests="):])
        else:
            self._x_own(arg)

    def _x_buffer(self, text: str) -> None:
        value, err = scan_scaled(text)
        if not err and not 0 < value <= MAX_X_VALUE:
            err = errno.EINVAL
        if err:
            raise FatalError(
                f'Invalid buffer size "{text}": {os.strerror(err)}')
        self.opts.buffer_size = value

    def _x_requests(self, text: str) -> None:
        value, errstr = strtonum(text, 1, MAX_X_VALUE)
        if errstr is not None:
            raise FatalError(
                f'Invalid number of requests "{text}": {errstr}')
        self.opts.num_requests = value

    def _x_own(self, arg: str) -> None:
        key, sep, text = arg.partition("=")
        validate = PSFTP_X_OPTIONS.get(key) if sep else None
        if validate is None:
            raise FatalError("Invalid -X option")
        try:
            self.opts.x_settings[key] = validate(text)
        except ValueError as exc:
            message = f'Invalid {key} value "{text}": {exc}'
            raise FatalError(message) from None

    def finish(self, operands: list[str]) -> Options:
        """Apply sftp's post-getopt steps to the operands."""
        opts = self.opts
        settings = opts.x_settings.get("connections")
        opts.connections = settings if isinstance(settings, int) else None
        opts.show_progress = not (opts.quiet or opts.batchmode)
        opts.quiet_mode = ((opts.quiet or opts.batchmode)
                           and not opts.no_quiet)
        opts.effective_port = opts.port
        if opts.sftp_server is None:
            self._remote(operands)
        else:
            self._direct_argv(opts.sftp_server)
        return opts

    def _remote(self, operands: list[str]) -> None:
        """Check the operands and build ssh's argument list."""
        opts = self.opts
        if not 1 <= len(operands) <= 2:
            raise UsageError("")
        dest = parse_destination(operands[0])
        opts.destination = dest
        opts.local_path = operands[1] if len(operands) > 1 else None
        if dest.port is not None:
            opts.effective_port = dest.port
        opts.ssh_args = self._ssh_args(dest)

    def _ssh_args(self, dest: Destination) -> list[str]:
        """Return the argv sftp would exec for ssh, in sftp's order."""
        args = [self.ssh_program, *SSH_BASE_ARGS, *self.passthrough,
                SSH_LAST_OPTION]
        if self.opts.effective_port is not None:
            args.append(f"-oPort {self.opts.effective_port}")
        if dest.user is not None:
            args += ["-l", dest.user]
        server = self.opts.subsystem
        if server is None or "/" not in server:
            args.append("-s")
        args += ["--", dest.host,
                 DEFAULT_SUBSYSTEM if server is None else server]
        return args

    def _direct_argv(self, command: str) -> None:
        """Split the ``-D`` command as sftp does."""
        try:
            argv = argv_split(command)
        except ValueError:
            raise FatalError("Parse -D arguments: invalid format") from None
        if not argv:
            raise FatalError("No sftp server specified via -D")
        self.opts.sftp_server_argv = argv


def parse_args(argv: list[str], prog: str, *,
               open_batchfile: bool = True) -> Options:
    """Parse sftp's command line *argv* (without argv[0]).

    *prog* is the program name for messages (see :func:`program_name`);
    raised errors carry no name, :func:`format_error` adds it where sftp
    would.  ``-b FILE`` is opened here, in option order, as sftp does
    (``Options.batch_fd``, owned by the caller; ``-b -`` means stdin);
    *open_batchfile* false skips that.  With ``-D`` the operands are
    ignored and ``ssh_args`` stays empty.
    """
    parser = _Parser(open_batchfile)
    getopt = Getopt(argv, OPTSTRING)
    try:
        for letter, arg in getopt:
            parser.handle(letter, arg)
        return parser.finish(argv[getopt.optind:])
    except ShellError:
        if parser.opts.batch_fd is not None:
            os.close(parser.opts.batch_fd)
        raise
