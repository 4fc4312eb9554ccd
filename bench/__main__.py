"""``python -m bench quick|full|cpu``: run the benchmark, write the report.

Exit status: 0 when the benchmark completed (even if some client failed),
1 when the benchmark itself broke (no sshd, relay broken, sftp baseline
failing everywhere), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench import data, harness, report, scenarios
from bench.progress import Progress
from bench.results import BenchResults

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the benchmark's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark psftp-shell against OpenSSH sftp (and lftp "
                    "and rclone where installed).")
    parser.add_argument("mode", choices=("quick", "full", "cpu"))
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per client and scenario (default 3, "
                             "5 for cpu)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenario keys to run")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help=f"where the report goes (default {RESULTS})")
    parser.add_argument("--data", type=Path, default=None,
                        help="data cache (default $PSFTP_BENCH_DATA or "
                             "bench/.data)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the scratch directory (keys, logs)")
    return parser.parse_args(argv)


def _baseline_failed(results: BenchResults) -> bool:
    bases = [r.baseline() for r in results.scenarios]
    return bool(bases) and all(b is None or not b.good for b in bases)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    args = parse_args(argv)
    plan = scenarios.plan(args.mode, args.runs)
    if args.only:
        keys = set(args.only.split(","))
        plan = [s for s in plan if s.key in keys]
        if not plan:
            print("bench: --only matches no scenario", file=sys.stderr)
            return 2
    root = (args.data or data.data_dir()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    held = data.hold(root)
    if held is None:
        print(f"bench: another run is using {root}: wait for it to end",
              file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="psftp-bench-"))
    results = BenchResults(args.mode, harness.now_text(), report.machine())
    progress = Progress(harness.steps(plan))
    status = 0
    try:
        harness.run_plan(plan, results, root, workdir, progress,
                         ceiling_bytes=(64 if args.mode == "quick"
                                        else 256) << 20)
    except harness.BenchBroken as exc:
        print(f"bench: the benchmark broke: {exc}", file=sys.stderr)
        results.warnings.append(f"the benchmark broke: {exc}")
        status = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        results.warnings.append("interrupted")
        status = 130
    finally:
        if args.keep_workdir:
            print(f"bench: scratch files kept in {workdir}", file=sys.stderr)
        else:
            harness.clean_workdir(workdir)
    if status == 0 and _baseline_failed(results):
        results.warnings.append("the sftp baseline failed everywhere")
        print("bench: the sftp baseline failed everywhere", file=sys.stderr)
        status = 1
    md = report.write(results, args.out,
                      "cpu" if args.mode == "cpu" else "latest")
    print(md.read_text())
    print(f"bench: report written to {md}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
