"""Write the results: a markdown report, JSON, and a PNG plot.

Everything goes to ``bench/results/`` as ``latest.md``, ``latest.json``
and ``latest.png``, each written to a ``.tmp`` file first and renamed.
The plot needs matplotlib (the ``bench`` extra); without it the report
says so and the rest is written all the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.clients import (
    SSH_TRANSPORT,
    TYPED,
    TYPED_PACED,
    TYPING_PAUSE,
    installed,
)
from bench.progress import clock
from bench.results import BenchResults, ClientRuns, ScenarioResult

MIB = 1 << 20


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def machine() -> dict[str, str]:
    """Describe the machine and the software the figures depend on."""
    import asyncssh

    import psftp_shell

    info = {
        "cores": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "openssh": _version(["ssh", "-V"]),
        "python": platform.python_version(),
        "asyncssh": asyncssh.__version__,
        "psftp-shell": str(getattr(psftp_shell, "__version__", "?")),
    }
    for tool, flag in (("lftp", "--version"), ("rclone", "version")):
        if installed(tool):
            info[tool] = _version([tool, flag])
    return info


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _row(result: ScenarioResult, client: ClientRuns) -> str:
    scenario = result.scenario
    runs = f"{len(client.good)}/{len(client.runs)}"
    if not client.good:
        why = client.error.replace("|", "\\|") or "no run"
        return (f"| {client.label} | {runs} | failed: {why} "
                "| | | | | | |")
    rate = result.rate(client)
    speedup = result.speedup(client)
    rss = client.peak_rss_kib()
    cells = [
        client.label, runs,
        _num(client.median_seconds(), ".2f"),
        _num(rate / 1e6 if rate else None, ".1f"),
        "1.00" if client.kind == "sftp" else _num(speedup, ".2f"),
        _num(result.cpu_per_gib(client), ".2f") if scenario.mib
        else _num(client.median_cpu(), ".2f"),
        _num(result.own_cpu_per_gib(client), ".2f") if scenario.mib
        else _num(client.median_own_cpu(), ".2f"),
        _num(rss / 1024 if rss else None, ".0f"),
        client.error.replace("|", "\\|") if client.failed else "",
    ]
    return "| " + " | ".join(cells) + " |"


def _scenario_table(result: ScenarioResult) -> list[str]:
    scenario = result.scenario
    cpu = "CPU s/GiB" if scenario.mib else "CPU s"
    what = "to prompt" if scenario.op == "prompt" else "whole run"
    lines = [f"### {scenario.title}", ""]
    if scenario.target:
        lines += [f"Engine figure: {scenario.target}.", ""]
    if result.creation_us is not None:
        lines += ["Creating one small file where the copies land took "
                  f"{result.creation_us:.0f} us before the runs.", ""]
    if result.request_us is not None:
        lines += [f"One SFTP request took sftp {result.request_us:.0f} us "
                  "(one after the other, as it copies files).", ""]
    lines += [
        f"| client | runs ok | median s ({what}) | MB/s | vs sftp "
        f"| {cpu} | own process {cpu} | peak RSS MiB | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(result, c) for c in result.clients]
    return lines + [""]


def _ceiling_table(results: BenchResults) -> list[str]:
    if not results.ceilings:
        return []
    lines = [
        "## The relay alone (raw TCP, no SSH)", "",
        "What the emulated path can carry at best: a round trip of one "
        "byte, and the rate of 1 and of several parallel TCP streams "
        "measured at the receiver.", "",
        "| path | RTT ms | 1 stream MB/s | streams | all streams MB/s |",
        "|---|---|---|---|---|",
    ]
    for key, c in results.ceilings.items():
        title = next((r.scenario.path.title for r in results.scenarios
                      if r.scenario.path.key == key), key)
        lines.append(
            f"| {title} | {c.rtt * 1000:.1f} | {c.one_stream / 1e6:.1f} "
            f"| {c.streams} | {c.many_streams / 1e6:.1f} |")
    return lines + [""]


def _target_line(result: ScenarioResult) -> str:
    """One engine figure: psftp-shell -n N against sftp in one run."""
    scenario = result.scenario
    client = next((c for c in result.clients if c.kind == "psftp-shell"
                   and c.conns == scenario.target_n), None)
    base = result.baseline()
    if client is None or base is None:
        return ""
    mine = client.median_seconds()
    if mine is None:
        return f"- {scenario.target}: {client.label} failed ({client.error})"
    theirs = base.median_seconds()
    speedup = result.speedup(client)
    parts = [f"{client.label} {mine:.2f} s"]
    if theirs is not None and speedup is not None:
        parts[0] += f" vs sftp {theirs:.2f} s (×{speedup:.2f})"
    cpu, base_cpu = result.cpu_per_gib(client), result.cpu_per_gib(base)
    if cpu is not None:
        parts.append(f"CPU {cpu:.2f} s/GiB (sftp {_num(base_cpu, '.2f')})")
    parts += _typed_parts(result, mine)
    rss, base_rss = client.peak_rss_kib(), base.peak_rss_kib()
    if rss:
        parts.append(f"peak RSS {rss / 1024:.0f} MiB (sftp "
                     f"{_num(base_rss / 1024 if base_rss else None, '.0f')})")
    return f"- {scenario.target}: " + "; ".join(parts)


def _typed_parts(result: ScenarioResult, batch: float) -> list[str]:
    """The typed runs of the engine figure's -n, as times the batch run."""
    parts = []
    for client in result.clients:
        seconds = client.median_seconds()
        if client.kind in (TYPED, TYPED_PACED) and seconds and \
                client.conns == result.scenario.target_n:
            how = client.label.split(", ", 1)[1]
            parts.append(f"{how} ×{seconds / batch:.2f} the batch run")
    return parts


def _targets(results: BenchResults) -> list[str]:
    lines = [_target_line(r) for r in results.scenarios if r.scenario.target]
    lines = [line for line in lines if line]
    if not lines:
        return []
    return ["## Engine figures", ""] + lines + [""]


CPU_RATIO = 0.75
"""Target: psftp-shell's CPU per GiB at most this times sftp's (with
its ssh), asyncssh transport, -n 1 and -n 8, get and put."""
OWN_CPU = 1.0
"""Target: under -S ssh, psftp-shell's own process's s/GiB at most."""
GET_SPEEDUP = 1.2
"""Target: get -n 1 at least this times sftp's throughput."""


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _cpu_lines(result: ScenarioResult) -> list[str]:
    """The CPU targets one cpu scenario measures, each a ratio."""
    op = result.scenario.op
    base = result.baseline()
    base_cpu = result.cpu_per_gib(base) if base else None
    lines = []
    for client in result.clients:
        cpu = result.cpu_per_gib(client)
        if client.kind == "psftp-shell" and cpu is not None and base_cpu:
            ratio = cpu / base_cpu
            lines.append(
                f"- {op} {client.label}: CPU {cpu:.2f} s/GiB, sftp with "
                f"its ssh {base_cpu:.2f} (×{ratio:.2f}; target ≤ "
                f"×{CPU_RATIO}: {_met(ratio <= CPU_RATIO)})")
        own = result.own_cpu_per_gib(client)
        if client.kind == SSH_TRANSPORT and own is not None:
            lines.append(
                f"- {op} {client.label}: own process {own:.2f} s/GiB "
                f"(target ≤ {OWN_CPU}: {_met(own <= OWN_CPU)}), with its "
                f"ssh {_num(cpu, '.2f')}")
        speedup = result.speedup(client)
        if op == "get" and client.kind == "psftp-shell" and \
                client.conns == 1 and speedup is not None:
            lines.append(
                f"- {op} {client.label}: throughput ×{speedup:.2f} sftp's "
                f"(target ≥ ×{GET_SPEEDUP}: {_met(speedup >= GET_SPEEDUP)})")
    return lines


def cpu_figures(results: BenchResults) -> list[str]:
    """The CPU-per-GiB targets of the ``cpu`` plan, met or not."""
    lines = [line for r in results.scenarios if r.scenario.cpu_figures
             for line in _cpu_lines(r)]
    if not lines:
        return []
    return ["## CPU figures", "", *lines, "", LFTP_CPU, ""]


LFTP_CPU = ("lftp's CPU figures leave its ssh out: lftp does not wait for "
            "its ssh process, so that process's time never reaches lftp's "
            "rusage (its own process is about sftp's own).")


def markdown(results: BenchResults, plot: str, no_plot: str = "") -> str:
    """Render the whole report as markdown.

    *plot* is the PNG's file name, or "" and *no_plot* says why not.
    """
    m = results.machine
    status = "complete" if results.complete else "INCOMPLETE"
    lines = [
        f"# psftp-shell benchmark ({results.mode})", "",
        f"Run {results.started}, took {clock(results.seconds)}, {status}.",
        "",
        f"- Machine: {m.get('cores')} cores, {m.get('cpu')}; "
        f"{m.get('kernel')}",
        "- Software: " + "; ".join(
            f"{k} {v}" for k, v in m.items()
            if k not in ("cores", "cpu", "kernel")),
        "- Server: a private OpenSSH sshd (internal-sftp) on 127.0.0.1, "
        "on the same cores as the clients and the relay.",
        "- Times are whole-process wall-clock times (start-up and login "
        "included), the median of the runs that succeeded and whose copy "
        "was byte-identical.  MB/s is 10^6 bytes per second.  *vs sftp* "
        "is sftp's median time divided by the client's (above 1: faster). "
        "CPU is user + system time of the client and its children "
        "(sftp counts its ssh); *own process* leaves the children out "
        "(sftp without its ssh, `-S ssh` without its ssh processes).  "
        "*Typed* runs type the command on a pseudo-terminal as soon as "
        f"the prompt shows; *typed after {TYPING_PAUSE:g} s* waits that "
        "long first, as a user typing does, and leaves it out of the "
        "time.  "
        "Peak RSS is the sum of each client "
        "process's high-water mark.",
        "- Clients alternate run by run.  `-n N` is psftp-shell's "
        "connection count, lftp's `pget -n`/`mirror -P`, rclone's "
        "`--multi-thread-streams`/`--transfers`.",
        "",
    ]
    for warning in results.warnings:
        lines += [f"**Warning:** {warning}", ""]
    lines += _targets(results)
    lines += cpu_figures(results)
    lines += _ceiling_table(results)
    lines += ["## Results", ""]
    for result in results.scenarios:
        lines += _scenario_table(result)
    if plot:
        lines += [f"![throughput against connections]({plot})", ""]
    else:
        lines += [f"(No plot: {no_plot or 'nothing to plot'}.)", ""]
    return "\n".join(lines)


def _jsonable(results: BenchResults) -> dict[str, Any]:
    out = dataclasses.asdict(results)
    for entry, result in zip(out["scenarios"], results.scenarios,
                             strict=True):
        entry["title"] = result.scenario.title
        entry["bytes"] = result.scenario.size
        for client_out, client in zip(entry["clients"], result.clients,
                                      strict=True):
            rate = result.rate(client)
            client_out["median_seconds"] = client.median_seconds()
            client_out["mb_per_s"] = rate / 1e6 if rate else None
            client_out["vs_sftp"] = result.speedup(client)
            client_out["cpu_per_gib"] = result.cpu_per_gib(client)
            client_out["peak_rss_kib"] = client.peak_rss_kib()
    return out


def plot(results: BenchResults, path: Path) -> bool:
    """Plot throughput against connections; False without matplotlib."""
    curves = [r for r in results.scenarios if r.scenario.curve]
    if not curves:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(curves), squeeze=False,
                             figsize=(7 * len(curves), 4.5))
    for ax, result in zip(axes[0], curves, strict=True):
        _plot_one(ax, result)
        ceiling = results.ceilings.get(result.scenario.path.key)
        if ceiling is not None:
            ax.axhline(ceiling.many_streams / 1e6, color="grey",
                       linestyle=":", label="relay alone (raw TCP)")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return True


def _plot_one(ax: Any, result: ScenarioResult) -> None:
    scenario = result.scenario
    xs = list(scenario.conns)
    kinds = dict.fromkeys(c.kind for c in result.clients)
    for kind in kinds:
        points = [(c.conns, result.rate(c)) for c in result.clients
                  if c.kind == kind]
        good = [(n, r / 1e6) for n, r in points if r]
        if kind == "sftp":
            if good:
                ax.plot([xs[0], xs[-1]], [good[0][1]] * 2, "--",
                        label="sftp (one connection)")
            continue
        name = "psftp-shell -S ssh" if kind == SSH_TRANSPORT else kind
        if good:
            ax.plot([n for n, _ in good], [r for _, r in good], "o-",
                    label=name)
        else:
            ax.plot([], [], "x", label=f"{name} (failed)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([str(n) for n in xs])
    ax.set_xlabel("connections (-n)")
    ax.set_ylabel("MB/s (whole-process time)")
    ax.set_title(scenario.title)
    ax.grid(True, alpha=0.3)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write(results: BenchResults, out_dir: Path,
          name: str = "latest") -> Path:
    """Write ``<name>.md``, ``.json`` and ``.png``; return the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    tmp_png = out_dir / f"{name}.png.tmp"
    plotted = False
    why = "nothing to plot"
    if not _have_matplotlib():
        why = ("matplotlib is not installed "
               "(`pip install -e '.[bench]'`)")
    else:
        try:
            plotted = plot(results, tmp_png)
        except Exception as exc:  # noqa: BLE001 - not worth a crash
            why = f"plotting failed: {exc}"
    if plotted:
        tmp_png.replace(png)
    else:
        print(f"bench: no plot: {why}", file=sys.stderr)
    _write(out_dir / f"{name}.json",
           json.dumps(_jsonable(results), indent=1) + "\n")
    md = out_dir / f"{name}.md"
    _write(md, markdown(results, png.name if plotted else "",
                        "" if plotted else why))
    return md
