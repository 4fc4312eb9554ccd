"""The command line against OpenSSH's sftp, byte for byte where it can be.

The real sftp is run with ``-S`` (or ``-D``) pointing at a small script
that records its argv and exits, so nothing ever connects anywhere: the
error cases fail before ssh would start, and the others show the exact
ssh command line sftp builds.  A second script execs the local
sftp-server, which makes sftp reveal the start path it parsed.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from psftp_shell.core.errors import FatalError, ShellError, UsageError
from psftp_shell.core.libc_parse import (
    Getopt,
    a2port,
    argv_split,
    scan_scaled,
    strtonum,
)
from psftp_shell.frontend.cli_messages import (
    OwnUsageError,
    exit_status,
    format_error,
    message_line,
    program_name,
)
from psftp_shell.frontend.config_file import ConfigError
from psftp_shell.frontend.destination import (
    Destination,
    PlainUsageError,
    parse_destination,
    urldecode,
)
from psftp_shell.frontend.options import PSFTP_X_OPTIONS, parse_args
from psftp_shell.frontend.usage import usage

PROG = "psftp-shell"
RECORDER = """#!/bin/sh
printf '%s\\0' "$0" "$@" > "$FAKE_SSH_RECORD"
exit 1
"""
SERVER = """#!/bin/sh
printf '%s\\0' "$0" "$@" > "$FAKE_SSH_RECORD"
cd "$FAKE_SSH_ROOT" && exec "$FAKE_SFTP_SERVER"
"""


@dataclass
class Rig:
    """The real sftp plus the fake ssh programs it is pointed at."""

    sftp: str
    recorder: str
    server: str
    record: Path
    root: Path
    env: dict[str, str]

    def run(self, args: list[str], program: str | None = None
            ) -> subprocess.CompletedProcess[bytes]:
        """Run the real sftp as PROG with ``-S program`` first."""
        self.record.unlink(missing_ok=True)
        return subprocess.run(
            [PROG, "-S", program or self.recorder, *args],
            executable=self.sftp, env=self.env, capture_output=True,
            stdin=subprocess.DEVNULL, cwd=self.root.parent, timeout=20,
            check=False)

    def recorded(self) -> list[str] | None:
        """Return the argv the fake program recorded, if it ran."""
        if not self.record.exists():
            return None
        return [os.fsdecode(a)
                for a in self.record.read_bytes().split(b"\0")[:-1]]


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def rig(tmp_path: Path, sftp_bin: str, sftp_server_bin: str) -> Rig:
    """Fake ssh programs in a private directory, for the real sftp."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    record = tmp_path / "argv"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
           "FAKE_SSH_RECORD": str(record), "FAKE_SSH_ROOT": str(root),
           "FAKE_SFTP_SERVER": sftp_server_bin}
    return Rig(sftp_bin, _script(tmp_path / "recorder", RECORDER),
               _script(tmp_path / "server", SERVER), record, root, env)


def _fail(args: list[str]) -> tuple[int, bytes]:
    """Parse *args*, which must fail: (exit status, stderr bytes)."""
    try:
        opts = parse_args(args, PROG)
    except ShellError as exc:
        return exit_status(exc), format_error(exc, PROG)
    pytest.fail(f"parsed without error: {opts}")


def _without_usage(data: bytes, text: bytes) -> bytes:
    return data.replace(text, b"<usage>")


# --- usage -------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return text.split()


def test_usage_is_sftps_plus_connections(rig: Rig) -> None:
    real = rig.run(["-h"])
    assert real.returncode == 1
    ours = usage(PROG)
    assert ours.endswith("destination\n")
    # Same words in the same order, once our group is taken out.
    assert _words(ours.replace("[-n connections] ", "")) == \
        _words(real.stderr.decode())
    assert "[-l limit] [-n connections] [-o ssh_option]" in ours


def test_usage_layout() -> None:
    lines = usage(PROG).splitlines()
    assert lines[0].startswith(f"usage: {PROG} [-46AaCfNpqrv] ")
    assert all(line.startswith(" " * 10 + "[") for line in lines[1:])
    assert max(len(line) for line in lines) < 80
    assert usage("sftp").startswith("usage: sftp [")


def test_program_name() -> None:
    assert program_name("/usr/local/bin/psftp-shell") == "psftp-shell"
    assert program_name("psftp-shell") == "psftp-shell"


# --- errors, byte for byte ---------------------------------------------------

ERROR_CASES = [
    ["-Z"], ["-Z", "-B", "0"], ["-q", "-Z"], ["-q", "-B", "0", "h"],
    ["--foo"], ["-:"], ["-?"], ["-é"],
    ["-pé", "h"], ["-B"], ["-pB"], ["-X"],
    ["-B", "0", "h"], ["-B", "12x", "h"], ["-B", "", "h"], ["-B0", "h"],
    ["-R", "0", "h"], ["-R", "x", "h"], ["-R", " 0x1", "h"],
    ["-P", "x", "h"], ["-P", "0", "h"], ["-P", "65536", "h"],
    ["-P", "-1", "h"], ["-P", "22 ", "h"], ["-P", "nosuchservice", "h"],
    ["-P", "a\\b\x01\x7fé\t", "h"],
    ["-l", "0", "h"], ["-l", "104857601", "h"], ["-l", "1k", "h"],
    ["-X", "foo", "h"], ["-X", "Buffer=1", "h"], ["-X", "buffer", "h"],
    ["-X", "buffer=300k", "h"], ["-X", "buffer=", "h"],
    ["-X", "buffer=0", "h"], ["-X", "buffer=-1", "h"],
    ["-X", "buffer=--1", "h"], ["-X", "buffer=1.2.3", "h"],
    ["-X", "buffer=32kb", "h"], ["-X", "buffer=32q", "h"],
    ["-X", "buffer=8E", "h"], ["-X", "buffer=999999999999999999999", "h"],
    ["-X", "buffer=99999999999999999999k", "h"],
    ["-X", "nrequests=0", "h"], ["-X", "nrequests=x", "h"],
    ["-X", "nrequests=262145", "h"], ["-X", "nrequests=", "h"],
    ["-X", "nrequests=99999999999999999999", "h"],
    ["-X", "nrequests=-99999999999999999999", "h"],
    ["-1", "h"], ["-21", "h"], ["-h"], ["-h", "h"], ["-qh"],
    [], ["-p"], ["a", "b", "c"], ["-p", "--"],
    ["user@:x"], ["[]"], ["[]:x"], ["@[]:"],
    ["sftp://"], ["sftp://@h"], ["sftp://;x@h"], ["sftp://u@"],
    ["sftp://h:0/x"], ["sftp://h:65536"], ["sftp://h:x/x"],
    ["sftp://h:/x"], ["sftp://h/%4"], ["sftp://h/%zz"], ["sftp://u%g0@h"],
    ["sftp://-h/x"], ["sftp://h..x/x"], ["sftp://h%41/x"],
    ["sftp://h!/x"], ["sftp://[h/x"], ["sftp://[h]x/x"], ["sftp://[]"],
    ["sftp://[::1]junk"], ["sftp://[not-ipv6!]/x"], ["sftp://a@b@h/x"],
    ["-b", "-", "-b", "-", "h"], ["-b", "/nonexistent/batch", "h"],
    ["-b", "/nonexistent/batch"], ["-B", "0", "-b", "/nonexistent/b"],
    ["-D", ""], ["-D", "  "], ["-D", "\""], ["-D", "'a"], ["-D", "# x"],
    ["-D", "", "-B", "0"], ["-D", "'"],
    ["-P", "\x01" * 400, "h"], ["-P", "x" * 2000, "h"],
    ["-P", "\\" * 600, "h"],
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=repr)
def test_errors_match_sftp(rig: Rig, args: list[str]) -> None:
    real = rig.run(args)
    status, stderr = _fail(["-S", rig.recorder, *args])
    real_usage = rig.run(["-h"]).stderr
    assert (status, _without_usage(stderr, usage(PROG).encode())) == (
        real.returncode, _without_usage(real.stderr, real_usage))
    assert rig.recorded() is None


def test_own_errors_formats() -> None:
    status, stderr = _fail(["-n", "0", "h"])
    assert status == 1
    assert stderr == (b'psftp-shell: invalid -n value "0": must be a '
                      b"number from 1 to 64\n" + usage(PROG).encode())
    status, stderr = _fail(["-X", "connections=65", "h"])
    assert status == 255
    assert stderr == (b'Invalid connections value "65": must be a '
                      b"number from 1 to 64\r\n")


def test_dash_n_needs_an_argument() -> None:
    assert _fail(["-p", "-n"]) == (
        1, b"option requires an argument -- n\r\n" + usage(PROG).encode())


@pytest.mark.parametrize("value", ["0", "65", "x", "", "-1", "4x", "٣"])
def test_bad_connections(value: str) -> None:
    with pytest.raises(OwnUsageError, match="must be a number from 1 to"):
        parse_args(["-n", value, "h"], PROG)
    with pytest.raises(FatalError, match="must be a number from 1 to"):
        parse_args(["-X", f"connections={value}", "h"], PROG)


def test_format_error_kinds() -> None:
    assert format_error(UsageError(""), PROG) == usage(PROG).encode()
    assert format_error(PlainUsageError("Missing hostname"), PROG) == \
        b"Missing hostname\n" + usage(PROG).encode()
    assert format_error(FatalError("a\\b\x01"), PROG) == b"a\\\\b\\001\r\n"
    assert format_error(ConfigError("bad"), PROG) == b"psftp-shell: bad\n"
    assert message_line(PROG, "x\x1b") == b"psftp-shell: x\\033\n"
    assert exit_status(FatalError("x")) == 255
    assert exit_status(UsageError("")) == 1
    assert exit_status(ConfigError("x")) == 1


# --- the ssh command line ----------------------------------------------------

SSH_ARGV_CASES = [
    ["h"], ["-2", "h"], ["h", "local"], ["h", "-v"], ["--", "h"],
    ["-", "h"], ["-p-", "h"], ["-P", "ssh", "h"], ["-P", " +22", "h"],
    ["-P", "0022", "h"],
    ["-v", "-v", "-v", "-v", "-q", "-A", "-4", "-6", "-C", "-c", "aes",
     "-F", "/dev/null", "-i", "id1", "-i", "id2", "-J", "jump", "-o",
     "A=b", "-oC=d", "-P", "2", "-s", "sub", "h"],
    ["-pr", "-P2222", "-P", "2223", "-vq", "h"],
    ["-aCfNpr", "h"], ["-b", "-", "-N", "h"], ["-b-", "h"],
    ["-s", "/usr/lib/x", "u@h:p"], ["-s", "", "h"],
    ["-P", "2", "sftp://u;x=y@host.:33/p"], ["-P", "2", "sftp://u%41+b@h"],
    ["sftp://h_1-2.example"], ["sftp://[h]:44"], ["sftp://h:ssh/x"],
    ["SFTP://h"], ["sftp:/h"],
    ["a@b@h:p"], ["@h"], ["user@"], ["@"], ["/abs/path"], [":x"],
    ["[::1]"], ["[::1]:22"], ["u@[::1]:x"], ["[h]x:y"], ["a/b:c"],
    ["h:"], ["h:p:q"], ["u@h:ssh"], ["u@h"], ["u@h:"], ["@h:x"],
    ["-X", "buffer=32k!", "h"], ["-X", "buffer=1.5k", "h"],
    ["-X", "buffer=256K", "-X", "nrequests=1", "h"],
    ["-B", "-1", "-R", "99999999999999999999", "h"],
    ["-l", "104857600", "h"],
]


@pytest.mark.parametrize("args", SSH_ARGV_CASES, ids=repr)
def test_ssh_argv_matches_sftp(rig: Rig, args: list[str]) -> None:
    rig.run(args)
    opts = parse_args(["-S", rig.recorder, *args], PROG)
    assert opts.ssh_args == rig.recorded()


@pytest.mark.parametrize("dest", [
    "h:nofile", "u@h:sub/nofile", "h:sub", "h:", "sftp://h",
    "sftp://h/rel%41", "sftp://h//nonexistent-psftp/x", "h:p:q",
    "[::1]:22", "a@b@h:x@y", "sftp://u;p=1@h:2222/d%2Fx", "sftp://h/sub",
    "h:/nonexistent-psftp", "sftp://h/", "h:%41+",
])
def test_start_path_matches_sftp(rig: Rig, dest: str) -> None:
    real = rig.run(["-b", "/dev/null", dest], program=rig.server)
    path = parse_destination(dest).path
    missing = path is not None and not (rig.root / path).is_dir()
    if missing:
        assert path is not None
        full = path if path.startswith("/") else f"{rig.root}/{path}"
        assert f'File "{full}" not found.'.encode() in real.stderr
        assert real.returncode == 1
    else:
        assert real.returncode == 0, real.stderr
        assert b"not found" not in real.stderr


@pytest.mark.parametrize("command", [
    "'{p}' \"a b\" c\\ d 'e\"f' g\\h \\\\ #x",
    "\t{p}\t''  x#y \"#z\"", "{p} # comment", "{p} a\\'b \"c\\\"d\"",
])
def test_direct_argv_matches_sftp(rig: Rig, command: str) -> None:
    command = command.replace("{p}", rig.recorder)
    rig.record.unlink(missing_ok=True)
    subprocess.run([PROG, "-D", command, "-b", "/dev/null", "ignored"],
                   executable=rig.sftp, env=rig.env, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=20, check=False)
    opts = parse_args(["-D", command, "-b", "/dev/null", "ignored"], PROG)
    assert opts.sftp_server_argv == rig.recorded()
    assert opts.ssh_args == []
    assert opts.destination is None
    if opts.batch_fd is not None:
        os.close(opts.batch_fd)


# --- getopt ------------------------------------------------------------------

def _scan(args: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    getopt = Getopt(args, "ab:c")
    found = list(getopt)
    return found, args[getopt.optind:]


def test_getopt_forms() -> None:
    assert _scan(["-acb", "x", "y"]) == ([("a", ""), ("c", ""),
                                          ("b", "x")], ["y"])
    assert _scan(["-bx", "-a"]) == ([("b", "x"), ("a", "")], [])
    assert _scan(["-b", "-a", "z"]) == ([("b", "-a")], ["z"])
    assert _scan(["-ab-c"]) == ([("a", ""), ("b", "-c")], [])
    assert _scan(["y", "-a"]) == ([], ["y", "-a"])
    assert _scan(["--", "-a"]) == ([], ["-a"])
    assert _scan(["-", "-a"]) == ([], ["-", "-a"])
    assert _scan(["-a-", "x"]) == ([("a", "")], ["-a-", "x"])
    assert _scan([]) == ([], [])


@pytest.mark.parametrize(("args", "message"), [
    (["-x"], "unknown option -- x"),
    (["-a:"], "unknown option -- :"),
    (["-a-b"], "unknown option -- -"),
    (["--long"], "unknown option -- -"),
    (["-ab"], "option requires an argument -- b"),
    (["-a", "-b"], "option requires an argument -- b"),
])
def test_getopt_errors(args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        list(Getopt(args, "ab:c"))
    assert str(info.value) == message


# --- every option's value ----------------------------------------------------

def test_defaults() -> None:
    opts = parse_args(["h"], PROG)
    assert opts.destination == Destination(None, "h", None, None)
    assert (opts.verbose, opts.log_level, opts.connections) == (
        0, "INFO", None)
    assert not any([opts.ipv4, opts.ipv6, opts.forward_agent,
                    opts.resume_all, opts.compression, opts.fsync,
                    opts.no_quiet, opts.preserve, opts.quiet,
                    opts.recursive, opts.batchmode, opts.quiet_mode])
    assert opts.show_progress
    assert opts.ssh_args[0] == "/usr/bin/ssh"
    assert opts.ssh_program is None and opts.local_path is None


def test_flags_bundled() -> None:
    opts = parse_args(["-46AaCfNpqr2", "h", "there"], PROG)
    assert (opts.ipv4, opts.ipv6, opts.forward_agent, opts.resume_all,
            opts.compression, opts.fsync, opts.no_quiet, opts.preserve,
            opts.quiet, opts.recursive) == (True,) * 10
    assert opts.local_path == "there"
    assert opts.log_level == "ERROR"
    assert not opts.quiet_mode and not opts.show_progress


def test_valued_options() -> None:
    opts = parse_args([
        "-B", "1000", "-c", "c1", "-cc2", "-F", "cfg", "-i", "k1", "-ik2",
        "-J", "jh", "-l", "800", "-o", "A=1", "-oB=2", "-P", "2022",
        "-R", "9", "-S", "myssh", "-s", "sub", "-n", "8", "h"], PROG)
    assert (opts.buffer_size, opts.cipher, opts.ssh_config, opts.jump,
            opts.limit_kbps, opts.port, opts.num_requests, opts.ssh_program,
            opts.subsystem, opts.connections) == (
        1000, "c2", "cfg", "jh", 800, 2022, 9, "myssh", "sub", 8)
    assert opts.identities == ["k1", "k2"]
    assert opts.ssh_options == ["A=1", "B=2"]
    assert opts.effective_port == 2022
    assert opts.ssh_args[0] == "myssh"


def test_sizes_wrap_like_size_t() -> None:
    opts = parse_args(["-B", "-1", "-R", "99999999999999999999", "h"], PROG)
    assert opts.buffer_size == 2**64 - 1
    assert opts.num_requests == 2**63 - 1


def test_x_options_and_last_wins() -> None:
    opts = parse_args(["-B", "5", "-X", "buffer=1.5k", "-X",
                       "nrequests=7", "-R", "3", "h"], PROG)
    assert (opts.buffer_size, opts.num_requests) == (1536, 3)
    opts = parse_args(["-n", "3", "-X", "connections=5", "h"], PROG)
    assert opts.connections == 5
    assert opts.x_settings == {"connections": 5}
    opts = parse_args(["-X", "connections=5", "-n3", "h"], PROG)
    assert opts.connections == 3
    assert "connections" in PSFTP_X_OPTIONS


@pytest.mark.parametrize(("args", "level", "count"), [
    (["-v"], "DEBUG1", 1), (["-vvv"], "DEBUG3", 3), (["-vvvvv"], "DEBUG3", 3),
    (["-q"], "ERROR", 0), (["-vq"], "ERROR", 1), (["-qv"], "DEBUG1", 1),
    (["-vqv"], "DEBUG2", 2), (["-vvvqv"], "ERROR", 3),
])
def test_log_level(args: list[str], level: str, count: int) -> None:
    opts = parse_args([*args, "h"], PROG)
    assert (opts.log_level, opts.verbose) == (level, count)
    assert opts.ssh_args.count("-v") == count


@pytest.mark.parametrize(("args", "quiet", "progress"), [
    ([], False, True), (["-q"], True, False), (["-b", "-"], True, False),
    (["-b", "-", "-N"], False, False), (["-N", "-q"], False, False),
])
def test_quiet_and_progress(args: list[str], quiet: bool,
                            progress: bool) -> None:
    opts = parse_args([*args, "h"], PROG)
    assert (opts.quiet_mode, opts.show_progress) == (quiet, progress)


def test_uri_port_overrides_dash_p() -> None:
    opts = parse_args(["-P", "2", "sftp://h:3"], PROG)
    assert (opts.port, opts.effective_port) == (2, 3)
    assert "-oPort 3" in opts.ssh_args


def test_batch_file_is_opened(tmp_path: Path) -> None:
    batch = tmp_path / "b"
    batch.write_bytes(b"pwd\n")
    opts = parse_args(["-b", str(batch), "h"], PROG)
    assert opts.batch_fd is not None
    try:
        assert os.read(opts.batch_fd, 100) == b"pwd\n"
    finally:
        os.close(opts.batch_fd)
    stdin = parse_args(["-b", "-", "h"], PROG)
    assert (stdin.batchfile, stdin.batch_fd) == ("-", None)
    lazy = parse_args(["-b", "/nonexistent/b", "h"], PROG,
                      open_batchfile=False)
    assert (lazy.batchfile, lazy.batch_fd) == ("/nonexistent/b", None)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_batch_fd_closed_on_later_error(tmp_path: Path) -> None:
    batch = tmp_path / "b"
    batch.write_bytes(b"")
    before = _open_fds()
    with pytest.raises(UsageError):
        parse_args(["-b", str(batch), "a", "b", "c"], PROG)
    with pytest.raises(FatalError):
        parse_args(["-b", str(batch), "-B", "0", "h"], PROG)
    assert _open_fds() == before


def test_batch_open_error_text() -> None:
    with pytest.raises(FatalError) as info:
        parse_args(["-b", "/nonexistent/b"], PROG)
    assert str(info.value) == (f"{os.strerror(errno.ENOENT)} "
                               "(/nonexistent/b).")


def test_direct_ignores_operands() -> None:
    opts = parse_args(["-D", "srv -e", "a", "b", "c"], PROG)
    assert opts.sftp_server == "srv -e"
    assert opts.sftp_server_argv == ["srv", "-e"]
    assert opts.destination is None and opts.local_path is None
    assert parse_args(["-D", "srv"], PROG).sftp_server_argv == ["srv"]


# --- destinations (spec 1.3) -------------------------------------------------

@pytest.mark.parametrize(("arg", "expected"), [
    ("sftp://h", Destination(None, "h", None, None)),
    ("sftp://u@h:2222/dir", Destination("u", "h", 2222, "dir")),
    ("sftp://h//abs", Destination(None, "h", None, "/abs")),
    ("sftp://h/", Destination(None, "h", None, None)),
    ("sftp://h:", Destination(None, "h", None, None)),
    ("sftp://u;fingerprint=x@h", Destination("u", "h", None, None)),
    ("sftp://a%40b+c@h/p%20q+r", Destination("a@b c", "h", None, "p q r")),
    ("sftp://u@h/a%00b", Destination("u", "h", None, "a")),
    ("sftp://host./x", Destination(None, "host", None, "x")),
    ("sftp://h_x-1.Example/x", Destination(None, "h_x-1.Example", None,
                                           "x")),
    ("sftp://[h]", Destination(None, "h", None, None)),
    ("sftp://[1.2.3]", Destination(None, "1.2.3", None, None)),
    ("sftp://h:ssh", Destination(None, "h", 22, None)),
    ("h:p", Destination(None, "h", None, "p")),
    ("u@h:p", Destination("u", "h", None, "p")),
    ("a@b@h:p", Destination("a@b", "h", None, "p")),
    ("@h:p", Destination(None, "h", None, "p")),
    ("h:", Destination(None, "h", None, ".")),
    ("h:p:q", Destination(None, "h", None, "p:q")),
    ("[::1]:p", Destination(None, "::1", None, "p")),
    ("u@[fe80::1]:", Destination("u", "fe80::1", None, ".")),
    ("u@h", Destination("u", "h", None, None)),
    ("h", Destination(None, "h", None, None)),
    ("[::1]", Destination(None, "::1", None, None)),
    ("@h", Destination(None, "@h", None, None)),
    ("user@", Destination(None, "user@", None, None)),
    ("/abs/path", Destination(None, "/abs/path", None, None)),
    (":x", Destination(None, ":x", None, None)),
    ("a/b:c", Destination(None, "a/b:c", None, None)),
    ("SFTP://h", Destination(None, "SFTP", None, "//h")),
])
def test_destination_forms(arg: str, expected: Destination) -> None:
    assert parse_destination(arg) == expected


@pytest.mark.parametrize(("arg", "expected"), [
    ("sftp://[::1]:22/x", Destination(None, "::1", 22, "x")),
    ("sftp://u@[2001:db8::2]", Destination("u", "2001:db8::2", None, None)),
    ("sftp://[::ffff:1.2.3.4]/", Destination(None, "::ffff:1.2.3.4", None,
                                             None)),
])
def test_uri_ipv6_extension(arg: str, expected: Destination) -> None:
    assert parse_destination(arg) == expected


@pytest.mark.parametrize("arg", [
    "sftp://::1/x", "sftp://[::1", "sftp://[::1]x", "sftp://[1:2]/",
    "sftp://[::1]:0", "sftp://[::g]",
])
def test_uri_ipv6_still_rejected(arg: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_destination(arg)
    assert str(info.value) == ""


@pytest.mark.parametrize("arg", ["user@:x", "[]", "[]:p", "@[]:x"])
def test_missing_hostname(arg: str) -> None:
    with pytest.raises(PlainUsageError, match="^Missing hostname$"):
        parse_destination(arg)


def test_urldecode() -> None:
    assert urldecode("a+b%2fc%2F") == "a b/c/"
    assert urldecode("%e2%82%ac") == "\u20ac"
    assert urldecode("%ff") == "\udcff"
    assert urldecode("%") is None
    assert urldecode("%a") is None
    assert urldecode("%ag") is None


# --- C number parsing --------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("32k", (32768, 0)), ("32K", (32768, 0)), ("1.5k", (1536, 0)),
    ("0.5M", (524288, 0)), ("7b", (7, 0)), ("  +12", (12, 0)),
    ("-3", (-3, 0)), ("", (0, 0)), ("1.9", (1, 0)), ("2k ", (2048, 0)),
    ("1e", (2**60, 0)), ("8E", (0, errno.ERANGE)),
    ("1.2.3", (0, errno.EINVAL)), ("+-1", (0, errno.EINVAL)),
    ("4x", (0, errno.EINVAL)), ("4kk", (0, errno.EINVAL)),
    ("1" * 21, (0, errno.ERANGE)), ("9" * 19, (0, errno.ERANGE)),
])
def test_scan_scaled(text: str, expected: tuple[int, int]) -> None:
    assert scan_scaled(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("5", (5, None)), (" 5", (5, None)), ("+5", (5, None)),
    ("5 ", (0, "invalid")), ("", (0, "invalid")), ("-", (0, "invalid")),
    ("0", (0, "too small")), ("11", (0, "too large")),
    ("-99999999999999999999", (0, "too small")),
    ("99999999999999999999", (0, "too large")),
])
def test_strtonum(text: str, expected: tuple[int, str | None]) -> None:
    assert strtonum(text, 1, 10) == expected


def test_a2port() -> None:
    assert a2port("2222") == 2222
    assert a2port("0") == 0
    assert a2port("ssh") == 22
    assert a2port("65536") == -1
    assert a2port("") == -1


def test_argv_split_unterminated() -> None:
    assert argv_split("a 'b c' d\\ e") == ["a", "b c", "d e"]
    with pytest.raises(ValueError):
        argv_split("a 'b")


def test_messages_escape_raw_bytes() -> None:
    assert _fail(["-P", "\udcff", "h"]) == (255, b'Bad port "\\377"\n\r\n')
    status, stderr = _fail(["-\u20ac"])
    assert stderr.startswith(b"unknown option -- \\342\r\nusage: ")
