"""Run a benchmark plan: sshd, relays, clients in turn, checked results.

One private OpenSSH sshd serves the data directory.  Each emulated path
gets one relay process in front of it (started on first use, measured on
its own beforehand) and an ssh_config whose ``psftp-test`` host points at
the relay.  Clients alternate run by run (sftp, psftp-shell -n 1, ...,
sftp, ...), each copy is compared with its source before the run counts,
and the destination is cleared before the next run.

A copied tree is moved aside rather than removed until the plan ends.
On ext4 without a journal (the CI machines' file system), creating a file
soon after thousands were removed costs about 0.25 ms of kernel time per
file (the allocator steps over every inode freed in the last minute or
more, ``recently_deleted`` in fs/ext4/ialloc.c): removing each run's
2,000 copies made every later run of every client slower, sftp's included,
and measured the file system's history rather than the clients.  Before
each tree scenario the harness times the creation of a few hundred files
and reports it with the scenario; on loopback, also what one SFTP request
costs sftp (its time for many small files is made of them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import data, probe
from bench.clients import (
    GET,
    GET_R,
    PROMPT,
    PWD,
    TYPED_KINDS,
    TYPED_PACED,
    TYPING_PAUSE,
    Client,
    Op,
    Target,
    typed_lines,
)
from bench.clients import command as client_command
from bench.progress import Progress
from bench.results import BenchResults, ClientRuns, ScenarioResult
from bench.runner import RunResult, run_timed, time_to_prompt
from bench.scenarios import NetPath, Scenario, scenario_clients
from bench.terminal import run_typed
from psftp_shell.devserver import PrivateSSHD, sshd_available

CEILING_STREAMS = 8
CREATION_PROBE_FILES = 500
SLOW_CREATION_US = 60.0


class BenchBroken(Exception):
    """The benchmark itself failed (sshd, relay), not a client."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


class Harness:
    """Runs scenarios against one private sshd; see the module docstring.

    :param root: the data directory, also the sshd's start directory
    :param workdir: scratch space for keys, configs, batches and logs
    """

    def __init__(self, root: Path, workdir: Path, progress: Progress,
                 results: BenchResults, ceiling_bytes: int) -> None:
        self.root = root
        self.workdir = workdir
        self.progress = progress
        self.results = results
        self.ceiling_bytes = ceiling_bytes
        self.checker = data.Checker()
        self.spent = root / "spent"     # trees moved aside, see _clear
        self.spent_count = 0
        self.sshd: PrivateSSHD | None = None
        self.targets: dict[str, Target] = {}
        self.relays: dict[str, subprocess.Popen[str]] = {}
        self.env = dict(os.environ)
        self.env.pop("SSH_AUTH_SOCK", None)
        # An installed psftp-shell has its bytecode compiled; with this
        # set, a clone would recompile every module at every start.  The
        # warm-up run writes the bytecode.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        if self.env.get("TERM", "dumb") == "dumb":
            self.env["TERM"] = "xterm-256color"
        # The typed runs' command history: the benchmark's own, empty at
        # each start, never the user's (it grew with every run, and
        # prompt_toolkit reads it all at each start).
        self.env["XDG_STATE_HOME"] = str((workdir / "state").absolute())

    # -- set-up -------------------------------------------------------

    def start(self) -> None:
        """Start the private sshd."""
        if not sshd_available():
            raise BenchBroken("no OpenSSH sshd is installed")
        self.sshd = PrivateSSHD(self.workdir / "sshd", root=self.root)
        try:
            self.sshd.start()
        except RuntimeError as exc:
            raise BenchBroken(str(exc)) from exc
        self.known_hosts = self.workdir / "known_hosts"
        self.known_hosts.write_text("")
        self.targets["loopback"] = self._target("loopback", self.sshd.port)

    def stop(self) -> None:
        """Stop every relay and the sshd; remove the copies set aside."""
        for proc in self.relays.values():
            probe.stop_relay(proc)
        self.relays.clear()
        if self.sshd is not None:
            self.sshd.stop()
            self.sshd = None
        data.remove(self.spent)

    def _target(self, key: str, port: int) -> Target:
        """Write an ssh_config and known_hosts entry for *port*."""
        sshd = self.sshd
        assert sshd is not None
        key_type, key_data = Path(
            str(sshd.host_key) + ".pub").read_text().split()[:2]
        with open(self.known_hosts, "a") as out:
            out.write(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
        config = self.workdir / f"ssh_config_{key}"
        config.write_text(
            "Host psftp-test\n"
            "  HostName 127.0.0.1\n"
            f"  Port {port}\n"
            f"  User {sshd.user}\n"
            f"  IdentityFile {sshd.identity}\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n")
        return Target(config, port, sshd.user, sshd.identity,
                      self.known_hosts)

    def measure_ceiling(self, path: NetPath) -> None:
        """Measure the relay alone for *path*; raise if it is broken."""
        self.progress.show(f"relay alone, {path.title}")
        try:
            ceiling = probe.measure_ceiling(
                path.rtt_ms / 2, path.rate_mbit, self.ceiling_bytes,
                CEILING_STREAMS)
        except (OSError, RuntimeError) as exc:
            raise BenchBroken(f"relay probe failed: {exc}") from exc
        self.results.ceilings[path.key] = ceiling
        self.progress.step()
        if ceiling.rtt < 0.9 * path.rtt_ms / 1000:
            raise BenchBroken(
                f"relay round trip {ceiling.rtt * 1000:.1f} ms is below "
                f"the {path.rtt_ms:g} ms asked for")
        rate = path.rate_mbit * 1e6 / 8
        if rate and ceiling.many_streams < 0.8 * rate:
            self.results.warnings.append(
                f"the relay alone carried only "
                f"{ceiling.many_streams / 1e6:.0f} MB/s on {path.title}: "
                "figures near that are limited by the relay")

    def target(self, path: NetPath) -> Target:
        """Return the target for *path*, starting its relay if needed."""
        self._check_alive()
        if path.key in self.targets:
            return self.targets[path.key]
        sshd = self.sshd
        assert sshd is not None
        try:
            proc, port = probe.start_relay(sshd.port, path.rtt_ms / 2,
                                           path.rate_mbit)
        except RuntimeError as exc:
            raise BenchBroken(str(exc)) from exc
        self.relays[path.key] = proc
        self.targets[path.key] = self._target(path.key, port)
        return self.targets[path.key]

    def _check_alive(self) -> None:
        if self.sshd is None or self.sshd.proc is None or \
                self.sshd.proc.poll() is not None:
            raise BenchBroken("sshd has died")
        for key, proc in self.relays.items():
            if proc.poll() is not None:
                raise BenchBroken(f"the {key} relay has died")

    def prepare_data(self, scenarios: list[Scenario]) -> None:
        """Generate every data file the scenarios need (once, cached)."""
        for scenario in scenarios:
            if scenario.mib:
                self.progress.show(f"data: {scenario.mib} MiB file")
                data.big_file(self.root, scenario.mib)
            elif scenario.mixed:
                self.progress.show(f"data: {scenario.files} mixed files")
                data.mixed_tree(self.root, scenario.files)
            elif scenario.files:
                self.progress.show(f"data: {scenario.files} small files")
                data.small_tree(self.root, scenario.files, scenario.kib)
        for sub in ("down", "up"):
            (self.root / sub).mkdir(exist_ok=True)

    # -- runs ---------------------------------------------------------

    def _paths(self, scenario: Scenario) -> tuple[Op, Path, Path]:
        """Return the operation, its local source and the copy to check."""
        if scenario.op == PROMPT:
            return Op(PROMPT), Path(), Path()
        if scenario.mixed:
            src = data.mixed_tree(self.root, scenario.files)
            name = "tree"
        elif scenario.files:
            src = data.small_tree(self.root, scenario.files, scenario.kib)
            name = "tree"
        else:
            src = data.big_file(self.root, scenario.mib)
            name = "big.bin"
        rel = str(src.relative_to(self.root))
        if scenario.op in (GET, GET_R):
            copy = self.root / "down" / name
            return Op(scenario.op, rel, str(copy)), src, copy
        copy = self.root / "up" / name
        return Op(scenario.op, str(src), f"up/{name}"), src, copy

    def run_once(self, scenario: Scenario, client: Client,
                 number: int) -> RunResult:
        """Run *client* once in *scenario*; check and remove its copy."""
        target = self.target(scenario.path)
        op, src, copy = self._paths(scenario)
        logdir = self.workdir / "logs" / _slug(
            f"{scenario.key}-{client.label}-{number}")
        logdir.mkdir(parents=True, exist_ok=True)
        if op.kind != PROMPT:
            self._clear(copy)
        cmd = client_command(client, op, target, logdir / "batch")
        if op.kind == PROMPT:
            result = time_to_prompt(cmd, logdir, scenario.timeout, self.env)
        else:
            if client.kind in TYPED_KINDS:
                pause = TYPING_PAUSE if client.kind == TYPED_PACED else 0.0
                result = run_typed(cmd, typed_lines(client, op), logdir,
                                   scenario.timeout, self.env, pause)
            else:
                result = run_timed(cmd, logdir, scenario.timeout, self.env)
            if result.ok:
                why = self.checker.same(src, copy)
                if why:
                    result.ok = False
                    result.error = f"copy not byte-identical: {why}"
            self._clear(copy)
        self._check_alive()
        return result

    def _clear(self, copy: Path) -> None:
        """Make room for the next copy: remove a file, move a tree aside
        (see the module docstring)."""
        if copy.is_dir() and not copy.is_symlink():
            self.spent.mkdir(exist_ok=True)
            aside = self.spent / str(self.spent_count)
            while aside.exists():       # (a killed run's may be there)
                self.spent_count += 1
                aside = self.spent / str(self.spent_count)
            copy.rename(aside)
        else:
            data.remove(copy)

    def creation_cost(self) -> float:
        """Microseconds the local file system takes to create and fill
        one small file where the copies land (a probe, moved aside)."""
        probe_dir = self.root / "down" / "creation-probe"
        self._clear(probe_dir)
        probe_dir.mkdir()
        start = time.perf_counter()
        for number in range(CREATION_PROBE_FILES):
            fd = os.open(probe_dir / f"f{number}",
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"x" * 1000)
            os.close(fd)
        cost = (time.perf_counter() - start) / CREATION_PROBE_FILES * 1e6
        self._clear(probe_dir)
        return cost

    def request_cost(self) -> float | None:
        """Microseconds one of sftp's requests takes on loopback (see
        :func:`bench.probe.sftp_request_cost`); None if sftp failed."""
        argv = client_command(Client("sftp"), Op(PROMPT),
                              self.targets["loopback"], self.workdir / "-")
        cost = probe.sftp_request_cost(argv, self.workdir, self.env)
        return None if cost is None else cost * 1e6

    def warm_up(self) -> None:
        """Run sftp and psftp-shell once, untimed, to warm the caches."""
        target = self.targets["loopback"]
        logdir = self.workdir / "logs" / "warm-up"
        logdir.mkdir(parents=True, exist_ok=True)
        for client in (Client("sftp"), Client("psftp-shell", 1)):
            self.progress.show(f"warming up {client.label}")
            cmd = client_command(client, Op(PWD), target, logdir / "batch")
            run_timed(cmd, logdir, 60, self.env)

    def run_scenario(self, scenario: Scenario) -> ScenarioResult:
        """Run every client of *scenario*, alternating run by run."""
        if scenario.path.relayed and \
                scenario.path.key not in self.results.ceilings:
            self.measure_ceiling(scenario.path)
        chosen = scenario_clients(scenario)
        result = ScenarioResult(scenario, [
            ClientRuns(c.label, c.kind, c.conns) for c in chosen])
        if scenario.files:
            result.creation_us = self.creation_cost()
            if result.creation_us > SLOW_CREATION_US:
                self.results.warnings.append(
                    f"{scenario.title}: creating a file took "
                    f"{result.creation_us:.0f} us before the runs (files "
                    "removed shortly before slow it down): every "
                    "client's time includes that")
        if scenario.files and not scenario.path.relayed:
            result.request_us = self.request_cost()
        self.results.scenarios.append(result)
        for number in range(1, scenario.runs + 1):
            for client, runs in zip(chosen, result.clients, strict=True):
                if runs.failed:
                    self.progress.step()
                    continue
                self.progress.show(
                    f"{scenario.title} | {client.label} "
                    f"run {number}/{scenario.runs}")
                runs.runs.append(self.run_once(scenario, client, number))
                self.progress.step()
        return result


def steps(scenarios: list[Scenario]) -> int:
    """How many progress steps a plan takes (runs plus relay probes)."""
    relayed = {s.path.key for s in scenarios if s.path.relayed}
    runs = sum(s.runs * len(scenario_clients(s)) for s in scenarios)
    return runs + len(relayed)


def now_text() -> str:
    """The current time, for the report."""
    return datetime.now(UTC).astimezone().strftime(
        "%Y-%m-%d %H:%M:%S %z")


def run_plan(scenarios: list[Scenario], results: BenchResults, root: Path,
             workdir: Path, progress: Progress,
             ceiling_bytes: int) -> None:
    """Run *scenarios* into *results*; raise BenchBroken if the benchmark
    itself fails."""
    start = time.monotonic()
    harness = Harness(root, workdir, progress, results, ceiling_bytes)
    try:
        harness.prepare_data(scenarios)
        for path in dict.fromkeys(s.path for s in scenarios if
                                  s.path.relayed):
            harness.measure_ceiling(path)
        harness.start()
        harness.warm_up()
        for scenario in scenarios:
            harness.run_scenario(scenario)
        results.complete = True
    finally:
        harness.stop()
        results.seconds = time.monotonic() - start
        progress.clear()


def clean_workdir(workdir: Path) -> None:
    """Remove the scratch directory."""
    shutil.rmtree(workdir, ignore_errors=True)
