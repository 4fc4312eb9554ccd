"""The benchmark's probe of what one SFTP request costs sftp."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import probe

FAKE_SFTP = """
import sys, time
script = sys.argv[sys.argv.index("-b") + 1]
for line in open(script):
    if line.strip() == "cd .":
        time.sleep(float(sys.argv[1]))     # its two requests
sys.exit(int(sys.argv[2]))
"""


def fake(tmp_path: Path, seconds_per_line: float, status: int = 0
         ) -> list[str]:
    script = tmp_path / "fake_sftp.py"
    script.write_text(FAKE_SFTP)
    return [sys.executable, str(script), str(seconds_per_line),
            str(status), "psftp-test"]


def test_a_request_costs_half_a_cd_line(tmp_path: Path) -> None:
    cost = probe.sftp_request_cost(fake(tmp_path, 0.004), tmp_path,
                                   pairs=1)
    assert cost is not None
    # 200 lines of 4 ms, two requests each: 2 ms a request, give or
    # take the start-up difference of two runs of the fake
    assert 0.0015 < cost < 0.003
    scripts = sorted(p.name for p in tmp_path.glob("request-probe-*"))
    assert scripts == ["request-probe-busy", "request-probe-idle"]
    busy = (tmp_path / "request-probe-busy").read_text().splitlines()
    assert busy == ["cd ."] * probe.REQUEST_PROBE_LINES


def test_a_failed_run_gives_no_figure(tmp_path: Path) -> None:
    assert probe.sftp_request_cost(fake(tmp_path, 0, status=1),
                                   tmp_path, pairs=1) is None


def test_a_run_over_time_gives_no_figure(tmp_path: Path,
                                         monkeypatch) -> None:
    """A hung sftp is killed after the probe's timeout, not waited for
    (and the benchmark goes on without the figure)."""
    monkeypatch.setattr(probe, "REQUEST_PROBE_TIMEOUT", 0.5)
    start = time.perf_counter()
    assert probe.sftp_request_cost(fake(tmp_path, 0.05), tmp_path,
                                   pairs=1) is None
    assert time.perf_counter() - start < 5
