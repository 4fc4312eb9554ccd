"""Path strings as sftp builds them (a pure module).

Remote paths are plain strings joined without normalisation, exactly as
OpenSSH's sftp does (``/home/u/../x`` stays as typed).  The glob helpers
deal with the backslash escapes that sftp's tokenizer leaves in words.
"""

from __future__ import annotations

import os.path

GLOB_SPECIAL = "[]?*\\"
"""Characters sftp's ``escape_glob`` protects with a backslash."""

_UNESCAPED_BY_UNDO = "?[*\\"


def path_append(base: str, name: str) -> str:
    """Join *name* to *base* with one ``/``, unless *base* ends in one."""
    if base and not base.endswith("/"):
        return f"{base}/{name}"
    return base + name


def is_absolute(path: str) -> bool:
    """Return whether *path* is absolute (starts with ``/``)."""
    return path.startswith("/")


def make_absolute(path: str, cwd: str) -> str:
    """Make *path* absolute against *cwd* by plain joining."""
    return path if is_absolute(path) else path_append(cwd, path)


def local_against(cwd: str, path: str) -> str:
    """A local *path* as typed, against the shell's local *cwd*.

    An empty path stays empty: sftp's ``open("")``, ``stat("")`` and
    ``mkdir("")`` fail with ENOENT, while joining ``""`` to the cwd would
    name the cwd itself.
    """
    return os.path.join(cwd, path) if path else ""


def glob_escape(text: str) -> str:
    """Backslash-escape ``[]?*\\`` so glob takes *text* literally."""
    return "".join("\\" + c if c in GLOB_SPECIAL else c for c in text)


def undo_glob_escape(text: str) -> str:
    """Resolve ``\\?`` ``\\[`` ``\\*`` ``\\\\``; keep other ``\\x`` pairs.

    This is what sftp applies to words it does not glob.  A lone
    trailing backslash is kept.
    """
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        nxt = text[index + 1:index + 2]
        if char == "\\" and nxt and nxt in _UNESCAPED_BY_UNDO:
            out.append(nxt)
            index += 2
        elif char == "\\" and nxt:
            out.append(char + nxt)
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def has_glob_magic(text: str) -> bool:
    """Return whether *text* has an unescaped ``*``, ``?`` or ``[``."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char in "*?[":
            return True
        index += 1
    return False


def make_absolute_glob(path: str | None, cwd: str) -> str:
    """Make a glob pattern absolute against a glob-escaped *cwd*.

    This is sftp's ``make_absolute_pwd_glob``; with no *path* it returns
    the escaped *cwd* alone.
    """
    escaped = glob_escape(cwd)
    if path is None:
        return escaped
    return make_absolute(path, escaped)


def basename(path: str) -> str:
    """Return the last component, as POSIX basename(3) does.

    Trailing slashes are ignored (``/a/sub/`` gives ``sub``); ``/`` gives
    ``/`` and an empty path ``.``.
    """
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def path_strip(path: str, strip: str | None) -> str:
    """Remove the prefix *strip* (usually the cwd) from *path*.

    As sftp's ``path_strip``: if *strip* does not end in ``/``, the ``/``
    after it in *path* goes too; a *path* without the prefix is returned
    unchanged.
    """
    if not strip or not path.startswith(strip):
        return path
    cut = len(strip)
    if not strip.endswith("/") and path[cut:cut + 1] == "/":
        cut += 1
    return path[cut:]


def is_marked_dir(path: str) -> bool:
    """Return whether a glob result (GLOB_MARK) is a directory."""
    return path.endswith("/")


def _not_parent(name: str) -> str:
    """``.`` for ``..``: a copy of ``..`` goes to its destination."""
    return "." if name == ".." else name


def get_destination(match: str, dst: str | None, *, match_count: int,
                    dst_is_dir: bool) -> str:
    """Return the local target of one ``get`` match (sftp 9.2 rules).

    *match* is the remote glob result, *dst* the local argument as typed
    (None when absent), *match_count* the glob's number of real matches
    and *dst_is_dir* whether *dst* is an existing local directory
    (``stat``, following links).  The caller first rejects several matches
    with a *dst* that is not a directory.  A match named ``..`` lands in
    the destination itself, not its parent (OpenSSH 10.3's fix).
    """
    name = _not_parent(basename(match))
    if dst is None:
        return name
    if match_count == 1 and not dst_is_dir:
        return dst
    return path_append(dst, name)


def put_destination(match: str, dst: str | None, cwd: str, *,
                    match_count: int, dst_is_dir: bool) -> str:
    """Return the remote target of one ``put`` match (sftp 9.2 rules).

    *dst* is the remote argument as typed (None when absent); it is made
    absolute against *cwd*.  *match_count* counts real glob matches: a
    pattern kept by GLOB_NOCHECK counts 0, and then the name is appended
    even when *dst* is not a directory, as sftp does.  A match named
    ``..`` lands in the destination itself (OpenSSH 10.3's fix).
    """
    name = _not_parent(basename(match))
    if dst is None:
        return make_absolute(name, cwd)
    target = make_absolute(dst, cwd)
    if match_count == 1 and not dst_is_dir:
        return target
    return path_append(target, name)
