"""One ssh_config line checked as OpenSSH 9.2's ssh checks it.

:func:`check_line` is readconf.c's ``process_config_line`` without the
setting of options: the keyword split (``strdelim``), ``argv_split``,
each keyword's value check and the "extra arguments" check, with ssh's
words.  The same code serves ``-o`` (``command-line line 0``) and each
line of a config file (:mod:`psftp_shell.ssh.config_check`), whether or
not its ``Host`` block applies, as in ssh.  Forwardings
(:mod:`~psftp_shell.ssh.forward_check`) and a file's ``Match``
conditions (:mod:`~psftp_shell.ssh.match_check`) are checked, not
evaluated; ``$`` expansions of agent paths are not checked here
(asyncssh's reader sees them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from os import strerror

from psftp_shell.core.libc_parse import (
    a2port,
    argv_split,
    scan_scaled,
    strtol_any_base,
)
from psftp_shell.ssh import unused_option_checks as unused
from psftp_shell.ssh.algorithms import option_error
from psftp_shell.ssh.config_words import (
    WHITESPACE,
    convtime,
    integer_error,
    split_keyword,
)
from psftp_shell.ssh.forward_check import forward_error, fwdarg
from psftp_shell.ssh.jump_check import jump_error
from psftp_shell.ssh.match_check import match_error
from psftp_shell.ssh.ssh_names import (
    ADD_KEYS,
    ALGORITHMS,
    ARRAYS,
    DIGESTS,
    FLAG,
    INTEGERS,
    IPQOS_NAMES,
    LOG_LEVELS,
    MULTISTATE,
    STRINGS,
    TIMES,
    UNSUPPORTED,
    known_keyword,
)


@dataclass
class Verdict:
    """What ssh says of one line: its error lines, and whether it counts
    as a bad option (ssh's "Unsupported option" does not)."""

    lines: list[str] = field(default_factory=list)
    bad: bool = False


class _Line:
    """The arguments of one line, consumed as readconf.c's switch does."""

    def __init__(self, where: str, number: int, keyword: str,
                 rest: str, args: list[str]) -> None:
        self.at = f"{where} line {number}"
        self.short = f"{where[:200]} line {number}"
        self.keyword, self.rest, self.args = keyword, rest, args

    def next(self) -> str | None:
        return self.args.pop(0) if self.args else None

    def consume(self) -> None:
        self.args.clear()


def _missing(line: _Line) -> list[str] | None:
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing argument."]
    line.args.insert(0, arg)
    return None


def _flag(line: _Line, values: tuple[str, ...]) -> list[str] | None:
    arg = line.next()
    if arg and arg.lower() in values:
        return None
    head = [] if arg else [f"{line.at}: missing argument."]
    shown = "(null)" if arg is None else arg
    return [*head, f'{line.at}: unsupported option "{shown}".']


def _time(line: _Line) -> list[str] | None:
    arg = line.next()
    if not arg:
        return [f"{line.at}: missing time value."]
    if arg != "none" and convtime(arg) < 0:
        return [f"{line.at}: invalid time value."]
    return None


def _integer(line: _Line) -> list[str] | None:
    reason = integer_error(line.next())
    return None if reason is None else \
        [f"{line.at}: integer value {reason}."]


def _string(line: _Line) -> list[str] | None:
    bad = _missing(line)
    line.next()
    return bad


def _array(line: _Line, word_error: Callable[[str], str | None]
           = lambda word: None) -> list[str] | None:
    """Words, none empty, ``none`` only alone; each checked by
    *word_error* (its reason, or None)."""
    count = 0
    while line.args:
        arg = line.args.pop(0)
        if not arg:
            return [f"{line.at}: keyword {line.keyword} empty argument"]
        if arg.lower() == "none" and (count or line.args):
            return [f'{line.at}: keyword {line.keyword} "none" argument '
                    "must appear alone."]
        count += 1
        reason = word_error(arg)
        if reason is not None:
            return [f"{line.at}: {reason}"]
    return None


def _port(line: _Line) -> list[str] | None:
    bad = _missing(line)
    arg = line.next()
    if bad is None and a2port(arg or "") <= 0:
        return [f"{line.short}: Bad port '{arg}'."]
    return bad


def _algorithms(line: _Line) -> list[str] | None:
    bad = _missing(line)
    arg = line.next()
    if bad is not None or arg is None:
        return bad
    reasons = option_error(line.keyword, arg)
    return None if reasons is None else \
        [*reasons[:-1], f"{line.short}: {reasons[-1]}"]


def _log_level(line: _Line) -> list[str] | None:
    arg = line.next()
    if arg is not None and arg.upper() in LOG_LEVELS:
        return None
    return [f"{line.short}: unsupported log level "
            f"'{'<NONE>' if arg is None else arg}'"]


def _jump(line: _Line) -> list[str] | None:
    value = line.rest.lstrip(WHITESPACE + "=")
    line.consume()
    reasons = jump_error(value, strict=line.at.startswith("command-line "))
    if reasons is None:
        return None
    return [*reasons, f'{line.short}: Invalid ProxyJump "{value}"']


def _rekey(line: _Line) -> list[str] | None:
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing argument."]
    if arg != "default":
        value, err = scan_scaled(arg)
        if err:
            return [f"{line.short}: Bad number '{arg}': {strerror(err)}"]
        if 0 < value < 16 or value < 0:
            return [f"{line.short}: RekeyLimit too small"]
    if line.args and line.args[0] == "none":
        line.next()
        return None
    return _time(line) if line.args else None


def _ipqos_bad(arg: str | None) -> bool:
    """misc.c ``parse_ipqos``: a name, or a number 0..255 (C syntax)."""
    if arg is None:
        return True
    if arg.lower() in IPQOS_NAMES:
        return False
    value = strtol_any_base(arg)
    return value is None or not 0 <= value <= 255


def _ipqos(line: _Line) -> list[str] | None:
    """One value, or two (interactive and bulk)."""
    values = [line.next()]
    if line.args:
        values.append(line.next())
    for arg in values:
        if _ipqos_bad(arg):
            shown = "(null)" if arg is None else arg
            return [f"{line.at}: Bad IPQoS value: {shown}"]
    return None


def _fingerprint_hash(line: _Line) -> list[str] | None:
    bad = _missing(line)
    arg = line.next()
    if bad is None and arg is not None and arg.lower() not in DIGESTS:
        return [f'{line.short}: Invalid hash algorithm "{arg}".']
    return bad


def _add_keys(line: _Line) -> list[str] | None:
    """``yes``/``no``/``ask``/``confirm``, ``confirm`` and a time, or a
    time alone (which means ``yes``)."""
    arg, time = line.next() or "", line.next()
    head = [] if arg else [f"{line.at}: missing argument."]
    state = arg.lower() if arg.lower() in ADD_KEYS else None
    if state == "confirm" and time is not None:
        return None if convtime(time) >= 0 else \
            [f"{line.at}: invalid time value."]
    if time is None and (state is not None or convtime(arg) >= 0):
        return None
    return [*head, f"{line.at}: unsupported option"]


def _forward(line: _Line) -> list[str] | None:
    """A forwarding: listen and target (one argument for a dynamic one,
    and a ``RemoteForward`` without a target is dynamic)."""
    arg = line.next()
    if not arg:
        return [f"{line.short}: Missing argument."]
    dynamic = line.keyword == "dynamicforward"
    remote = line.keyword == "remoteforward"
    spec = fwdarg(arg)
    if not dynamic:
        target = line.next()
        if target:
            spec = fwdarg(arg, target)
        elif remote:
            dynamic = True
        else:
            return [f"{line.short}: Missing target argument."]
    reasons = forward_error(spec, dynamic=dynamic, remote=remote)
    return None if reasons is None else \
        [*reasons, f"{line.short}: Bad forwarding specification."]


def _inactive_refusal(text: str) -> Callable[[_Line], list[str] | None]:
    def check(line: _Line) -> list[str] | None:
        if line.at.startswith("command-line "):
            return [text]
        return _match(line) if line.keyword == "match" else _array(line)
    return check


def _match(line: _Line) -> list[str] | None:
    """A file's Match condition (not evaluated)."""
    reasons, left_over = match_error(line.rest, line.short)
    if reasons is not None:
        return [*reasons, f"{line.short}: Bad Match condition"]
    if not left_over:
        line.consume()
    return None


_SPECIAL: dict[str, Callable[[_Line], list[str] | None]] = {
    "port": _port, "loglevel": _log_level, "proxyjump": _jump,
    "rekeylimit": _rekey, "ipqos": _ipqos,
    "fingerprinthash": _fingerprint_hash, "addkeystoagent": _add_keys,
    "localforward": _forward, "remoteforward": _forward,
    "dynamicforward": _forward,
    "escapechar": unused.escape_char, "sendenv": unused.send_env,
    "setenv": unused.set_env, "controlpersist": unused.control_persist,
    "tunneldevice": unused.tunnel_device,
    "canonicaldomains": lambda line: _array(line, unused.domain_error),
    "canonicalizepermittedcnames": unused.permitted_cnames,
    "streamlocalbindmask": unused.bind_mask,
    "host": _inactive_refusal(
        "Host directive not supported as a command-line option"),
    "match": _inactive_refusal(
        "Host directive not supported as a command-line option"),
    "include": _inactive_refusal(
        "Include directive not supported as a command-line option"),
}


def _check_value(line: _Line) -> list[str] | None:
    """ssh's complaint about the value of *line*, or None."""
    keyword = line.keyword
    if keyword in _SPECIAL:
        return _SPECIAL[keyword](line)
    if keyword in MULTISTATE:
        return _flag(line, MULTISTATE[keyword])
    if keyword in FLAG:
        return _flag(line, ("yes", "no", "true", "false"))
    if keyword in TIMES:
        return _time(line)
    if keyword in INTEGERS:
        return _integer(line)
    if keyword in STRINGS:
        return _string(line)
    if keyword in ARRAYS:
        return _array(line)
    if keyword in ALGORITHMS:
        return _algorithms(line)
    line.consume()              # not checked here, or ssh ignores it
    return None


def check_line(text: str, where: str, number: int,
               ignored: Callable[[str], bool] | None = None,
               unknown_bad: bool = True) -> Verdict:
    """ssh's verdict on one config line read from *where* (a file, or
    ``command-line`` for ``-o``) at line *number*.

    *ignored* says whether an unknown keyword matches IgnoreUnknown.
    Without *unknown_bad*, a keyword OpenSSH 9.2 does not know passes:
    a file may be written for a later ssh, or for a distribution's
    (Debian's and Red Hat's GSSAPI key exchange options; RHEL's
    crypto-policies include ``GSSAPIKexAlgorithms`` in every session).
    """
    text = text.rstrip(WHITESPACE + "\f")
    keyword, rest = split_keyword(text)
    if not keyword or keyword[0] in "\n#":
        return Verdict()
    keyword = keyword.lower()
    rest = None if rest is None else rest.lstrip(WHITESPACE)
    if not rest:
        return Verdict([f'{where} line {number}: no argument after '
                        f'keyword "{keyword}"'], True)
    verdict = Verdict()
    known = known_keyword(keyword)
    if not known and not unknown_bad:
        return Verdict()
    if not known and not (ignored is not None and ignored(keyword)):
        verdict = Verdict([f"{where}: line {number}: Bad configuration "
                           f"option: {keyword}"], True)
    try:
        args = argv_split(rest)
    except ValueError:
        verdict.lines.append(f"{where} line {number}: invalid quotes")
        return Verdict(verdict.lines, True)
    if verdict.bad or not known:
        return verdict
    line = _Line(where, number, keyword, rest, args)
    if keyword in UNSUPPORTED:
        return Verdict([f'{line.at}: Unsupported option "{keyword}"'])
    reasons = _check_value(line)
    if reasons is not None:
        return Verdict(reasons, True)
    if line.args:
        return Verdict([f"{line.short}: keyword {keyword} extra arguments "
                        "at end of line"], True)
    return Verdict()


def match_pattern_list(name: str, patterns: str) -> bool:
    """ssh's ``match_pattern_list`` (lower case): whether *name* matches
    the comma-separated *patterns*, none of them negated (``!``)."""
    result = False
    for pattern in patterns.lower().split(","):
        negated = pattern.startswith("!")
        if fnmatchcase(name, pattern.lstrip("!").replace("[", "[[]")):
            if negated:
                return False
            result = True
    return result


def pattern_ignored(patterns: str) -> Callable[[str], bool]:
    """An IgnoreUnknown list as ssh's ``match_pattern_list`` reads it."""
    return lambda keyword: match_pattern_list(keyword, patterns)


def command_line_ignore(options: Sequence[str]) -> str | None:
    """The IgnoreUnknown value the ``-o`` *options* set (the first)."""
    for option in options:
        keyword, rest = split_keyword(option.strip())
        if keyword is not None and keyword.lower() == "ignoreunknown" \
                and rest:
            return rest.split()[0]
    return None
