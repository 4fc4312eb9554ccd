"""The command line, parsed exactly as OpenSSH 9.2's sftp parses it.

:func:`parse_args` reproduces sftp's ``main()``: BSD ``getopt(3)`` on
sftp's option string plus ``n:`` (bundling, attached or separate option
arguments, stop at the first operand or ``--``), each option's checks in
the order sftp makes them, the destination forms of :func:`parse_destination`
and the argument list sftp would hand to ssh.  Errors are raised as
:class:`~psftp_shell.errors.UsageError` (exit status 1, usage text
follows) or :class:`~psftp_shell.errors.FatalError` (exit status 255);
:func:`format_error` turns either into the exact bytes sftp writes to
stderr and :func:`exit_status` gives the status.

How sftp prints them (checked against the 9.2p1 binary):

* getopt's complaints (``unknown option -- Z``) and every ``fatal()``
  go through log.c: the text is escaped with ``strnvis(VIS_SAFE |
  VIS_OCTAL)`` and ends in ``\\r\\n``.  ``Bad port "x"`` carries an extra
  ``\\n`` of its own, hence a blank-looking line.
* ``Missing hostname`` is a plain ``fprintf``: it ends in ``\\n`` only
  (:class:`PlainUsageError`).
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
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from psftp_shell.config import (
    ConfigError,
    parse_channels,
    parse_connections,
)
from psftp_shell.errors import ExitStatus, FatalError, ShellError, UsageError
from psftp_shell.escape import to_bytes, vis_log

SFTP_OPTSTRING = "1246AafhNpqrvCc:D:i:l:o:s:S:b:B:F:J:P:R:X:"
OPTSTRING = SFTP_OPTSTRING + "n:"
SSH_PROGRAM = "/usr/bin/ssh"          # _PATH_SSH_PROGRAM
DEFAULT_SUBSYSTEM = "sftp"
URI_SCHEME = "sftp://"
MAX_LIMIT_KBPS = 100 * 1024 * 1024    # -l upper bound
MAX_X_VALUE = 256 * 1024              # -X buffer= / nrequests= bound
MAX_VERBOSE = 3
LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
SIZE_T_RANGE = 2**64
SSH_BASE_ARGS = ("-oForwardX11 no", "-oPermitLocalCommand no",
                 "-oClearAllForwardings yes")
SSH_LAST_OPTION = "-oForwardAgent no"

_C_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789"
_HEX_BYTES = b"0123456789abcdefABCDEF"
_SCALE_CHARS = "BKMGTPE"              # scan_scaled units, 1024 apart
_SCAN_MAX_DIGITS = 3 * len(_SCALE_CHARS)

_USAGE = (
    "usage: {prog} [-46AaCfNpqrv] [-B buffer_size] [-b batchfile]"
    " [-c cipher]\n"
    "          [-D sftp_server_command] [-F ssh_config]"
    " [-i identity_file]\n"
    "          [-J destination] [-l limit] [-n connections]"
    " [-o ssh_option]\n"
    "          [-P port] [-R num_requests] [-S program]"
    " [-s subsystem | sftp_server]\n"
    "          [-X sftp_option] destination\n"
)

# psftp-shell's own -X settings: name -> validator.  A validator takes the
# text after "=" and returns the value, or raises ValueError with a short
# reason.  sftp's own buffer= and nrequests= are handled before this table.
PSFTP_X_OPTIONS: dict[str, Callable[[str], object]] = {
    "connections": parse_connections,
    "channels": parse_channels,
}


class PlainUsageError(UsageError):
    """A usage error whose message sftp prints with a bare ``\\n``."""


class OwnUsageError(UsageError):
    """psftp-shell's own usage error: ``<prog>: message``, then usage."""


def usage(prog: str) -> str:
    """Return sftp's usage text for *prog*, with ``[-n connections]``."""
    return _USAGE.format(prog=prog)


def program_name(argv0: str) -> str:
    """Return the name sftp prints for itself: the basename of argv[0]."""
    return argv0.rsplit("/", 1)[-1]


def log_line(message: str) -> bytes:
    """Return *message* as log.c writes it to stderr (escaped, CR LF)."""
    return to_bytes(vis_log(message)) + b"\r\n"


def message_line(prog: str, message: str) -> bytes:
    """Return one of psftp-shell's own messages: ``prog: message\\n``."""
    return to_bytes(f"{prog}: {vis_log(message)}\n")


def _usage_message(exc: UsageError, prog: str) -> bytes:
    """Return the line printed before the usage text (maybe nothing)."""
    message = str(exc)
    if not message:
        return b""
    if isinstance(exc, PlainUsageError):
        return to_bytes(message) + b"\n"
    if isinstance(exc, OwnUsageError):
        return message_line(prog, message)
    return log_line(message)


def format_error(exc: ShellError, prog: str) -> bytes:
    """Return exactly what goes to stderr for a command-line error.

    Usage errors: their message line (if any), then :func:`usage`.
    Fatal errors: one log line.  :class:`~psftp_shell.config.ConfigError`:
    ``<prog>: message``.  Anything else: its message as a log line.
    """
    if isinstance(exc, UsageError):
        return _usage_message(exc, prog) + to_bytes(usage(prog))
    if isinstance(exc, ConfigError):
        return message_line(prog, str(exc))
    message = str(exc)
    return log_line(message) if message else b""


def exit_status(exc: ShellError) -> int:
    """Return the exit status for *exc*: 255 if fatal, else 1."""
    if isinstance(exc, FatalError):
        return int(ExitStatus.FATAL)
    return int(ExitStatus.ERROR)


# --- C library number parsing, as sftp calls it ------------------------------

def _strtoll(text: str) -> tuple[int, int, bool]:
    """Emulate ``strtoll(text, &end, 10)``: (value, end index, ERANGE).

    The end index is 0 when no digits were found.
    """
    pos, size = 0, len(text)
    while pos < size and text[pos] in _C_SPACE:
        pos += 1
    negative = pos < size and text[pos] == "-"
    if pos < size and text[pos] in "+-":
        pos += 1
    start = pos
    while pos < size and text[pos] in _DIGITS:
        pos += 1
    if pos == start:
        return 0, 0, False
    value = -int(text[start:pos]) if negative else int(text[start:pos])
    if value > LLONG_MAX:
        return LLONG_MAX, pos, True
    if value < LLONG_MIN:
        return LLONG_MIN, pos, True
    return value, pos, False


def strtonum(text: str, minval: int, maxval: int) -> tuple[int, str | None]:
    """Emulate OpenBSD ``strtonum``: (value, None) or (0, errstr)."""
    value, end, erange = _strtoll(text)
    if end == 0 or end != len(text):
        return 0, "invalid"
    if (value == LLONG_MIN and erange) or value < minval:
        return 0, "too small"
    if (value == LLONG_MAX and erange) or value > maxval:
        return 0, "too large"
    return value, None


def _strtol_size(text: str) -> int | None:
    """Parse ``-B``/``-R``: ``strtol`` stored in a ``size_t``.

    Returns None where sftp rejects the value (zero or trailing junk).
    Like sftp, negative or huge values are not refused: they wrap.
    """
    value, end, _ = _strtoll(text)
    size = value % SIZE_T_RANGE
    if size == 0 or end != len(text):
        return None
    return size


def _scan_sign(text: str, pos: int) -> tuple[int, int] | None:
    """Skip blanks and at most one sign: (sign, position) or None."""
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    sign = 0
    while pos < len(text) and text[pos] in "+-":
        if sign:
            return None
        sign = -1 if text[pos] == "-" else 1
        pos += 1
    return sign, pos


def _scan_number(text: str, pos: int
                 ) -> tuple[int, int, int, int] | int:
    """Scan ``digits[.digits]``: (whole, fpart, fract_digits, pos).

    Returns an errno value instead when the number is malformed.
    """
    whole = fpart = fract_digits = ndigits = 0
    while pos < len(text) and text[pos] in _DIGITS + ".":
        char = text[pos]
        pos += 1
        if char == ".":
            if fract_digits > 0:
                return errno.EINVAL
            fract_digits = 1
        elif fract_digits > 0:
            if fract_digits >= _SCAN_MAX_DIGITS - 1:
                continue
            fract_digits += 1
            fpart = fpart * 10 + int(char)
            if fpart > LLONG_MAX:
                return errno.ERANGE
        else:
            ndigits += 1
            whole = whole * 10 + int(char)
            if ndigits >= _SCAN_MAX_DIGITS or whole > LLONG_MAX:
                return errno.ERANGE
    return whole, fpart, fract_digits, pos


def _apply_scale(whole: int, fpart: int, fract_digits: int, sign: int,
                 factor: int) -> int | None:
    """Scale a parsed number by *factor*; None when it overflows.

    *factor* is a power of two, so ``LLONG_MIN // factor`` is exact and
    Python's floor division agrees with C's truncating one here.
    """
    if whole > LLONG_MAX // factor or whole < LLONG_MIN // factor:
        return None
    whole *= factor
    while fpart >= LLONG_MAX // factor or fpart <= LLONG_MIN // factor:
        fpart //= 10
        fract_digits -= 1
    fpart *= factor
    if fract_digits > 0:
        for _ in range(fract_digits - 1):
            fpart //= 10
    return whole - fpart if sign == -1 else whole + fpart


def scan_scaled(text: str) -> tuple[int, int]:
    """Emulate OpenBSD ``scan_scaled``: (value, 0) or (0, errno).

    Accepts ``[blanks][sign]digits[.digits][unit]`` with the units
    ``BKMGTPE`` (either case, powers of 1024); a unit may be followed by
    anything but an alphanumeric, as in OpenSSH's copy of the function.
    """
    signed = _scan_sign(text, 0)
    if signed is None:
        return 0, errno.EINVAL
    sign, pos = signed
    scanned = _scan_number(text, pos)
    if isinstance(scanned, int):
        return 0, scanned
    whole, fpart, fract_digits, pos = scanned
    if sign:
        whole *= sign
    if pos == len(text):
        return whole, 0
    char, following = text[pos], text[pos + 1:pos + 2]
    unit = _SCALE_CHARS.find(char.upper()) if char.isascii() else -1
    if unit < 0 or (following.isascii() and following.isalnum()):
        return 0, errno.EINVAL
    value = _apply_scale(whole, fpart, fract_digits, sign, 1024 ** unit)
    if value is None:
        return 0, errno.ERANGE
    return value, 0


def a2port(text: str) -> int:
    """Emulate OpenSSH's ``a2port``: a port number or -1.

    A number 0..65535, else a TCP service name from the services
    database; 0 (which callers reject) is returned as given.
    """
    value, err = strtonum(text, 0, 65535)
    if err is None:
        return value
    try:
        return socket.getservbyname(text, "tcp")
    except (OSError, UnicodeError, ValueError):
        return -1


# --- destinations ------------------------------------------------------------

@dataclass(slots=True)
class Destination:
    """Where to connect: sftp's user, host, URI port and start path."""

    user: str | None
    host: str
    port: int | None
    path: str | None


def _colon(text: str) -> int:
    """Emulate misc.c ``colon()``: index of the host/path colon or -1."""
    if text.startswith(":"):
        return -1
    bracketed = text.startswith("[")
    for index, char in enumerate(text):
        following = text[index + 1:index + 2]
        if char == "@" and following == "[":
            bracketed = True
        if char == "]" and following == ":" and bracketed:
            return index + 1
        if char == ":" and not bracketed:
            return index
        if char == "/":
            return -1
    return -1


def _cleanhostname(host: str) -> str:
    """Strip the brackets of ``[host]``."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _hpdelim2(text: str) -> tuple[str, str, str | None] | None:
    """Emulate ``hpdelim2``: (field, delimiter, rest) or None if bad.

    The delimiter is ``:``, ``/`` or empty (then rest is None).
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        end += 1
    else:
        found = [i for i in (text.find(":"), text.find("/")) if i >= 0]
        end = min(found) if found else len(text)
    if end == len(text):
        return text, "", None
    if text[end] in ":/":
        return text[:end], text[end], text[end + 1:]
    return None


def _valid_domain(name: str) -> str | None:
    """Emulate ``valid_domain``: the name minus a final dot, or None."""
    if not name or not (name[0].isascii() and name[0].isalnum()):
        return None
    last = ""
    for char in name.lower():
        if last == "." and char == ".":
            return None
        if char not in ".-_" and not (char.isascii() and char.isalnum()):
            return None
        last = char
    return name[:-1] if name.endswith(".") else name


def urldecode(text: str) -> str | None:
    """Decode ``%XX`` and ``+`` as misc.c does; None on a bad escape.

    Works on the bytes *text* stands for; a decoded NUL ends the string,
    as it does in C.
    """
    data = to_bytes(text)
    out = bytearray()
    pos = 0
    while pos < len(data):
        byte = data[pos]
        if byte == ord("+"):
            out.append(ord(" "))
        elif byte == ord("%"):
            digits = data[pos + 1:pos + 3]
            if len(digits) < 2 or any(d not in _HEX_BYTES for d in digits):
                return None
            out.append(int(digits, 16))
            pos += 2
        else:
            out.append(byte)
        pos += 1
    return bytes(out).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _is_ipv6(host: str) -> bool:
    """Return whether *host* is an IPv6 address literal."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _uri_host(raw: str) -> str:
    """Check a URI's host field; bracketed IPv6 is our extension."""
    host = _cleanhostname(raw)
    checked = _valid_domain(host)
    if checked is not None:
        return checked
    if raw.startswith("[") and _is_ipv6(host):
        return host
    raise UsageError("")


def _uri_user(userinfo: str) -> str:
    """Decode a URI's user (``;params`` ignored); empty is an error."""
    user = userinfo.split(";", 1)[0]
    decoded = urldecode(user) if user else None
    if decoded is None:
        raise UsageError("")
    return decoded


def _uri_port_path(delim: str, rest: str | None
                   ) -> tuple[int | None, str | None]:
    """Parse what follows a URI's host: ``[:port][/path]``."""
    port = None
    if rest and delim == ":":
        slash = rest.find("/")
        number = a2port(rest if slash < 0 else rest[:slash])
        if number <= 0:
            raise UsageError("")
        port = number
        rest = None if slash < 0 else rest[slash + 1:]
    path = None
    if rest:
        path = urldecode(rest)
        if path is None:
            raise UsageError("")
    return port, path


def parse_uri(arg: str) -> Destination | None:
    """Parse ``sftp://[user[;params]@]host[:port][/path]``.

    Returns None when *arg* is not an sftp URI; a malformed one raises
    ``UsageError("")`` (sftp prints the usage only).
    """
    if not arg.startswith(URI_SCHEME):
        return None
    rest = arg[len(URI_SCHEME):]
    user = None
    at = rest.find("@")
    if at >= 0:
        user = _uri_user(rest[:at])
        rest = rest[at + 1:]
    fields = _hpdelim2(rest)
    if fields is None or not fields[0]:
        raise UsageError("")
    host = _uri_host(fields[0])
    port, path = _uri_port_path(fields[1], fields[2])
    return Destination(user, host, port, path)


def parse_user_host_path(arg: str) -> Destination | None:
    """Parse ``[user@]host:[path]``; None if *arg* is not of that form."""
    index = _colon(arg)
    if index < 0:
        return None
    path = arg[index + 1:] or "."
    head = arg[:index]
    user, at, host = head.rpartition("@")
    if not at:
        return Destination(None, _cleanhostname(head), None, path)
    return Destination(user or None, _cleanhostname(host), None, path)


def parse_user_host_port(arg: str) -> Destination | None:
    """Parse ``[user@]host[:port]`` (the port is checked, then dropped)."""
    user, at, rest = arg.rpartition("@")
    if at and not user:
        return None
    fields = _hpdelim2(rest)
    if fields is None or fields[1] == "/" or not fields[0]:
        return None
    port_text = fields[2]
    if port_text and a2port(port_text) <= 0:
        return None
    return Destination(user if at else None, _cleanhostname(fields[0]),
                       None, None)


def parse_destination(arg: str) -> Destination:
    """Parse sftp's destination operand, trying each form in turn.

    ``sftp://`` URI, then ``[user@]host:[path]``, then ``[user@]host``,
    then the whole string as the host name.  Raises ``UsageError("")``
    for a bad URI and :class:`PlainUsageError` ``Missing hostname`` for
    an empty host.
    """
    dest = (parse_uri(arg) or parse_user_host_path(arg)
            or parse_user_host_port(arg)
            or Destination(None, _cleanhostname(arg), None, None))
    if not dest.host:
        raise PlainUsageError("Missing hostname")
    return dest


# --- the -D command ----------------------------------------------------------

def _split_token(text: str, pos: int) -> tuple[str, int, str]:
    """Read one ``argv_split`` token: (token, end position, open quote)."""
    quote = ""
    token: list[str] = []
    while pos < len(text):
        char = text[pos]
        following = text[pos + 1:pos + 2]
        if char == "\\":
            if following in ("'", '"', "\\") and following or (
                    not quote and following == " "):
                pos += 1
                char = following
            token.append(char)
        elif not quote and char in " \t":
            break
        elif not quote and char in "\"'":
            quote = char
        elif quote and char == quote:
            quote = ""
        else:
            token.append(char)
        pos += 1
    return "".join(token), pos, quote


def argv_split(text: str) -> list[str]:
    """Split a ``-D`` command as misc.c ``argv_split`` does.

    Blanks separate words, quotes group, ``\\`` escapes quotes, itself
    and (unquoted) a space; a word starting with ``#`` ends the line.
    An unterminated quote raises ``ValueError``.
    """
    words: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] in " \t":
            pos += 1
            continue
        if text[pos] == "#":
            break
        word, pos, quote = _split_token(text, pos)
        if quote:
            raise ValueError("unterminated quote")
        words.append(word)
        pos += 1
    return words


# --- getopt ------------------------------------------------------------------

def _first_byte(char: str) -> str:
    """Return the first byte of *char*, as getopt sees it (a str)."""
    return to_bytes(char)[:1].decode("utf-8", "surrogateescape")


class Getopt:
    """BSD ``getopt(3)`` as in OpenSSH's openbsd-compat (no permuting).

    Iterating yields ``(letter, argument)`` pairs (argument ``""`` for
    flags); errors raise :class:`UsageError` with getopt's message.
    Afterwards :attr:`optind` is the index of the first operand.
    """

    def __init__(self, args: list[str], optstring: str) -> None:
        """Prepare to scan *args* (argv without argv[0])."""
        self.args = args
        self.optstring = optstring
        self.optind = 0

    def _takes_argument(self, char: str) -> bool | None:
        """Return whether *char* takes an argument; None if unknown."""
        index = self.optstring.find(char)
        if char == ":" or index < 0:
            return None
        return self.optstring[index + 1:index + 2] == ":"

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield the options in order, stopping at the first operand."""
        while self.optind < len(self.args):
            arg = self.args[self.optind]
            if not arg.startswith("-") or arg == "-":
                return
            self.optind += 1
            if arg == "--":
                return
            for pos in range(1, len(arg)):
                char = arg[pos]
                if char == "-" and pos + 1 == len(arg):
                    self.optind -= 1    # "-x-": getopt ends, arg unused
                    return
                needs = self._takes_argument(char)
                if needs is None:
                    raise UsageError(
                        f"unknown option -- {_first_byte(char)}")
                if needs:
                    yield char, self._argument(arg, pos, char)
                    break
                yield char, ""

    def _argument(self, arg: str, pos: int, char: str) -> str:
        """Return the argument of option *char* found at arg[pos]."""
        if pos + 1 < len(arg):
            return arg[pos + 1:]
        if self.optind >= len(self.args):
            raise UsageError(f"option requires an argument -- {char}")
        self.optind += 1
        return self.args[self.optind - 1]


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
        size = _strtol_size(arg)
        if size is None:
            raise FatalError(f'Invalid buffer size "{arg}"')
        self.opts.buffer_size = size

    def _requests(self, letter: str, arg: str) -> None:
        count = _strtol_size(arg)
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


# The option list of the man page and of any generated help, in sftp's
# order; the texts are ours.
OPTION_HELP: tuple[tuple[str, str], ...] = (
    ("-4", "Use IPv4 addresses only."),
    ("-6", "Use IPv6 addresses only."),
    ("-A", "Forward the authentication agent (passed to ssh)."),
    ("-a", "Resume every transfer, as reget and reput do."),
    ("-B buffer_size", "Bytes per read or write request (default: what "
     "the server's limits@openssh.com offers, else 32768)."),
    ("-b batchfile", "Read commands from batchfile (- for stdin); stop at "
     "the first failing command not prefixed with -.  Implies quiet "
     "operation and BatchMode yes."),
    ("-C", "Enable compression."),
    ("-c cipher", "The cipher to encrypt with."),
    ("-D sftp_server_command", "Run a local SFTP server and talk to it "
     "over pipes instead of connecting with SSH."),
    ("-F ssh_config", "Read this ssh client configuration file instead "
     "of ~/.ssh/config and /etc/ssh/ssh_config."),
    ("-f", "Flush each transferred file to disk (fsync)."),
    ("-i identity_file", "A private key to authenticate with."),
    ("-J destination", "Connect through this jump host (ProxyJump)."),
    ("-l limit", "Limit the bandwidth, in Kbit/s, of all streams "
     "together."),
    ("-N", "Undo the quiet mode that -b implies."),
    ("-n connections", "Run every get and put on this many parallel "
     "streams, 1 to 64 (default 1, or PSFTP_SHELL_CONNECTIONS, or the "
     "configuration file).  Unlike the CEA parallel-sftp patch, whose -n "
     "counted extra connections, this counts all streams."),
    ("-o ssh_option", "Any ssh_config option, as Key=Value."),
    ("-P port", "The port to connect to."),
    ("-p", "Preserve modes and times of transferred files."),
    ("-q", "Quiet: no progress meter, no informational messages."),
    ("-R num_requests", "Requests in flight per stream (default 64)."),
    ("-r", "Copy directories recursively."),
    ("-S program", "Use program instead of ssh for the connection."),
    ("-s subsystem | sftp_server", "The SSH subsystem, or the path of the "
     "server program, to run on the remote host (default sftp)."),
    ("-v", "More verbose logging; up to three times."),
    ("-X sftp_option", "buffer=SIZE or nrequests=N as in sftp, or a "
     "psftp-shell setting such as connections=N."),
)
