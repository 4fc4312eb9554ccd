"""The benchmark's peak-memory figure (:class:`bench.runner.MemorySampler`)
counts each program once: a child between fork and exec shows its
parent's high-water mark."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.runner import MemorySampler

BIG = 64 << 20
SCRIPT = """
import os, sys, time
big = bytearray(os.urandom(1 << 20)) * {mib}     # touched: resident
print("ready", flush=True)
pid = os.fork()
if pid == 0:
    if sys.argv[1] == "exec":
        os.execv("/bin/sleep", ["sleep", "1"])
    time.sleep(1)
    os._exit(0)
os.waitpid(pid, 0)
"""


def _sampled(mode: str) -> tuple[int, dict[int, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(mib=BIG >> 20), mode],
        stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    sampler = MemorySampler(proc.pid, interval=0.02)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        sampler.sample()
        time.sleep(0.02)
    proc.wait()
    return sampler.stop(), dict(sampler.peaks)


def test_a_forked_child_is_not_counted_again() -> None:
    total, peaks = _sampled("fork")
    assert total >= BIG >> 10                    # the parent itself
    assert total < 1.5 * (BIG >> 10)             # not twice
    assert len(peaks) == 1


def test_a_child_running_another_program_is_counted() -> None:
    total, peaks = _sampled("exec")
    assert BIG >> 10 <= total < 1.5 * (BIG >> 10)
    assert len(peaks) == 2                       # the parent and sleep
    assert min(peaks.values()) < 16 << 10        # sleep's own
