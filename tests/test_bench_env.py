"""The benchmark's clients run in an environment of its own."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.harness import Harness
from bench.progress import Progress
from bench.results import BenchResults
from psftp_shell.frontend.repl import history_path


def test_typed_runs_keep_their_history_in_the_workdir(
        tmp_path: Path) -> None:
    """A typed run's history is the benchmark's, not the user's: theirs
    grew with every run and is read whole at every start."""
    work = tmp_path / "work"
    harness = Harness(tmp_path, work, Progress(1, io.StringIO()),
                      BenchResults("test", "now", {}), 1 << 20)
    path = history_path(harness.env)
    assert path.is_relative_to(work)
    assert not history_path({"HOME": "/home/someone"}).is_relative_to(work)


def test_a_relative_workdir_still_keeps_the_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """XDG ignores a relative XDG_STATE_HOME: the harness gives an
    absolute one, or the history would go back to the user's HOME."""
    monkeypatch.chdir(tmp_path)
    harness = Harness(tmp_path, Path("work"), Progress(1, io.StringIO()),
                      BenchResults("test", "now", {}), 1 << 20)
    path = history_path(harness.env)
    assert path.is_relative_to(tmp_path / "work")
