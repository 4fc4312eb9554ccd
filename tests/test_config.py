"""psftp-shell's config file, its environment variable and -n precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from psftp_shell.frontend.cli_messages import exit_status, format_error
from psftp_shell.frontend.config_file import (
    ENV_CONNECTIONS,
    SETTINGS,
    Config,
    ConfigError,
    config_path,
    load_config,
    parse_config,
    parse_connections,
    resolve_connections,
)
from psftp_shell.frontend.options import parse_args

PROG = "psftp-shell"


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "psftp-shell" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path), **extra}


# --- where the file is -------------------------------------------------------

def test_path_from_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": "/x/conf", "HOME": "/home/u"}
    assert config_path(env) == Path("/x/conf/psftp-shell/config")


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_path_defaults_to_home_config(xdg: str | None) -> None:
    env = {"HOME": "/home/u"}
    if xdg is not None:
        env["XDG_CONFIG_HOME"] = xdg
    assert config_path(env) == Path("/home/u/.config/psftp-shell/config")


def test_path_without_home_uses_password_entry() -> None:
    path = config_path({})
    assert path.parts[-3:] == (".config", "psftp-shell", "config")
    assert path.is_absolute()


# --- reading it --------------------------------------------------------------

def test_missing_file_is_empty(tmp_path: Path) -> None:
    config = load_config(_env(tmp_path))
    assert (config.values, config.warnings) == ({}, [])


def test_reads_settings_comments_and_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "# parallel transfers\n\n   \n"
                            "  connections =  8  \n\t# indented comment\n")
    config = load_config(_env(tmp_path))
    assert config.path == path
    assert config.values == {"connections": 8}
    assert config.warnings == []


def test_explicit_path_wins(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_text("connections=3\r\n")
    assert load_config({}, other).values == {"connections": 3}


def test_later_line_overrides(tmp_path: Path) -> None:
    _write(tmp_path, "connections = 2\nconnections = 5\n")
    assert load_config(_env(tmp_path)).values == {"connections": 5}


def test_unknown_key_warns_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "connections = 2\n\ncolour = blue\n")
    config = load_config(_env(tmp_path))
    assert config.values == {"connections": 2}
    assert config.warnings == [f'{path}:3: unknown setting "colour" ignored']


@pytest.mark.parametrize(("text", "message"), [
    ("connections = 0\n",
     '{p}:1: invalid connections value "0": must be a number from 1 to 64'),
    ("\nconnections = many\n",
     '{p}:2: invalid connections value "many": must be a number from 1 '
     "to 64"),
    ("connections =\n",
     '{p}:1: invalid connections value "": must be a number from 1 to 64'),
    ("connections 4\n", '{p}:1: expected "key = value"'),
    (" = 4\n", '{p}:1: expected "key = value"'),
])
def test_bad_lines_are_errors(tmp_path: Path, text: str,
                              message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(_env(tmp_path))
    assert str(info.value) == message.format(p=path)


def test_error_is_printed_with_program_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "connections = 99\n")
    with pytest.raises(ConfigError) as info:
        load_config(_env(tmp_path))
    assert format_error(info.value, PROG) == (
        f'psftp-shell: {path}:1: invalid connections value "99": must be '
        "a number from 1 to 64\n").encode()
    assert exit_status(info.value) == 1


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "psftp-shell" / "config").mkdir(parents=True)
    with pytest.raises(ConfigError, match="^cannot read .*config: Is a dir"):
        load_config(_env(tmp_path))


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, b"connections = 2\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(_env(tmp_path))


def test_parse_config_directly() -> None:
    config = parse_config("connections=64\nx=1\n", Path("/c"))
    assert config.values == {"connections": 64}
    assert config.warnings == ['/c:2: unknown setting "x" ignored']


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("64", 64), (" 7 ", 7), ("08", 8)])
def test_parse_connections_accepts(text: str, value: int) -> None:
    assert parse_connections(text) == value


@pytest.mark.parametrize("text", ["0", "65", "", "+4", "-1", "4.0", "²",
                                  "1e1", "0x10"])
def test_parse_connections_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="^must be a number from 1 to 64$"):
        parse_connections(text)


def test_settings_table_validates_connections() -> None:
    assert SETTINGS["connections"]("12") == 12


# --- precedence of -n --------------------------------------------------------

def _connections(args: list[str], env: dict[str, str],
                 config: Config) -> int:
    opts = parse_args([*args, "h"], PROG)
    return resolve_connections(opts.connections, env, config)


def test_precedence(tmp_path: Path) -> None:
    _write(tmp_path, "connections = 4\n")
    config = load_config(_env(tmp_path))
    env = {ENV_CONNECTIONS: "6"}
    assert _connections(["-n", "2"], env, config) == 2
    assert _connections(["-X", "connections=3"], env, config) == 3
    assert _connections([], env, config) == 6
    assert _connections([], {}, config) == 4
    assert _connections([], {}, Config()) == 1
    assert _connections([], {ENV_CONNECTIONS: ""}, config) == 4


def test_bad_environment_value() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_connections(None, {ENV_CONNECTIONS: "0"}, Config())
    assert str(info.value) == (f'invalid {ENV_CONNECTIONS} value "0": '
                               "must be a number from 1 to 64")
    # An option given on the command line makes the variable irrelevant.
    assert resolve_connections(5, {ENV_CONNECTIONS: "0"}, Config()) == 5
