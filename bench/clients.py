"""The clients under test and the command line each needs for a transfer.

OpenSSH ``sftp`` and psftp-shell run a batch file (psftp-shell takes
sftp's command line plus ``-n N``).  lftp and rclone are used where
``shutil.which`` finds them: lftp through ``ssh`` as its connect program
(``pget -n``, ``mirror -P``), rclone with its own SSH code
(``--multi-thread-streams``, ``--transfers``).
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HOST_ALIAS = "psftp-test"
# Transfer kinds: a file or a tree, each way, and the interactive start;
# PWD is a batch of one ``pwd``, to warm caches up.
GET, PUT, GET_R, PUT_R, PROMPT = "get", "put", "get -r", "put -r", "prompt"
PWD = "pwd"
# psftp-shell over OpenSSH's own ssh (-S ssh: one ssh process per stream)
SSH_TRANSPORT = "psftp-shell-S"
# psftp-shell with the command typed at its prompt on a pty: the live
# view draws (bench/terminal.py)
TYPED = "psftp-shell-typed"
# the same with the view turned off first (``progress``): what the
# interactive session costs without the view
TYPED_OFF = "psftp-shell-typed-off"
# sftp itself, typed at its prompt: its progress meter draws every file
SFTP_TYPED = "sftp-typed"
# psftp-shell typed as a user types: the command comes TYPING_PAUSE
# seconds after the first prompt (the -n streams open meanwhile, as they
# do while a user types), and that pause is left out of the time
TYPED_PACED = "psftp-shell-typed-paced"
TYPING_PAUSE = 1.0
TYPED_KINDS = (TYPED, TYPED_OFF, TYPED_PACED, SFTP_TYPED)


@dataclass(frozen=True)
class Target:
    """Where a client connects: an ssh_config and the same facts spelled
    out for clients that do not read one."""

    ssh_config: Path
    port: int
    user: str
    identity: Path
    known_hosts: Path
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Op:
    """One transfer: *src* to *dst*; remote paths are relative to the
    server's start directory, local ones absolute."""

    kind: str
    src: str = ""
    dst: str = ""


@dataclass(frozen=True)
class Client:
    """A client program and, for the parallel ones, its connection count."""

    kind: str
    conns: int = 1

    @property
    def label(self) -> str:
        """The name shown in the report, e.g. ``psftp-shell -n 8``."""
        if self.kind == "sftp":
            return "sftp"
        if self.kind == SFTP_TYPED:
            return "sftp, typed (meter on)"
        if self.kind == SSH_TRANSPORT:
            return f"psftp-shell -S ssh -n {self.conns}"
        if self.kind == TYPED:
            return f"psftp-shell -n {self.conns}, typed (view on)"
        if self.kind == TYPED_OFF:
            return f"psftp-shell -n {self.conns}, typed (view off)"
        if self.kind == TYPED_PACED:
            return (f"psftp-shell -n {self.conns}, typed after "
                    f"{TYPING_PAUSE:g} s (view on)")
        return f"{self.kind} -n {self.conns}"

    def supports(self, kind: str) -> bool:
        """Whether this client takes part in transfers of *kind*."""
        if self.kind in ("lftp", "rclone"):
            return kind not in (PROMPT, PWD)
        return True


def installed(kind: str) -> bool:
    """Whether an optional client (lftp, rclone) is on the PATH."""
    return shutil.which(kind) is not None


def sftp_batch(op: Op) -> str:
    """Return the sftp batch file for *op* (empty for the prompt)."""
    if op.kind == PROMPT:
        return ""
    if op.kind == PWD:
        return "pwd\n"
    verb, flag = op.kind.split()[0], " -r" if op.kind.endswith("-r") else ""
    return f"{verb}{flag} {op.src} {op.dst}\n"


def typed_lines(client: Client, op: Op) -> str:
    """What a typed client types at the prompt, line by line."""
    line = sftp_batch(op).strip()
    return "progress\n" + line if client.kind == TYPED_OFF else line


def command(client: Client, op: Op, target: Target,
            batch: Path) -> list[str]:
    """Return the command line that runs *op* with *client*.

    *batch* is where the batch file goes for the clients that take one.
    For :data:`PROMPT` the command starts an interactive session.
    """
    if client.kind in ("sftp", "psftp-shell", SSH_TRANSPORT):
        return _sftp_like(client, op, target, batch)
    if client.kind in (TYPED, TYPED_OFF, TYPED_PACED):  # typed_lines()
        return _sftp_like(client, Op(PROMPT), target, batch)
    if client.kind == SFTP_TYPED:
        return _sftp_like(Client("sftp"), Op(PROMPT), target, batch)
    if client.kind == "lftp":
        return _lftp(client, op, target)
    if client.kind == "rclone":
        return _rclone(client, op, target, batch.parent)
    raise ValueError(f"unknown client {client.kind}")


def _sftp_like(client: Client, op: Op, target: Target,
               batch: Path) -> list[str]:
    if client.kind == "sftp":
        cmd = ["sftp", "-F", str(target.ssh_config)]
    else:
        cmd = [sys.executable, "-m", "psftp_shell",
               "-F", str(target.ssh_config), "-n", str(client.conns)]
        if client.kind == SSH_TRANSPORT:
            cmd += ["-S", "ssh"]
    if op.kind != PROMPT:
        batch.write_text(sftp_batch(op))
        cmd += ["-b", str(batch)]
    return cmd + [HOST_ALIAS]


def _lftp(client: Client, op: Op, target: Target) -> list[str]:
    ssh = " ".join([
        "ssh -a -x -F /dev/null",
        f"-o IdentityFile={target.identity} -o IdentitiesOnly=yes",
        "-o IdentityAgent=none -o GlobalKnownHostsFile=/dev/null",
        f"-o UserKnownHostsFile={target.known_hosts}",
        "-o StrictHostKeyChecking=yes"])
    n = client.conns
    src, dst = shlex.quote(op.src), shlex.quote(op.dst)
    transfer = {
        GET: f"pget -n {n} {src} -o {dst}",
        PUT: f"put {src} -o {dst}",
        GET_R: f"mirror -P {n} {src} {dst}",
        PUT_R: f"mirror -R -P {n} {src} {dst}",
    }[op.kind]
    script = (
        f"set sftp:connect-program {shlex.quote(ssh)}; "
        "set net:max-retries 1; set net:timeout 60; "
        "set xfer:clobber on; set cmd:fail-exit yes; "
        f"open -u {target.user}, -p {target.port} "
        f"sftp://{target.host}; {transfer}")
    return ["lftp", "-c", script]


def _rclone(client: Client, op: Op, target: Target,
            workdir: Path) -> list[str]:
    remote = (f":sftp,host={target.host},port={target.port},"
              f"user={target.user},key_file={target.identity},"
              f"known_hosts_file={target.known_hosts}:")
    config = workdir / "rclone.conf"
    config.touch()
    n = str(client.conns)
    common = ["--config", str(config), "-q", "--retries", "1",
              "--sftp-disable-hashcheck"]
    if op.kind in (GET, PUT):
        src = remote + op.src if op.kind == GET else op.src
        dst = remote + op.dst if op.kind == PUT else op.dst
        return ["rclone", "copyto", src, dst, *common,
                "--multi-thread-streams", n,
                "--multi-thread-cutoff", "1M"]
    src = remote + op.src if op.kind == GET_R else op.src
    dst = remote + op.dst if op.kind == PUT_R else op.dst
    return ["rclone", "copy", src, dst, *common, "--transfers", n,
            "--checkers", n]
