"""The benchmark clears copies between runs without removing trees.

Removing thousands of files just before a run slows every later file
creation on ext4 without a journal, so the harness moves copied trees
aside and removes them when it stops; see :mod:`bench.harness`.
"""

from __future__ import annotations

import io
from pathlib import Path

from bench import __main__ as bench_main
from bench import data
from bench import harness as harness_module
from bench.harness import CREATION_PROBE_FILES, Harness
from bench.progress import Progress
from bench.results import BenchResults


def _harness(root: Path) -> Harness:
    (root / "down").mkdir(parents=True)
    return Harness(root, root / "work", Progress(1, io.StringIO()),
                   BenchResults("test", "now", {}), 1 << 20)


def test_a_copied_tree_is_moved_aside_and_removed_at_the_end(
        tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    (harness.spent / "1" / "old").mkdir(parents=True)   # a killed run's
    tree = tmp_path / "down" / "tree"
    for number in range(2):
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "f").write_bytes(b"copy %d" % number)
        harness._clear(tree)
        assert not tree.exists()
    kept = sorted(p.read_bytes() for p in harness.spent.rglob("f"))
    assert kept == [b"copy 0", b"copy 1"]      # nothing removed yet
    harness.stop()
    assert not harness.spent.exists()


def test_a_copied_file_is_removed_at_once(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    big = tmp_path / "down" / "big.bin"
    big.write_bytes(b"x" * 10)
    harness._clear(big)
    assert not big.exists()
    assert not harness.spent.exists()


def test_the_creation_probe_measures_and_leaves_nothing_behind(
        tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    cost = harness.creation_cost()
    assert 0 < cost < 1e6
    assert not (tmp_path / "down" / "creation-probe").exists()
    probes = list(harness.spent.rglob("f*"))
    assert len(probes) == CREATION_PROBE_FILES
    harness.stop()
    assert not harness.spent.exists()


def test_one_run_at_a_time_holds_the_data_directory(tmp_path: Path) -> None:
    first = data.hold(tmp_path)
    assert first is not None
    assert data.hold(tmp_path) is None      # a second run is refused
    first.close()
    again = data.hold(tmp_path)             # free once the first ends
    assert again is not None
    again.close()


def test_a_second_run_starts_nothing(tmp_path: Path, monkeypatch,
                                    capsys) -> None:
    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second run started")

    monkeypatch.setattr(harness_module, "run_plan", no_run)
    held = data.hold(tmp_path)
    try:
        status = bench_main.main(["quick", "--data", str(tmp_path),
                                  "--out", str(tmp_path / "out"),
                                  "--only", "loopback-get-r-small"])
    finally:
        assert held is not None
        held.close()
    assert status == 2
    assert "another run is using" in capsys.readouterr().err
