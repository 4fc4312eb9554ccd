"""The man page is generated from the command table and the options."""

from __future__ import annotations

import runpy
import subprocess
from pathlib import Path

from psftp_shell.shell.commands import COMMANDS

TOP = Path(__file__).resolve().parent.parent
PAGE = TOP / "man" / "psftp-shell.1"


def render() -> str:
    module = runpy.run_path(str(TOP / "man" / "gen_manpage.py"))
    return str(module["render"]())


def test_committed_man_page_is_fresh() -> None:
    assert PAGE.read_text() == render(), "run `make man` and commit it"


def test_every_listed_command_and_option_is_in_the_page() -> None:
    text = render()
    for cmd in COMMANDS:
        for usage in cmd.usage.split("\n") if cmd.usage else []:
            assert usage.split()[0].replace("-", "\\-") in text
    for flag in ("\\-n connections", "\\-b batchfile", "\\-D sftp_server"):
        assert flag in text
    assert "input line too long" in text


def test_man_renders_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(["man", "--warnings", "-l", str(PAGE)],
                            capture_output=True, text=True,
                            env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    if result.returncode == 127 or "not found" in result.stderr:
        return   # no man on this machine: the freshness test still ran
    assert result.returncode == 0, result.stderr
    assert "psftp-shell" in result.stdout.replace("\u2010", "-")
