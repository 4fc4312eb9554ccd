"""A randomized fault campaign: every transfer ends (issue 15).

Each trial is drawn from a seed: ``-n`` 2 to 16, ``get`` or ``put``,
one file of a few MiB or a tree of small files, and a fault plan for the
connections psftp-shell makes through a :class:`~tests.faultrelay
.FaultRelay` in front of the private sshd: close, reset or stall
("silent") after K bytes in either direction.  Some trials fault every
stream, some the control connection (number 0), some the replacements
(numbers past ``-n``), and some kill sshd's session processes.  The
trial runs psftp-shell as a user would, with ``-o ServerAliveInterval=1
-o ServerAliveCountMax=2 -o ConnectTimeout=2``, and must:

- end within its bound (:func:`bound`, from those settings);
- finish with every file identical, or fail with nothing wrong under a
  final name (each final file absent or identical);
- after a failure, resume (``reget``/``reput``, ``-r`` for trees) with
  the faults gone, to identical files, moving less than the whole when
  the failed run kept anything.  A single file's ``reput`` may instead
  be refused as sftp's is (``destination file same size or larger``)
  when the failed run had already put the whole file in place and only
  the last answer was lost (the connection died after the rename was
  done): that counts as no problem only if the file is identical.

``python -m tests.campaign --trials 300 --seed 1`` runs a campaign and
prints its figures; a failed trial prints its seed and plan, and
``--only SEED:TRIAL`` runs that one trial again.  The CI sample is
:mod:`tests.test_campaign`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.filecopy import journal
from tests.faultrelay import DOWN, UP, FaultRelay, Rule, relay_config

KIB = 1 << 10
MIB = 1 << 20
ALIVE_INTERVAL = 1
ALIVE_COUNT = 2
CONNECT_TIMEOUT = 2
SETTINGS = ["-o", f"ServerAliveInterval={ALIVE_INTERVAL}",
            "-o", f"ServerAliveCountMax={ALIVE_COUNT}",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
RESUME_BOUND = 30 + ALIVE_INTERVAL * (ALIVE_COUNT + 1) + CONNECT_TIMEOUT
"""Seconds a resume with no faults may take."""
DUMP_HOOK = str(Path(__file__).parent / "dumphook")
MODES = ("some", "all", "control", "replacements", "kill")
ACTIONS = ("close", "reset", "silent")


@dataclass
class Fault:
    """One connection's fault: *action* once *after* bytes went *way*."""

    index: int
    action: str
    way: str
    after: int

    def rule(self) -> Rule:
        """The relay's rule for this fault."""
        return Rule(self.index, after=self.after, direction=self.way,
                    action=self.action)


@dataclass
class Plan:
    """One trial, all drawn from (*seed*, *trial*)."""

    seed: int
    trial: int
    streams: int
    direction: str              # get or put
    shape: str                  # file or tree
    sizes: list[int]
    mode: str
    faults: list[Fault] = field(default_factory=list)
    kill_at: int | None = None  # bytes relayed, with mode "kill"

    @property
    def total(self) -> int:
        """The bytes of the source, all files together."""
        return sum(self.sizes)

    def describe(self) -> str:
        """The plan, to reproduce a failure by hand."""
        return json.dumps(asdict(self))


def _after(rng: random.Random, plan_total: int, streams: int,
           data_way: bool, index: int) -> int:
    """A byte count for a fault: at login, or somewhere mid-transfer
    (requests and acknowledgements, against the data, are few bytes)."""
    if rng.random() < 0.25:
        return rng.randrange(0, 12 * KIB)       # handshake, login, open
    if not data_way:
        return rng.randrange(12 * KIB, 20 * KIB)
    if index == 0 and streams > 1:  # the control: little data of its own
        return rng.randrange(12 * KIB, 64 * KIB)
    return rng.randrange(12 * KIB, max(13 * KIB,
                                        2 * plan_total // streams))


def make_plan(seed: int, trial: int, streams: int | None = None) -> Plan:
    """Draw trial *trial* of the campaign of *seed* (at ``-n`` *streams*
    if given: at 1, the control connection carries the files and its
    faults)."""
    rng = random.Random(f"{seed}:{trial}")
    drawn = rng.randint(2, 16)     # drawn anyway: the rest stays the seed's
    streams = streams or drawn
    shape = rng.choice(("file", "file", "tree"))
    if shape == "file":
        sizes = [rng.randrange(1 * MIB, 6 * MIB)]
    else:
        sizes = [rng.randrange(0, 256 * KIB)
                 for _ in range(rng.randint(5, 40))]
    plan = Plan(seed, trial, streams, rng.choice(("get", "put")), shape,
                sizes, rng.choice(MODES))
    if plan.mode == "kill":
        plan.kill_at = rng.randrange(0, plan.total + plan.total // 8)
    pool = range(1, streams + 1) if streams > 1 else range(0, 1)
    if plan.mode == "all":
        targets = list(pool)
    elif plan.mode == "control":
        targets = sorted({0, *rng.sample(pool, rng.randint(0, streams))})
    elif plan.mode == "replacements":
        targets = list(pool) + list(range(streams + 1, 3 * streams + 1))
    elif plan.mode == "some":
        targets = rng.sample(pool, rng.randint(1, streams))
    else:
        targets = rng.sample(pool, min(len(pool), rng.randint(0, 2)))
    data_way = DOWN if plan.direction == "get" else UP
    for index in sorted(targets):
        way = rng.choice((UP, DOWN))
        plan.faults.append(Fault(index, rng.choice(ACTIONS), way, _after(
            rng, plan.total, streams, way == data_way, index)))
    return plan


def bound(plan: Plan) -> float:
    """Seconds the trial may take: its settings make every fault cost at
    most one silent peer found (ServerAliveInterval x (CountMax + 1))
    and one connection attempt (ConnectTimeout); plus time to move the
    data on a busy machine."""
    alive = ALIVE_INTERVAL * (ALIVE_COUNT + 1)
    faults = len(plan.faults) + (1 if plan.kill_at is not None else 0)
    return 30 + faults * (alive + CONNECT_TIMEOUT)


@dataclass
class Outcome:
    """What one trial did."""

    plan: Plan
    status: int = 0
    err: str = ""
    seconds: float = 0.0
    fired: int = 0
    hang: bool = False
    wrong: list[str] = field(default_factory=list)
    resumed: bool = False       # a failure resumed to identical files
    afresh: bool = False        # nothing was left: copied again instead
    whole: bool = False         # the failed run had put the whole file
    #                             in place (its answer was lost): the
    #                             reput refused it as sftp's does
    resume_moved: int = 0
    kept: int = 0               # bytes the failed run left for resume
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the first run failed (and a resume was needed)."""
        return self.status != 0


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Bench:
    """The sshd, a relay and scratch directories for the trials."""

    def __init__(self, sshd: PrivateSSHD, workdir: Path) -> None:
        self.sshd = sshd
        self.workdir = workdir

    async def trial(self, plan: Plan) -> Outcome:
        """Run *plan*'s trial, then its resume if it failed."""
        relay = FaultRelay(self.sshd.port)
        await relay.start()
        tmp = Path(tempfile.mkdtemp(prefix=f"t{plan.trial}-",
                                    dir=self.workdir))
        remote = Path(tempfile.mkdtemp(prefix="campaign-",
                                       dir=self.sshd.root))
        try:
            return await Trial(plan, self.sshd, relay, tmp, remote).run()
        finally:
            await relay.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(remote, ignore_errors=True)


class Trial:
    """One trial's files, runs and checks."""

    def __init__(self, plan: Plan, sshd: PrivateSSHD, relay: FaultRelay,
                 tmp: Path, remote: Path) -> None:
        self.plan = plan
        self.sshd = sshd
        self.relay = relay
        self.tmp = tmp
        self.remote = remote
        self.local = tmp / "local"
        self.local.mkdir()
        self.config = relay_config(sshd.ssh_config, sshd.known_hosts,
                                   sshd.port, relay.port, tmp)
        self.out = Outcome(plan)
        names = ["f"] if plan.shape == "file" else [
            f"d{i % 3}/f{i}" for i in range(len(plan.sizes))]
        self.files = {name: _payload(size, plan.seed * 1000 + i)
                      for i, (name, size) in enumerate(zip(
                          names, plan.sizes, strict=True))}

    # ---- sides

    def _source_root(self) -> Path:
        return self.remote if self.plan.direction == "get" else self.local

    def _result_root(self) -> Path:
        """The file copied, or the copy of the tree (made inside an
        existing directory, so that a resume names the same place)."""
        side = self.local if self.plan.direction == "get" else self.remote
        return side / "dst" if self.plan.shape == "file" \
            else side / "dst" / "src"

    def _result(self, name: str) -> Path:
        if self.plan.shape == "file":
            return self._result_root()
        return self._result_root() / name

    def _command(self, again: bool) -> str:
        plan = self.plan
        verb = plan.direction if not again else "re" + plan.direction
        flag = " -r" if plan.shape == "tree" else ""
        src = "src" if plan.shape == "tree" else "src/f"
        if plan.direction == "get":
            return f"{verb}{flag} {self.remote}/{src} dst\n"
        return f"{verb}{flag} {src} {self.remote}/dst\n"

    def _write_source(self) -> None:
        if self.plan.shape == "tree":
            self._result_root().parent.mkdir()
        root = self._source_root() / "src"
        for name, data in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    # ---- running

    async def _run(self, command: str, limit: float, kill: bool = False
                   ) -> tuple[int, str, float] | None:
        """Run psftp-shell on *command*; None if it did not end in time."""
        env = {**os.environ, "XDG_STATE_HOME": str(self.tmp / "state"),
               "PYTHONPATH": os.pathsep.join([DUMP_HOOK, *sys.path])}
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "psftp_shell", "-F", str(self.config),
            "-n", str(self.plan.streams), *SETTINGS, "-b", "-", HOST_ALIAS,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.local, env=env)
        killer = None
        if kill and self.plan.kill_at is not None:
            killer = asyncio.ensure_future(self._kill_sessions())
        try:
            _, err = await asyncio.wait_for(
                proc.communicate(command.encode()), limit)
        except TimeoutError:
            proc.send_signal(signal.SIGUSR1)    # where it waits
            await asyncio.sleep(1)
            proc.kill()
            _, err = await proc.communicate()
            self.out.err = err.decode(errors="replace")
            return None
        finally:
            if killer is not None:
                killer.cancel()
        assert proc.returncode is not None
        return proc.returncode, err.decode(errors="replace"), \
            time.monotonic() - started

    async def _kill_sessions(self) -> None:
        """Kill sshd's session processes (not the listener) once the
        relay has carried the plan's number of bytes."""
        assert self.plan.kill_at is not None
        while self.relay.moved(None, UP) + self.relay.moved(None, DOWN) \
                < self.plan.kill_at:
            await asyncio.sleep(0.01)
        assert self.sshd.proc is not None
        for pid in _descendants(self.sshd.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def run(self) -> Outcome:
        """The trial: faulty run, checks, resume, checks."""
        plan, out = self.plan, self.out
        self._write_source()
        self.relay.apply([f.rule() for f in plan.faults])
        limit = bound(plan)
        ran = await self._run(self._command(False), limit, kill=True)
        out.fired = sum(r.fired for r in self.relay.rules)
        if ran is None:
            out.hang = True
            out.problems.append(f"no end within {limit:.0f} s")
            return out
        out.status, out.err, out.seconds = ran
        if "Traceback" in out.err:
            out.problems.append("a traceback")
        out.wrong = self._wrong(complete=out.status == 0)
        if out.status == 0 or out.wrong:
            return out
        await self._resume()
        return out

    async def _resume(self) -> None:
        out = self.out
        out.kept = self._kept()
        # The connection may die after the last step was done and before
        # its answer came (a rename, for a put): the final names then
        # already hold their source's bytes.
        already = not self._wrong(complete=True)
        # nothing to resume from (no journal, no file complete: the
        # fault came before any data): copy afresh
        out.afresh = not out.kept
        self.relay.apply([])
        way = DOWN if self.plan.direction == "get" else UP
        before = self.relay.moved(None, way)
        ran = await self._run(self._command(not out.afresh), RESUME_BOUND)
        if ran is None:
            out.hang = True
            out.problems.append("the resume did not end")
            return
        status, err, _ = ran
        out.resume_moved = self.relay.moved(None, way) - before
        wrong = self._wrong(complete=True)
        if already and not wrong and self._refused_as_sftp(status, err):
            out.whole = True
            return
        if status != 0 or wrong:
            there = sorted(str(p.relative_to(self._result_root().parent))
                           for p in self._result_root().parent.rglob("*"))
            out.problems.append(f"resume failed: {status} {err!r} {wrong}"
                                f" (there: {there})")
            return
        out.resumed = True
        # (the bytes moved count SSH's own: logins, packet headers)
        if out.kept >= self._whole() // 4 and \
                out.resume_moved >= self._whole():
            out.problems.append(
                f"resume moved {out.resume_moved} of {self._whole()} "
                f"with {out.kept} kept")

    def _refused_as_sftp(self, status: int, err: str) -> bool:
        """Whether the resume was refused as sftp's ``reput`` refuses a
        target as large as its source (a single file: in a tree, a
        complete file is skipped)."""
        return self.plan.direction == "put" and self.plan.shape != "tree" \
            and status == 1 and "destination file same size or larger" in err

    # ---- checks

    def _wrong(self, complete: bool) -> list[str]:
        """Final names holding anything but their source's bytes (or
        missing, once the copy is to be complete)."""
        wrong = []
        for name, data in self.files.items():
            path = self._result(name)
            try:
                got = path.read_bytes()
            except FileNotFoundError:
                if complete:
                    wrong.append(f"{name}: missing")
                continue
            except OSError as exc:
                wrong.append(f"{name}: {exc}")
                continue
            if got != data:
                wrong.append(f"{name}: {len(got)} bytes, not its "
                             f"{len(data)}")
        return wrong

    def _kept(self) -> int:
        """Bytes the failed run left for a resume: journals' ranges and
        files already complete."""
        state = self.tmp / "state" / "psftp-shell" / "journal"
        journals = list(state.iterdir()) if state.is_dir() else []
        kept = 0
        for path in journals:
            found = journal.load(str(path))
            kept += found.done.total if found is not None else 0
        for name, data in self.files.items():
            path = self._result(name)
            if data and path.is_file() and path.read_bytes() == data:
                kept += len(data)
        return kept

    def _whole(self) -> int:
        return self.plan.total


def _descendants(pid: int) -> list[int]:
    """The processes below *pid* (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


@dataclass
class Figures:
    """A campaign's totals."""

    trials: int = 0
    faults: int = 0             # faults planned
    fired: int = 0              # faults the relay injected
    kills: int = 0
    hangs: int = 0
    wrong: int = 0
    failed: int = 0             # trials whose first run failed
    resumed: int = 0            # of those, resumed to identical files
    resumed_less: int = 0       # ... moving less than the whole
    afresh: int = 0             # ... copied afresh: nothing was left
    whole: int = 0              # ... already whole: the reput refused
    problems: int = 0
    seconds: float = 0.0

    def add(self, o: Outcome) -> None:
        """Count one trial."""
        self.trials += 1
        self.faults += len(o.plan.faults)
        self.fired += o.fired
        self.kills += o.plan.kill_at is not None
        self.hangs += o.hang
        self.wrong += bool(o.wrong)
        self.failed += o.failed
        self.resumed += o.resumed
        self.resumed_less += o.resumed and \
            o.resume_moved < o.plan.total
        self.afresh += o.resumed and o.afresh
        self.whole += o.whole
        self.problems += bool(o.problems or o.wrong)
        self.seconds += o.seconds

    def summary(self) -> str:
        """One paragraph of figures."""
        return (f"{self.trials} trials, {self.fired} faults injected "
                f"({self.faults} planned) and {self.kills} server kills; "
                f"{self.hangs} hangs, {self.wrong} with a wrong file; "
                f"{self.failed} failed and {self.resumed} of them resumed "
                f"to identical files ({self.resumed_less} moving less than "
                f"the whole, {self.afresh} copied afresh as the fault came "
                f"before any data; {self.whole} already whole, the answer "
                f"to the last step lost, and refused by reput as by sftp); "
                f"{self.problems} trials with a problem")


def report(o: Outcome) -> str:
    """A failed trial: its seed, plan and what went wrong."""
    return (f"trial {o.plan.seed}:{o.plan.trial} FAILED: "
            f"{'; '.join(o.problems + o.wrong)}\n"
            f"  status {o.status} after {o.seconds:.1f} s, "
            f"stderr {o.err[-8000:]}\n  plan {o.plan.describe()}")


async def campaign(sshd: PrivateSSHD, workdir: Path, seed: int,
                   trials: list[int], log: object = None,
                   reports: list[str] | None = None,
                   streams: int | None = None) -> Figures:
    """Run *trials* of campaign *seed* (every one at ``-n`` *streams* if
    given); print each problem as it comes (and add it to *reports*)."""
    bench = Bench(sshd, workdir)
    figures = Figures()
    for number in trials:
        outcome = await bench.trial(make_plan(seed, number, streams))
        figures.add(outcome)
        if outcome.problems or outcome.wrong:
            print(report(outcome), flush=True)
            if reports is not None:
                reports.append(report(outcome))
        if log is not None:
            print(f"{number}: {outcome.plan.mode} n={outcome.plan.streams} "
                  f"{outcome.plan.direction} {outcome.plan.shape} "
                  f"status={outcome.status} {outcome.seconds:.1f}s "
                  f"fired={outcome.fired} kept={outcome.kept} "
                  f"resumed={outcome.resumed} afresh={outcome.afresh} "
                  f"whole={outcome.whole} "
                  f"moved={outcome.resume_moved}",
                  flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.campaign``: run a campaign, print its figures."""
    parser = argparse.ArgumentParser(prog="python -m tests.campaign")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="SEED:TRIAL, one trial again")
    parser.add_argument("-v", action="store_true", help="a line per trial")
    parser.add_argument("--streams", type=int, default=None,
                        help="every trial at this -n (else 2 to 16)")
    args = parser.parse_args(argv)
    seed, numbers = args.seed, list(range(args.trials))
    if args.only:
        seed_text, trial_text = args.only.split(":")
        seed, numbers = int(seed_text), [int(trial_text)]
    with tempfile.TemporaryDirectory(prefix="campaign-") as scratch:
        work = Path(scratch)
        sshd = PrivateSSHD(work / "sshd")
        sshd.start()
        try:
            figures = asyncio.run(campaign(sshd, work, seed, numbers,
                                           log=True if args.v else None,
                                           streams=args.streams))
        finally:
            sshd.stop()
    print(f"seed {seed}: {figures.summary()}")
    return 0 if figures.problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
