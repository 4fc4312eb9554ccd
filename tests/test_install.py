"""``make install`` puts the man page where ``man`` finds it.

The real Makefile target runs into a throwaway HOME (a private venv,
the command linked into ~/.local/bin, the page in
~/.local/share/man/man1); ``man -w psftp-shell`` must then name the
page, with ~/.local/bin on PATH as a user's is.  DATA_HOME moves the
page along, and ``make uninstall`` takes it away.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
PAGE = Path("share/man/man1/psftp-shell.1")


def _env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("MANPATH", "XDG_DATA_HOME", "MAKEFLAGS",
                          "VIRTUAL_ENV")}
    env.update(HOME=str(home),
               PATH=f"{home}/.local/bin:/usr/local/bin:/usr/bin:/bin")
    return env


def _make(home: Path, *args: str) -> None:
    done = subprocess.run(["make", "-C", str(REPO), *args],
                          env=_env(home), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def _man_w(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["man", "-w", "psftp-shell"], env=_env(home),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_man_finds_the_page_after_make_install(tmp_path: Path) -> None:
    require(shutil.which("man") is not None, "man (man-db)")
    require(shutil.which("make") is not None, "make")
    home = tmp_path / "home"
    home.mkdir()
    assert _man_w(home).returncode != 0         # not there before
    _make(home, "install", "PYTHON=python3")
    page = home / ".local" / PAGE
    assert page.read_bytes() == (REPO / "man/psftp-shell.1").read_bytes()
    found = _man_w(home)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(page)
    assert (home / ".local/bin/psftp-shell").exists()
    _make(home, "uninstall")
    assert not page.exists()
    assert _man_w(home).returncode != 0


def test_man_page_follows_data_home(tmp_path: Path) -> None:
    require(shutil.which("make") is not None, "make")
    home = tmp_path / "home"
    home.mkdir()
    _make(home, "install-man", f"DATA_HOME={tmp_path / 'data'}")
    assert (tmp_path / "data/man/man1/psftp-shell.1").is_file()
    assert not (home / ".local").exists()
