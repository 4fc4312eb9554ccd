"""The benchmark's results: every run of every client, and their medians."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.probe import Ceiling
from bench.runner import RunResult
from bench.scenarios import Scenario

GIB = 1 << 30


@dataclass
class ClientRuns:
    """All runs of one client in one scenario."""

    label: str
    kind: str
    conns: int
    runs: list[RunResult] = field(default_factory=list)

    @property
    def good(self) -> list[RunResult]:
        """The runs that succeeded and were verified."""
        return [r for r in self.runs if r.ok]

    @property
    def error(self) -> str:
        """The first failure's message, or ""."""
        return next((r.error for r in self.runs if not r.ok), "")

    @property
    def failed(self) -> bool:
        """Whether any run failed (the client is then not run again)."""
        return any(not r.ok for r in self.runs)

    def median_seconds(self) -> float | None:
        """The median time of the good runs, or None."""
        good = self.good
        return statistics.median(r.seconds for r in good) if good else None

    def median_cpu(self) -> float | None:
        """The median CPU seconds of the good runs, or None."""
        good = self.good
        return statistics.median(r.cpu for r in good) if good else None

    def median_own_cpu(self) -> float | None:
        """The median CPU seconds of the client's own process alone
        (without its ssh), or None."""
        own = [r.own_cpu for r in self.good if r.own_cpu is not None]
        return statistics.median(own) if own else None

    def peak_rss_kib(self) -> int | None:
        """The largest peak memory over the good runs, or None."""
        good = self.good
        return max(r.maxrss_kib for r in good) if good else None


@dataclass
class ScenarioResult:
    """One scenario's clients, with the sftp baseline first."""

    scenario: Scenario
    clients: list[ClientRuns] = field(default_factory=list)
    creation_us: float | None = None    # a local file's creation, probed
    request_us: float | None = None     # one of sftp's requests, probed

    def baseline(self) -> ClientRuns | None:
        """The sftp runs, if any."""
        return next((c for c in self.clients if c.kind == "sftp"), None)

    def rate(self, client: ClientRuns) -> float | None:
        """Throughput in bytes per second, whole-process time."""
        seconds = client.median_seconds()
        if seconds is None or not self.scenario.size:
            return None
        return self.scenario.size / seconds

    def speedup(self, client: ClientRuns) -> float | None:
        """sftp's median time divided by *client*'s (above 1: faster)."""
        base = self.baseline()
        mine = client.median_seconds()
        theirs = base.median_seconds() if base else None
        if mine is None or theirs is None or mine <= 0:
            return None
        return theirs / mine

    def cpu_per_gib(self, client: ClientRuns) -> float | None:
        """Client CPU seconds per GiB moved, for big-file scenarios."""
        return self._per_gib(client.median_cpu())

    def own_cpu_per_gib(self, client: ClientRuns) -> float | None:
        """The client's own process's CPU seconds per GiB (big files)."""
        return self._per_gib(client.median_own_cpu())

    def _per_gib(self, cpu: float | None) -> float | None:
        if cpu is None or self.scenario.files or not self.scenario.mib:
            return None
        return cpu / (self.scenario.size / GIB)


@dataclass
class BenchResults:
    """A whole benchmark run."""

    mode: str
    started: str
    machine: dict[str, str]
    ceilings: dict[str, Ceiling] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    complete: bool = False
