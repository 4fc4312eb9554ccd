"""Local faults during transfers, compared with what OpenSSH's sftp does.

Every scenario runs psftp-shell at ``-n 1`` and ``-n 4`` (big files are
cut into chunks there) and, where sftp can be put in the same situation,
the real sftp too; the binary is the reference for messages and exit
statuses.  The scenarios: a full disk (a small tmpfs in a private mount
namespace), permission denied (run as ``nobody`` when the tests run as
root), the destination directory removed during ``get -r``, and a source
that shrinks during ``put`` or ``get``.  Slow transfers go through a
throttling relay in front of ``sftp-server`` (``-D``), so that the test
can act while a copy is under way.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from psftp_shell.core.observer import report_failure
from psftp_shell.core.ordered_output import Sequencer
from psftp_shell.core.output import Output
from psftp_shell.engine import chunk_pipeline as chunkpipe
from psftp_shell.engine import getjob
from psftp_shell.engine.transfer_batch import NotedSlot
from psftp_shell.filecopy.copy_context import TEMP_MARK, Flags
from psftp_shell.frontend.progress import Failures, LiveView, SftpMeter
from tests.conftest import require
from tests.test_engine import Recorder
from tests.test_parallel import CHUNK, make_rig

PSFTP = [sys.executable, "-m", "psftp_shell"]
REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
BIG = 5 * MIB
"""Bigger than SHARE_MIN: copied in chunks at ``-n 4``."""
NOBODY = 65534
WAIT = 30.0

RELAY = r"""
import os, subprocess, sys, threading, time
server, rate = sys.argv[1], float(sys.argv[2])
proc = subprocess.Popen([server], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, bufsize=0)

def pump(src, dst, close):
    start, sent = time.monotonic(), 0
    try:
        while data := os.read(src, 16384):
            sent += len(data)
            delay = start + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.write(dst, data)
    except OSError:
        pass
    close()

threading.Thread(target=pump, daemon=True,
                 args=(0, proc.stdin.fileno(), proc.stdin.close)).start()
pump(proc.stdout.fileno(), 1, lambda: None)
proc.wait()
"""
"""A ``-D`` server: sftp-server behind a pipe of *rate* bytes/s each way."""

FILL_DRIVER = r"""
import json, os, subprocess, sys, time
mnt, out, err = sys.argv[1], sys.argv[2], sys.argv[3]
argv = sys.argv[4:]
before = {name: os.path.getsize(os.path.join(mnt, name))
          for name in os.listdir(mnt)}
proc = subprocess.Popen(argv, stdout=open(out, 'wb'),
                        stderr=open(err, 'wb'))
deadline = time.monotonic() + 30
while time.monotonic() < deadline and proc.poll() is None:
    sizes = {name: os.path.getsize(os.path.join(mnt, name))
             for name in os.listdir(mnt)}
    if any(sizes[n] != before.get(n) for n in sizes):
        break
    time.sleep(0.02)
try:
    with open(os.path.join(mnt, 'filler'), 'wb') as f:
        while True:
            f.write(bytes(1 << 16))
            f.flush()
except OSError:
    pass
status = proc.wait()
os.unlink(os.path.join(mnt, 'filler'))
files = {}
for name in os.listdir(mnt):
    with open(os.path.join(mnt, name), 'rb') as f:
        files[name] = f.read().hex() if name == 'b' else len(f.read())
print(json.dumps({'status': status, 'files': files}))
"""
"""Runs a program in a tmpfs, fills the tmpfs once the copy has begun,
and prints what the program left there (run inside the namespace)."""


@dataclass(frozen=True)
class Result:
    """What one program did."""

    status: int
    stdout: bytes
    stderr: bytes


def digest(path: Path) -> str:
    """SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(root: Path) -> list[str]:
    """Temporaries and journals anywhere under *root*."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if TEMP_MARK in p.name)


def random_file(path: Path, size: int) -> Path:
    """*path* filled with *size* random bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def env_for(home: Path) -> dict[str, str]:
    """An environment with its own home and journal directory."""
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"),
               XDG_CONFIG_HOME=str(home / "config"))
    env["PYTHONPATH"] = str(REPO)
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str],
        prefix: list[str] | None = None) -> Result:
    """Run *argv* to completion with no terminal."""
    done = subprocess.run((prefix or []) + argv, cwd=cwd, env=env,
                          capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    return Result(done.returncode, done.stdout, done.stderr)


def programs(sftp_bin: str) -> dict[str, list[str]]:
    """sftp and psftp-shell at -n 1 and -n 4."""
    return {"sftp": [sftp_bin], "n1": PSFTP + ["-n", "1"],
            "n4": PSFTP + ["-n", "4"]}


@pytest.fixture
def relay(tmp_path: Path, sftp_server_bin: str) -> Callable[[int], str]:
    """``-D`` commands for sftp-server behind a throttling pipe."""
    script = tmp_path / "relay.py"
    script.write_text(RELAY)

    def command(rate: int) -> str:
        return f"{sys.executable} {script} {sftp_server_bin} {rate}"
    return command


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes]
             ) -> None:
    """Poll *condition* while *proc* runs; fail the test on timeout."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if proc.poll() is not None:
            pytest.fail("the transfer ended before the test could act")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the transfer")
        time.sleep(0.02)


def act_during(argv: list[str], cwd: Path, env: dict[str, str],
               started: Callable[[], bool],
               act: Callable[[subprocess.Popen[bytes]], object],
               timeout: float = 120) -> Result:
    """Run *argv*; once *started* holds, *act* (given the process); then
    wait for the end, *timeout* seconds at most."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(started, proc)
        act(proc)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Result(proc.returncode, out, err)


def copy_begun(directory: Path, names: set[str] | None = None
               ) -> Callable[[], bool]:
    """True once data sits in a new or temporary file in *directory*."""
    before = set(names or ())

    def check() -> bool:
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            return False
        return any(p.name not in before and p.stat().st_size > 0
                   for p in entries if p.is_file())
    return check


# ---- a full disk -----------------------------------------------------------

def namespace_prefix(mnt: Path, size: str) -> list[str]:
    """A command prefix: a private mount namespace with a tmpfs at *mnt*."""
    unshare = ["unshare", "-m"] if os.geteuid() == 0 \
        else ["unshare", "-r", "-m"]
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && ' \
        'exec "$@"'
    return unshare + ["sh", "-c", script, "sh", size, str(mnt)]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Callable[[str], list[str]]:
    """A prefix that runs a command with a small tmpfs at tmp/mnt."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(namespace_prefix(mnt, "1m") + ["true"],
                           capture_output=True)
    require(probe.returncode == 0,
            "a private tmpfs (unshare -m, or user namespaces for "
            "non-root)")

    def prefix(size: str) -> list[str]:
        return namespace_prefix(mnt, size)
    return prefix


def in_tmpfs(tmpfs: Callable[[str], list[str]], size: str, cwd: Path,
             env: dict[str, str], batch: str, argv: list[str],
             seed: dict[str, bytes]) -> tuple[Result, dict[str, object]]:
    """Run *argv* ``-b`` *batch* with a fresh tmpfs at mnt; return what
    it printed and, per file left in mnt, its length (``b``: its bytes,
    hex)."""
    lister = (
        "import os, sys, json; m = sys.argv[1]; "
        "[open(os.path.join(m, k), 'wb').write(bytes.fromhex(v)) "
        "for k, v in json.loads(sys.argv[2]).items()]; "
        "os.system(sys.argv[3]); "
        "print(json.dumps({n: (open(os.path.join(m, n), 'rb').read().hex()"
        " if n == 'b' else os.path.getsize(os.path.join(m, n))) "
        "for n in os.listdir(m)}), file=sys.stderr)")
    seeds = json.dumps({k: v.hex() for k, v in seed.items()})
    command = " ".join(argv + ["-b", batch])
    done = run([sys.executable, "-c", lister, str(cwd / "mnt"), seeds,
                command + " ; echo status=$? >&2"], cwd, env,
               prefix=tmpfs(size))
    *printed, status_line, listing = done.stderr.rstrip(b"\n").split(b"\n")
    status = int(status_line.split(b"=")[1])
    result = Result(status, done.stdout,
                    b"".join(line + b"\n" for line in printed))
    return result, json.loads(listing)


def test_disk_full_glob_get_carries_on(
        tmp_path: Path, tmpfs: Callable[[str], list[str]],
        sftp_bin: str, sftp_server_bin: str) -> None:
    """A file too big for the disk fails; the rest of the glob arrives.

    sftp writes in place and leaves a partial file over the old one;
    psftp-shell leaves the old file as it was.  At -n 4 the big file is
    chunked and the free-space check refuses it before any byte moves.
    """
    random_file(tmp_path / "src" / "a", 100_000)
    random_file(tmp_path / "src" / "b", BIG)
    random_file(tmp_path / "src" / "c", 100_000)
    (tmp_path / "batch").write_text("get src/* mnt/\nget src/a mnt/a2\n")
    env = env_for(tmp_path)
    results = {}
    for name, argv in programs(sftp_bin).items():
        results[name] = in_tmpfs(
            tmpfs, "3m", tmp_path, env, "batch",
            argv + ["-D", sftp_server_bin], {"b": b"old"})
    ref, ref_files = results["sftp"]
    assert ref.status == 1
    assert ref.stderr == b'write local "mnt/b": No space left on device\r\n'
    for name in ("n1", "n4"):
        got, files = results[name]
        assert (got.status, got.stdout) == (ref.status, ref.stdout)
        # the batch stopped after the failed command, as sftp's did
        assert files == {"a": 100_000, "c": 100_000, "b": b"old".hex()}
        assert ref_files["a"] == ref_files["c"] == 100_000
    assert results["n1"][0].stderr == ref.stderr
    assert re.fullmatch(
        rb'local "mnt/b": not enough free space \(5242880 bytes needed, '
        rb"\d+ available\)\r\n", results["n4"][0].stderr)


def run_filling(tmp_path: Path, tmpfs: Callable[[str], list[str]],
                argv: list[str]) -> tuple[int, bytes, dict[str, object]]:
    """Run *argv* in an 8 MiB tmpfs holding ``b`` = ``old``; fill the disk
    once the copy has begun."""
    driver = tmp_path / "fill.py"
    driver.write_text(FILL_DRIVER)
    mnt = tmp_path / "mnt"
    script = "printf old > \"$0/b\" && exec \"$@\""
    done = run(["sh", "-c", script, str(mnt), sys.executable, str(driver),
                str(mnt), str(tmp_path / "out"), str(tmp_path / "err")]
               + argv, tmp_path, env_for(tmp_path), prefix=tmpfs("8m"))
    assert done.status == 0, done.stderr
    report = json.loads(done.stdout)
    return (report["status"], (tmp_path / "err").read_bytes(),
            report["files"])


@pytest.mark.parametrize("name", ["sftp", "n1", "n4"])
def test_disk_fills_during_download(
        tmp_path: Path, tmpfs: Callable[[str], list[str]], sftp_bin: str,
        relay: Callable[[int], str], name: str) -> None:
    """The disk fills while a 6 MiB file arrives (another writer).

    sftp and psftp-shell at -n 1 (one stream, no preallocation) fail
    with sftp's ``write local`` message and status.  sftp leaves a
    partial file under the final name; psftp-shell removes its temporary
    (the space it holds is what the full disk needs back, and a new get
    would discard it anyway) and the old file stays intact.  At -n 4 the
    file is chunked and its blocks are reserved (fallocate) before the
    copy: when that comes first the other writer gets the ENOSPC and the
    copy succeeds; when the other writer fills the disk first, the copy
    fails as at -n 1.  Never a wrong file under the final name.
    """
    data = random_file(tmp_path / "src" / "b", 6 * MIB).read_bytes()
    (tmp_path / "batch").write_text("get src/b mnt/b\n")
    argv = programs(sftp_bin)[name] + ["-D", relay(4 * MIB), "-b", "batch"]
    status, stderr, files = run_filling(tmp_path, tmpfs, argv)
    if name == "n4" and status == 0:
        assert stderr == b""
        assert files == {"b": data.hex()}
        return
    assert status == 1
    assert stderr == b'write local "mnt/b": No space left on device\r\n'
    if name == "sftp":
        assert files["b"] != b"old".hex()      # sftp clobbered it
    else:
        assert files == {"b": b"old".hex()}   # no temporary, no journal


async def test_enospc_in_a_chunked_download(
        tmp_path: Path, sftp_server_bin: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where blocks cannot be reserved (no fallocate) and the free-space
    check saw room, ENOSPC hits a chunk's write: sftp's message, the
    temporary and the journal are removed, the old file is intact, and
    the next file of the command still arrives."""
    rig = await make_rig(tmp_path, sftp_server_bin, streams=4)
    try:
        monkeypatch.setattr(getjob, "preallocate", lambda *a: False)
        monkeypatch.setattr(getjob, "free_space", lambda path: None)
        writes = 0
        real = chunkpipe.pwrite_all

        def full_disk(fd: int, data: bytes, offset: int) -> None:
            nonlocal writes
            if ".big" in os.readlink(f"/proc/self/fd/{fd}"):
                writes += 1
                if writes > 6:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd, data, offset)
        monkeypatch.setattr(chunkpipe, "pwrite_all", full_disk)
        (rig.remote / "big").write_bytes(os.urandom(40 * CHUNK))
        (rig.remote / "small").write_bytes(b"small")
        (rig.local / "big").write_bytes(b"old")
        seen = Listener()
        rig.engine.observer = seen
        async with rig.engine.command() as batch:
            for name in ("big", "small"):
                await batch.download(str(rig.remote / name), name, None,
                                     Flags(), f"Download of {name} failed")
            ok = await batch.finish()
        assert not ok
        assert rig.messages() == \
            'write local "big": No space left on device\r\n' \
            "Download of big failed\r\n"
        assert (rig.local / "big").read_bytes() == b"old"
        assert (rig.local / "small").read_bytes() == b"small"
        assert leftovers(rig.local) == []
        assert seen.failed == [
            (str(rig.remote / "big"),
             'write local "big": No space left on device')]
    finally:
        await rig.transport.close()


class Listener(Recorder):
    """A recorder that also takes the failure reports."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: list[tuple[str, str]] = []

    def file_failed(self, path: str, reason: str) -> None:
        self.failed.append((path, reason))


# ---- permission denied -----------------------------------------------------

@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can use when the tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="psftp-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_user(root: Path) -> list[str]:
    """A prefix that drops root (else permissions are not checked)."""
    if os.geteuid() != 0:
        return []
    for path in [root, *root.rglob("*")]:
        if not path.name.startswith("root-"):
            os.lchown(path, NOBODY, NOBODY)
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
            "--clear-groups"]


def test_permission_denied_matches_sftp(shared_dir: Path, sftp_bin: str,
                                        sftp_server_bin: str) -> None:
    """Read-only destination directories (local and remote), a read-only
    destination file (local and remote: a copy that would go to a
    temporary must not replace it either) and an unreadable source:
    sftp's messages, the other files carry on."""
    root = shared_dir
    for name, size in (("a", 1000), ("big", BIG), ("c", 1000)):
        random_file(root / "src" / name, size)
    (root / "src" / "root-secret").write_bytes(b"secret")
    (root / "src" / "root-secret").chmod(0o600)
    (root / "ro").mkdir()
    (root / "out").mkdir()
    (root / "up").mkdir()
    (root / "out" / "big").write_bytes(b"old")
    (root / "batch1").write_text("get src/* ro/\n")
    (root / "batch2").write_text("get src/* out/\n")
    (root / "batch3").write_text("put src/* up/\n")
    (root / "batch4").write_text("put src/* ro/\n")
    (root / "batch5").write_text("put src/* out/\n")
    prefix = as_user(root)
    if os.geteuid() == 0:
        os.chown(root / "src" / "root-secret", 0, 0)
    (root / "ro").chmod(0o555)
    (root / "out" / "big").chmod(0o444)
    env = env_for(root)
    for batch in ("batch1", "batch2", "batch3", "batch4", "batch5"):
        seen: dict[str, tuple[Result, dict[str, str]]] = {}
        for name, argv in programs(sftp_bin).items():
            shutil.rmtree(root / "up")
            (root / "up").mkdir()
            as_user(root / "up")
            for path in (root / "out").iterdir():
                if path.name != "big":
                    path.unlink()
            result = run(argv + ["-D", sftp_server_bin, "-b", batch], root,
                         env, prefix)
            state = {str(p.relative_to(root)): digest(p)
                     for p in sorted(root.rglob("*"))
                     if p.is_file() and p.parent.name in ("out", "up", "ro")}
            seen[name] = (result, state)
        ref = seen["sftp"]
        assert ref[0].status == 1
        assert b"Permission denied" in ref[0].stderr
        for name in ("n1", "n4"):
            assert seen[name] == ref, (batch, name)
        assert leftovers(root) == []
    assert (root / "out" / "big").read_bytes() == b"old"


# ---- the destination directory removed mid-transfer ------------------------

@pytest.mark.parametrize("name", ["sftp", "n1", "n4"])
def test_destination_removed_during_get_r(
        tmp_path: Path, sftp_bin: str, relay: Callable[[int], str],
        name: str) -> None:
    """``get -r`` into a directory the test removes meanwhile.

    Files that were open fail (sftp writes on into the removed directory
    and may even report success; psftp-shell cannot rename its temporary
    and says so); files not yet opened fail with sftp's ``open local``
    message and the tree's ``Download of file ... failed`` line.  The
    status is sftp's and nothing is recreated.
    """
    for index in range(1, 5):
        random_file(tmp_path / "tree" / f"f{index}", 1_500_000)
    random_file(tmp_path / "tree" / "zbig", BIG)
    (tmp_path / "out").mkdir()
    (tmp_path / "batch").write_text("get -r tree out/dst\n")
    dst = tmp_path / "out" / "dst"
    argv = programs(sftp_bin)[name] + ["-D", relay(3 * MIB), "-b", "batch"]
    def remove() -> None:
        while dst.exists():     # the program may add files meanwhile
            shutil.rmtree(dst, ignore_errors=True)
    result = act_during(argv, tmp_path, env_for(tmp_path), copy_begun(dst),
                        lambda _: remove())
    assert result.status == 1
    assert result.stdout == b"sftp> get -r tree out/dst\n" \
        b"Retrieving " + str(tmp_path / "tree").encode() + b"\n"
    lines = result.stderr.decode().split("\r\n")
    assert lines.pop() == ""
    failed = [line for line in lines if line.startswith("Download of")]
    assert failed, lines
    for line in lines:
        assert line.startswith(("open local", "rename local",
                                "Download of file")), line
    assert list((tmp_path / "out").iterdir()) == []


# ---- a source that shrinks -------------------------------------------------

@pytest.mark.parametrize("name", ["sftp", "n1", "n4"])
@pytest.mark.parametrize("direction", ["put", "get"])
def test_source_truncated_during_transfer(
        tmp_path: Path, sftp_bin: str, relay: Callable[[int], str],
        name: str, direction: str) -> None:
    """The source is cut to 3 MB while 8 MB are being copied.

    sftp ends up with the truncated file (it stops at the end of file it
    meets); so must psftp-shell, whose streams may have read ranges past
    the new end before the cut: they must not survive in the result.
    """
    source = random_file(tmp_path / "up.bin", 8_000_000)
    (tmp_path / "there").mkdir()
    (tmp_path / "batch").write_text(
        f"{direction} up.bin there/up.bin\n" if direction == "put"
        else f"get {source} there/up.bin\n")
    original = source.read_bytes()
    # each -n stream has its own relay: at -n 4 each is slower, so that
    # every copy takes about 4 s and the cut at 0.3 s comes in the middle
    rate = MIB // 2 if name == "n4" else 2 * MIB
    argv = programs(sftp_bin)[name] + ["-D", relay(rate), "-b", "batch"]

    def cut() -> None:
        time.sleep(0.3)
        os.truncate(source, 3_000_000)
    result = act_during(argv, tmp_path, env_for(tmp_path),
                        copy_begun(tmp_path / "there"), lambda _: cut())
    assert result.status == 0, result.stderr
    assert (tmp_path / "there" / "up.bin").read_bytes() \
        == original[:3_000_000]
    assert leftovers(tmp_path / "there") == []
    if name != "sftp" and result.stderr:
        assert result.stderr.endswith(b" changed during transfer\r\n")


@pytest.mark.parametrize("name", ["sftp", "n4"])   # -n 1 is sftp's code
def test_source_deleted_during_put(tmp_path: Path, sftp_bin: str,
                                   relay: Callable[[int], str],
                                   name: str) -> None:
    """A source removed while open is still read to its end, as sftp."""
    source = random_file(tmp_path / "up.bin", BIG)
    data = source.read_bytes()
    (tmp_path / "there").mkdir()
    (tmp_path / "batch").write_text("put up.bin there/up.bin\n")
    argv = programs(sftp_bin)[name] + ["-D", relay(8 * MIB), "-b", "batch"]
    result = act_during(argv, tmp_path, env_for(tmp_path),
                        copy_begun(tmp_path / "there"),
                        lambda _: source.unlink())
    assert (result.status, result.stderr) == (0, b"")
    assert (tmp_path / "there" / "up.bin").read_bytes() == data


# ---- one list of failures --------------------------------------------------

def test_failures_list_only_for_several_files() -> None:
    """One failed file of one is not listed; of several, it is."""
    single = Failures()
    single.add("/r/a", "remote open: No such file")
    assert single.take_lines() == []
    several = Failures()
    for path in ("/r/a", "/r/b", "/r/c"):
        several.started(path)
    several.add("/r/b", 'write local "b": No space left on device')
    several.add("/r/\x1bc", "x\ny")
    assert several.take_lines() == [
        "2 of 4 files failed:",
        '  /r/b: write local "b": No space left on device',
        "  /r/\\033c: x\\012y",
    ]
    assert several.take_lines() == []       # printed once


def test_noted_slot_keeps_order_and_first_error() -> None:
    """The slot wrapper writes through its slot, in order, and notes the
    first error (the cause, not the consequences printed after it)."""
    stderr = io.BytesIO()
    out = Output(io.BytesIO(), stderr)
    seq = Sequencer(out)
    first, second = NotedSlot(seq.slot()), NotedSlot(seq.slot())
    second.error("second")
    second.logit("note")
    second.error("Download of file x to y failed")
    first.error("first")
    assert stderr.getvalue() == b"first\r\n"
    first.close()
    assert stderr.getvalue() == b"first\r\nsecond\r\nnote\r\n" \
        b"Download of file x to y failed\r\n"
    assert (first.closed, second.closed) == (True, False)
    assert (first.reason, second.reason) == ("first", "second")


def test_meter_prints_the_list_at_the_end() -> None:
    """sftp's meter view ends a command with failures with the list."""
    sink = io.BytesIO()
    meter = SftpMeter(sink, timer=False)
    meter.command_started(streams=1)
    report_failure(meter, "/r/a", 'remote open "/r/a": Permission denied')
    report_failure(meter, "/r/b", 'remote open "/r/b": Permission denied')
    meter.command_finished()
    assert sink.getvalue() == (
        b"2 of 2 files failed:\n"
        b'  /r/a: remote open "/r/a": Permission denied\n'
        b'  /r/b: remote open "/r/b": Permission denied\n')


def test_live_view_lists_failures_without_any_started_file() -> None:
    """Files that failed before moving a byte are listed all the same."""
    stdout = io.BytesIO()
    view = LiveView(Output(stdout, io.BytesIO()), timer=False)
    view.command_started(streams=4)
    report_failure(view, "/r/a", 'remote open "/r/a": No such file')
    report_failure(view, "/r/b", 'open local "b": Permission denied')
    view.command_finished()
    lines = stdout.getvalue().decode().splitlines()
    assert lines[-3:] == [
        "2 of 2 files failed:",
        '  /r/a: remote open "/r/a": No such file',
        '  /r/b: open local "b": Permission denied']


def test_failure_list_from_a_real_command(shared_dir: Path,
                                          sftp_server_bin: str) -> None:
    """On a terminal, a multi-file get with failures ends with the list
    (under the live view's summary); batch mode prints sftp's lines."""
    pexpect = pytest.importorskip("pexpect")
    root = shared_dir
    for name in ("a", "root-b", "c"):
        random_file(root / "src" / name, 1000)
    (root / "dst").mkdir()
    (root / "dst" / "c").write_bytes(b"old")
    prefix = as_user(root)
    (root / "src" / "root-b").chmod(0o600 if prefix else 0)
    (root / "dst" / "c").chmod(0o444)
    env = env_for(root)
    env.update(TERM="xterm", LANG="C.UTF-8", PROMPT_TOOLKIT_NO_CPR="1")
    argv = prefix + PSFTP + ["-n", "4", "-D", sftp_server_bin]
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(root), env=env,
                          dimensions=(24, 200), timeout=20)
    try:
        child.expect_exact("sftp>")
        child.sendline("get src/* dst/")
        child.expect_exact("2 of 3 files failed:")
        child.expect_exact(f"  {root}/src/c: open local")
        child.expect_exact("sftp>")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    (root / "batch").write_text("get src/* dst/\n")
    batch = run(PSFTP + ["-n", "4", "-D", sftp_server_bin, "-b", "batch"],
                root, env, prefix)
    assert batch.status == 1
    assert b"files failed" not in batch.stdout + batch.stderr
