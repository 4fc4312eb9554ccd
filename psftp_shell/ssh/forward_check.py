"""A forwarding (``LocalForward``, ``RemoteForward``, ``DynamicForward``)
checked as OpenSSH 9.2's readconf.c ``parse_forward`` checks it.

:func:`forward_error` takes the value as readconf.c builds it
(:func:`fwdarg`: the two arguments joined with ``:``, one for a dynamic
forwarding, cut to 255 bytes), expands its
``${VAR}`` references (misc.c ``dollar_expand``), splits it into up to
four ``:`` fields (``[...]`` literal, ``\\`` escaping one character, a
``/`` making a field a path) and checks the ports and lengths ssh
checks.  Nothing is forwarded: sftp turns ``ClearAllForwardings`` on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from psftp_shell.core.escape import to_bytes
from psftp_shell.core.libc_parse import C_SPACE, a2port

_STREAMLOCAL = -2           # ssh's port number for a Unix socket path
_MAXHOST = 1025             # NI_MAXHOST
_MAXPATH = 108              # sizeof(sun_path)
_FWDARG = 256               # readconf.c's fwdarg[]
_MISSING = "vdollar_percent_expand"


def fwdarg(arg: str, target: str | None = None) -> str:
    """The value readconf.c hands to ``parse_forward``: *arg* and
    *target* joined with ``:`` (*arg* alone for a dynamic forwarding)
    in its 256-byte buffer, so cut to 255 bytes as ``snprintf`` and
    ``strlcpy`` cut it."""
    joined = arg if target is None else f"{arg}:{target}"
    raw = to_bytes(joined)[:_FWDARG - 1]
    return raw.decode("utf-8", "surrogateescape")


def dollar_expand(text: str) -> tuple[str | None, list[str]]:
    """misc.c ``dollar_expand``: *text* with each ``${VAR}`` replaced by
    its value, and ssh's error lines (the text is None after any)."""
    out: list[str] = []
    lines: list[str] = []
    pos = 0
    while pos < len(text):
        if not text.startswith("${", pos):
            out.append(text[pos])
            pos += 1
            continue
        end = text.find("}", pos + 2)
        if end < 0:
            return None, [*lines, f"{_MISSING}: environment variable "
                          f"'{text[pos + 2:]}' missing closing '}}'"]
        name = text[pos + 2:end]
        if not name:
            return None, [*lines, f"{_MISSING}: zero-length environment "
                          "variable"]
        value = os.environ.get(name)
        if value is None:
            lines.append(f"{_MISSING}: env var ${{{name}}} has no value")
        out.append(value or "")
        pos = end + 1
    return (None if lines else "".join(out)), lines


@dataclass
class _Field:
    """One ``:`` field of a forwarding, and whether it is a path."""

    text: str
    path: bool


def _bracketed(spec: str, pos: int) -> tuple[_Field, int] | None:
    """A ``[...]`` field at *pos* (which must end the field)."""
    end = spec.find("]", pos)
    if end < 0 or spec[end + 1:end + 2] not in (":", ""):
        return None
    text = spec[pos + 1:end]
    return _Field(text, "/" in text), end + 2


def _plain(spec: str, pos: int) -> tuple[_Field, int] | None:
    """A field up to the next unescaped ``:``; an unescaped ``/`` makes
    it a path."""
    chars: list[str] = []
    path = False
    while pos < len(spec) and spec[pos] != ":":
        if spec[pos] == "\\":
            pos += 1
            if pos == len(spec):
                return None
        else:
            path = path or spec[pos] == "/"
        chars.append(spec[pos])
        pos += 1
    return _Field("".join(chars), path), pos + 1


def split_fields(spec: str) -> list[_Field] | None:
    """readconf.c's ``parse_fwd_field`` loop: up to four fields, or None
    when one is malformed or text is left after the fourth."""
    fields: list[_Field] = []
    pos = len(spec) - len(spec.lstrip(C_SPACE))
    while len(fields) < 4 and pos < len(spec):
        if spec[pos:] == "\\":      # ssh drops it, and ends the fields
            return fields
        parsed = _bracketed(spec, pos) if spec[pos] == "[" else \
            _plain(spec, pos)
        if parsed is None:
            return None
        field, pos = parsed
        fields.append(field)
    return fields if pos >= len(spec) else None


@dataclass
class _Forward:
    """What ``parse_forward`` fills in (ports 0 until set)."""

    listen_host: str | None = None
    listen_port: int = 0
    listen_path: str | None = None
    connect_host: str | None = None
    connect_port: int = 0
    connect_path: str | None = None


def _listen(fwd: _Forward, field: _Field, host: str | None = None) -> None:
    if field.path and host is None:
        fwd.listen_path, fwd.listen_port = field.text, _STREAMLOCAL
    else:
        fwd.listen_host, fwd.listen_port = host, a2port(field.text)


def _connect(fwd: _Forward, field: _Field, host: str | None) -> None:
    if host is None:
        fwd.connect_path, fwd.connect_port = field.text, _STREAMLOCAL
    else:
        fwd.connect_host, fwd.connect_port = host, a2port(field.text)


def _fill(fields: list[_Field]) -> _Forward:
    """The forwarding the *fields* describe, by their count and paths."""
    fwd = _Forward()
    first, last = fields[0], fields[-1]
    if len(fields) == 1:
        _listen(fwd, first)
        fwd.connect_host = "socks"
    elif len(fields) == 2:
        if last.path:
            _listen(fwd, first)
            _connect(fwd, last, None)
        else:
            _listen(fwd, last, first.text)
            fwd.connect_host = "socks"
    elif len(fields) == 3:
        if first.path:
            _listen(fwd, first)
            _connect(fwd, last, fields[1].text)
        elif last.path:
            _listen(fwd, fields[1], first.text)
            _connect(fwd, last, None)
        else:
            _listen(fwd, first)
            _connect(fwd, last, fields[1].text)
    else:
        _listen(fwd, fields[1], first.text)
        _connect(fwd, last, fields[2].text)
    return fwd


def _too_long(fwd: _Forward) -> bool:
    def size(text: str | None) -> int:
        return 0 if text is None else \
            len(to_bytes(text))
    return size(fwd.connect_host) >= _MAXHOST or \
        size(fwd.listen_host) >= _MAXHOST or \
        size(fwd.connect_path) >= _MAXPATH or \
        size(fwd.listen_path) >= _MAXPATH


def forward_valid(spec: str, *, dynamic: bool, remote: bool) -> bool:
    """Whether ``parse_forward`` takes the (expanded) *spec*."""
    fields = split_fields(spec) or []
    if not fields or (dynamic and len(fields) > 2):
        return False
    fwd = _fill(fields)
    if not dynamic:
        if len(fields) < 3 and fwd.connect_path is None and \
                fwd.listen_path is None:
            return False
        if fwd.connect_port <= 0 and fwd.connect_path is None:
            return False
    if fwd.listen_port < 0 and fwd.listen_path is None:
        return False
    if not remote and fwd.listen_port == 0:
        return False
    return not _too_long(fwd)


def forward_error(spec: str, *, dynamic: bool, remote: bool
                  ) -> list[str] | None:
    """None if ssh takes the forwarding *spec*; else ssh's lines before
    its own "Bad forwarding specification." line."""
    expanded, lines = dollar_expand(spec)
    if expanded is None:
        return lines
    return None if forward_valid(expanded, dynamic=dynamic,
                                 remote=remote) else []
