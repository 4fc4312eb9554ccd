"""What the benchmark measures: network paths, scenarios and the plans.

``quick`` (``make bench``) is a subset that fits in a few minutes on two
cores; ``full`` (``make bench-full``) covers every scenario, including
the figures the transfer engine is judged by.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import clients, data
from bench.clients import GET, GET_R, PROMPT, PUT, PUT_R, Client

MIB = 1 << 20
KIB = 1 << 10


@dataclass(frozen=True)
class NetPath:
    """A network path: plain loopback, or the relay's delay and rate."""

    key: str
    rtt_ms: float = 0.0
    rate_mbit: float = 0.0

    @property
    def relayed(self) -> bool:
        """Whether the path goes through the link-emulating relay."""
        return self.rtt_ms > 0 or self.rate_mbit > 0

    @property
    def title(self) -> str:
        """A short description, e.g. ``100 ms RTT, 1 Gbit/s``."""
        if not self.relayed:
            return "loopback"
        rate = (f"{self.rate_mbit / 1000:g} Gbit/s"
                if self.rate_mbit >= 1000 else f"{self.rate_mbit:g} Mbit/s")
        return f"{self.rtt_ms:g} ms RTT, {rate}"


LOOPBACK = NetPath("loopback")
RTT20 = NetPath("rtt20", 20, 1000)
RTT50 = NetPath("rtt50", 50, 1000)
RTT100 = NetPath("rtt100", 100, 1000)


@dataclass(frozen=True)
class Scenario:
    """One transfer on one path, repeated *runs* times per client.

    A big file has *mib* MiB; a tree has *files* files of *kib* KiB.
    *conns* are the connection counts tried for the parallel clients;
    *sconns* those tried for psftp-shell over ``-S ssh``;
    *curve* marks the scenario plotted as throughput against connections;
    *target* names the engine figure the scenario provides, if any, and
    *target_n* the psftp-shell connection count that figure is about;
    *cpu_figures* marks the scenarios the CPU-per-GiB targets are read
    from (:func:`cpu_plan`).
    A *mixed* tree has *files* files of 0.1 to 4 KB in 20 directories
    (:func:`bench.data.mixed_tree`); *typed* are the connection counts
    for which psftp-shell also runs with the command typed at its prompt
    on a terminal, so that its live view draws (and once more with the
    view turned off first, which tells the view's cost from the
    interactive session's).
    """

    key: str
    op: str
    path: NetPath
    mib: int = 0
    files: int = 0
    kib: int = 16
    conns: tuple[int, ...] = (1,)
    sconns: tuple[int, ...] = ()
    runs: int = 3
    curve: bool = False
    target: str = ""
    target_n: int = 0
    cpu_figures: bool = False
    mixed: bool = False
    typed: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        """The bytes one run moves (0 for the prompt)."""
        if self.mixed:
            return sum(data.mixed_sizes(self.files))
        return self.mib * MIB + self.files * self.kib * KIB

    @property
    def title(self) -> str:
        """What the report calls it, e.g. ``get 256 MiB, loopback``."""
        if self.op == PROMPT:
            what = "time to first prompt"
        elif self.mixed:
            what = f"{self.op} {self.files} × 0.1–4 KB"
        elif self.files:
            what = f"{self.op} {self.files} × {self.kib} KiB"
        else:
            what = f"{self.op} {_size_text(self.mib)}"
        return f"{what}, {self.path.title}"

    @property
    def timeout(self) -> float:
        """Seconds after which one run is killed and counted as failed."""
        if self.op == PROMPT:
            return 60.0
        return 120.0 + self.files * 1.0 + self.mib * MIB / 4e6


def _size_text(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib >= 1024 and mib % 1024 == 0 \
        else f"{mib} MiB"


def small_files(runs: int) -> list[Scenario]:
    """2,000 files of 0.1-4 KB on loopback, each way: the per-file cost
    (-n 1 against sftp, -n 8 against sftp), and the views' (typed on a
    terminal against the same in batch: sftp's meter at -n 1, the live
    view at -n 8, also typed a second after the prompt shows; sftp typed
    too)."""
    return [
        Scenario("loopback-get-r-small", GET_R, LOOPBACK, files=2000,
                 mixed=True, conns=(1, 8), typed=(1, 8), runs=runs,
                 target="get -r 2,000 small files -n 8, loopback",
                 target_n=8),
        Scenario("loopback-put-r-small", PUT_R, LOOPBACK, files=2000,
                 mixed=True, conns=(1, 8), typed=(1, 8), runs=runs,
                 target="put -r 2,000 small files -n 8, loopback",
                 target_n=8),
    ]


def quick_plan(runs: int = 3) -> list[Scenario]:
    """The ``make bench`` subset: a few minutes on two cores."""
    return [
        Scenario("loopback-get", GET, LOOPBACK, mib=256, conns=(1, 4),
                 sconns=(4,), runs=runs,
                 target="256 MiB get -n 1 vs sftp, loopback",
                 target_n=1),
        Scenario("rtt20-get", GET, RTT20, mib=128, conns=(1, 4, 8),
                 sconns=(8,), runs=runs, curve=True,
                 target="128 MiB get -n 8 vs sftp, 20 ms", target_n=8),
        Scenario("rtt50-get-r", GET_R, RTT50, files=40, conns=(1, 8),
                 runs=runs),
        Scenario("rtt50-put-r", PUT_R, RTT50, files=40, conns=(1, 8),
                 runs=runs),
        *small_files(runs),
    ]


def full_plan(runs: int = 3) -> list[Scenario]:
    """Every scenario, including the transfer engine's figures."""
    curve = (1, 2, 4, 8, 16)
    return [
        Scenario("loopback-get", GET, LOOPBACK, mib=512, conns=(1, 8),
                 sconns=(8,), runs=runs,
                 target="512 MiB get -n 1 vs sftp, loopback",
                 target_n=1),
        Scenario("loopback-put", PUT, LOOPBACK, mib=512, conns=(1, 8),
                 runs=runs),
        Scenario("rtt20-get", GET, RTT20, mib=256, conns=(1, 8),
                 runs=runs),
        Scenario("rtt20-put", PUT, RTT20, mib=256, conns=(1, 8),
                 runs=runs),
        Scenario("rtt100-get", GET, RTT100, mib=256, conns=curve,
                 sconns=(8,), runs=runs, curve=True,
                 target="256 MiB get -n 8 vs sftp, 100 ms",
                 target_n=8),
        Scenario("rtt100-put", PUT, RTT100, mib=256, conns=(1, 4, 8),
                 sconns=(8,), runs=runs,
                 target="256 MiB put -n 8 vs sftp, 100 ms",
                 target_n=8),
        Scenario("rtt50-get-r", GET_R, RTT50, files=300, conns=(1, 8),
                 runs=runs, target="get -r 300 × 16 KiB -n 8, 50 ms",
                 target_n=8),
        Scenario("rtt50-put-r", PUT_R, RTT50, files=300, conns=(1, 8),
                 runs=runs, target="put -r 300 × 16 KiB -n 8, 50 ms",
                 target_n=8),
        Scenario("rtt100-prompt", PROMPT, RTT100, conns=(1, 8),
                 runs=runs, target="time to first prompt -n 8, 100 ms",
                 target_n=8),
        Scenario("loopback-get-1g", GET, LOOPBACK, mib=1024, conns=(16,),
                 runs=runs, target="peak memory, 1 GiB get -n 16",
                 target_n=16),
        *small_files(runs),
    ]


def cpu_plan(runs: int = 5) -> list[Scenario]:
    """CPU per GiB on loopback, every client in one run (``make
    bench-cpu``): 512 MiB each way at 1 and 8 streams, both transports."""
    return [
        Scenario(f"cpu-{op}", op, LOOPBACK, mib=512, conns=(1, 8),
                 sconns=(1, 8), runs=runs, cpu_figures=True)
        for op in (GET, PUT)]


def plan(mode: str, runs: int | None = None) -> list[Scenario]:
    """Return the scenarios of *mode* (``quick``, ``full`` or ``cpu``)."""
    if mode == "cpu":
        return cpu_plan(runs or 5)
    if mode == "quick":
        return quick_plan(runs or 3)
    if mode == "full":
        return full_plan(runs or 3)
    raise ValueError(f"unknown mode {mode!r}")


def scenario_clients(scenario: Scenario,
                     optional: tuple[str, ...] = ("lftp", "rclone")
                     ) -> list[Client]:
    """The clients a scenario runs, in the order they alternate.

    ``sftp`` always comes first (it is the baseline), then psftp-shell for
    every connection count, then the *optional* clients that are
    installed.  Clients that cannot parallelise a single upload (lftp,
    rclone over SFTP) run it once, with one connection.
    """
    chosen = [Client("sftp")]
    chosen += [Client("psftp-shell", n) for n in scenario.conns]
    chosen += [Client(clients.SSH_TRANSPORT, n) for n in scenario.sconns]
    if scenario.typed:
        chosen.append(Client(clients.SFTP_TYPED))
    for n in scenario.typed:
        chosen += [Client(clients.TYPED, n), Client(clients.TYPED_OFF, n)]
        if n > 1:       # its streams open while the user types
            chosen.append(Client(clients.TYPED_PACED, n))
    for kind in optional:
        if not clients.installed(kind):
            continue
        counts = (1,) if scenario.op == PUT else scenario.conns
        chosen += [c for c in (Client(kind, n) for n in counts)
                   if c.supports(scenario.op)]
    return chosen
