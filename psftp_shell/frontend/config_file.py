"""psftp-shell's own settings: the config file and environment variables.

The file is ``$XDG_CONFIG_HOME/psftp-shell/config`` (by default
``~/.config/psftp-shell/config``) and holds ``key = value`` lines; blank
lines and lines whose first non-blank character is ``#`` are ignored.
A key that is not in :data:`SETTINGS` draws a one-line warning naming the
file and line; a malformed line or a bad value is a :class:`ConfigError`
(exit status 1).  A later line for the same key overrides an earlier one.

Nothing here reads global state: the environment is passed in, so tests
and the command line decide where the file lives.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from psftp_shell.core.errors import ShellError

APP_NAME = "psftp-shell"
CONFIG_NAME = "config"
ENV_CONNECTIONS = "PSFTP_SHELL_CONNECTIONS"
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 64
DEFAULT_CONNECTIONS = 1


class ConfigError(ShellError):
    """A bad setting (config file, environment or ``-n``); exit status 1.

    Printed as ``<prog>: <message>`` with no usage text (see
    :func:`psftp_shell.frontend.cli_messages.format_error`).
    """


def parse_connections(text: str) -> int:
    """Return the number of parallel connections *text* asks for.

    Only decimal digits (surrounding blanks allowed) from 1 to 64 are
    accepted; anything else raises ``ValueError`` with the reason.
    """
    value = text.strip(" \t")
    if value.isascii() and value.isdigit():
        number = int(value)
        if MIN_CONNECTIONS <= number <= MAX_CONNECTIONS:
            return number
    raise ValueError(f"must be a number from {MIN_CONNECTIONS} to "
                     f"{MAX_CONNECTIONS}")


# Every setting the config file knows: name -> validator.  A validator
# takes the text after "=" and returns the value or raises ValueError
# with a short reason ("must be ...").  Later settings are one line each.
def parse_editing_mode(text: str) -> str:
    """Validate ``editing-mode``: ``emacs`` or ``vi``."""
    mode = text.strip().lower()
    if mode not in ("emacs", "vi"):
        raise ValueError("must be emacs or vi")
    return mode


def parse_channels(text: str) -> int:
    """Validate ``channels``: SFTP channels per SSH connection, 1..64."""
    return parse_connections(text)


VERIFY_MODES = ("size", "hash", "none")
"""``verify`` values: check sizes (default), hashes, or nothing."""


def parse_verify(text: str) -> str:
    """Validate ``verify``: ``size``, ``hash`` or ``none``."""
    mode = text.strip(" \t").lower()
    if mode not in VERIFY_MODES:
        raise ValueError("must be size, hash or none")
    return mode


def parse_verify_exec(text: str) -> bool:
    """Validate ``verify-exec``: ``yes`` or ``no``."""
    answer = text.strip(" \t").lower()
    if answer not in ("yes", "no"):
        raise ValueError("must be yes or no")
    return answer == "yes"


def parse_addresses(text: str) -> str:
    """Validate ``addresses``: ``first`` or ``all`` of the host name's."""
    mode = text.strip(" \t").lower()
    if mode not in ("first", "all"):
        raise ValueError("must be first or all")
    return mode


SETTINGS: dict[str, Callable[[str], object]] = {
    "connections": parse_connections,
    "channels": parse_channels,
    "addresses": parse_addresses,
    "verify": parse_verify,
    "verify-exec": parse_verify_exec,
    "editing-mode": parse_editing_mode,
}


@dataclass(slots=True)
class Config:
    """The settings read from the config file, and warnings about it."""

    path: Path | None = None
    values: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _home(environ: Mapping[str, str]) -> Path:
    """Return the home directory: ``$HOME``, else the password entry."""
    home = environ.get("HOME")
    if home:
        return Path(home)
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def config_path(environ: Mapping[str, str]) -> Path:
    """Return where the config file lives for this environment.

    ``$XDG_CONFIG_HOME`` counts only when it is an absolute path, as the
    XDG base directory specification says; otherwise ``~/.config``.
    """
    base = environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else _home(environ) / ".config"
    return root / APP_NAME / CONFIG_NAME


def _parse_line(config: Config, where: str, line: str) -> None:
    """Apply one non-blank, non-comment line to *config*."""
    key, sep, value = line.partition("=")
    key = key.strip(" \t")
    if not sep or not key:
        raise ConfigError(f'{where}: expected "key = value"')
    validate = SETTINGS.get(key)
    if validate is None:
        config.warnings.append(f'{where}: unknown setting "{key}" ignored')
        return
    value = value.strip(" \t")
    try:
        config.values[key] = validate(value)
    except ValueError as exc:
        raise ConfigError(
            f'{where}: invalid {key} value "{value}": {exc}') from None


def parse_config(text: str, path: Path) -> Config:
    """Parse the text of a config file read from *path*."""
    config = Config(path=path)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        _parse_line(config, f"{path}:{number}", line)
    return config


def load_config(environ: Mapping[str, str],
                path: Path | None = None) -> Config:
    """Read the config file (*path*, else :func:`config_path`).

    A missing file is an empty config; an unreadable or non-UTF-8 file is
    a :class:`ConfigError`.
    """
    if path is None:
        path = config_path(environ)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Config(path=None)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid UTF-8 (byte {exc.start})") from None
    return parse_config(text, path)


def resolve_connections(option: int | None, environ: Mapping[str, str],
                        config: Config) -> int:
    """Return the number of connections to use.

    Precedence: the ``-n`` option, then ``$PSFTP_SHELL_CONNECTIONS`` (an
    empty value counts as unset), then the config file, then 1.  A bad
    environment value is a :class:`ConfigError`.
    """
    if option is not None:
        return option
    text = environ.get(ENV_CONNECTIONS, "")
    if text:
        try:
            return parse_connections(text)
        except ValueError as exc:
            raise ConfigError(f'invalid {ENV_CONNECTIONS} value "{text}": '
                              f"{exc}") from None
    value = config.values.get("connections")
    if isinstance(value, int):
        return value
    return DEFAULT_CONNECTIONS
