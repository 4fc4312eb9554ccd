"""The connection layer against the private sshd, compared with real sftp.

Where possible the expected stderr is produced by running OpenSSH's sftp
with the same configuration in batch mode: what a script sees from sftp
is what it must see from psftp-shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.core.errors import FatalError
from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD, free_port
from psftp_shell.ssh.algorithm_prefs import preferred_ciphers
from psftp_shell.ssh.attempt import describe_failure
from psftp_shell.ssh.auth import LogLevel
from psftp_shell.ssh.channel import open_sftp_channel
from psftp_shell.ssh.connect import ConnectError, Connector, SSHTarget
from psftp_shell.ssh.ssh_config import command_line_config, parse_jump
from tests.prompts import Scripted
from tests.twins import client_argv, proxy_race_settled

pytestmark = [pytest.mark.sshd, pytest.mark.usefixtures("clean_ssh_env")]

SFTP_INIT = b"\0\0\0\x05\x01\0\0\0\x03"




def derived_config(sshd: PrivateSSHD, path: Path, **changes: str) -> Path:
    """The sshd's client config with some ``Key value`` lines changed."""
    lines = []
    todo = dict(changes)
    for line in sshd.ssh_config.read_text().splitlines():
        key = line.split()[0] if line.strip() else ""
        if key in todo:
            value = todo.pop(key)
            if value:
                lines.append(f"  {key} {value}")
        else:
            lines.append(line)
    lines += [f"  {key} {value}" for key, value in todo.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def real_sftp(sftp_bin: str, config: Path, options: list[str],
              host: str = HOST_ALIAS, extra: list[str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH's sftp in batch mode with no commands.

    stderr is decoded as it is, keeping ssh's CR LF line ends.
    """
    args = [sftp_bin, "-F", str(config), "-b", "-", *(extra or [])]
    for option in options:
        args += ["-o", option]
    for _ in range(5):
        result = subprocess.run(args + [host], input=b"",
                                capture_output=True, timeout=30,
                                env=dict(os.environ))
        # sftp races its ssh: when ssh dies first, sftp's first write can
        # kill it by SIGPIPE before it says "Connection closed"
        if result.returncode != -signal.SIGPIPE:
            break
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(),
                                       result.stderr.decode())


async def our_stderr(config: Path, options: list[str],
                     host: str = HOST_ALIAS, **target: object) -> str:
    """What psftp-shell's connection layer prints for the same attempt."""
    prompter = Scripted()
    connector = Connector(
        SSHTarget(host=host, config_file=str(config), options=options,
                  batch_mode=True, **target),  # type: ignore[arg-type]
        prompter)
    try:
        conn = await connector.connect()
    except ConnectError as exc:
        tail = exc.stderr
    else:
        conn.close()
        tail = ""
    finally:
        connector.close()
    return "".join(t if t.endswith("\n") else t + "\r\n"
                   for t in prompter.told) + tail


async def check_like_sftp(sftp_bin: str, config: Path, options: list[str],
                          *, failed: bool = True, **target: object) -> str:
    """Assert our stderr equals sftp's; return it."""
    ours = await our_stderr(config, options, **target)  # type: ignore
    theirs = real_sftp(sftp_bin, config, options)
    assert (theirs.returncode == 255) is failed, theirs.stderr
    assert ours == theirs.stderr
    return ours


async def sftp_version(conn: asyncssh.SSHClientConnection,
                       subsystem: str = "sftp") -> int:
    """Send an SFTP INIT by hand; return the type of the reply."""
    reader, writer = await open_sftp_channel(conn, subsystem,
                                             window=4 << 20)
    writer.write(SFTP_INIT)
    await writer.drain()
    header = await reader.readexactly(5)
    length = int.from_bytes(header[:4], "big")
    await reader.readexactly(length - 1)
    writer.close()
    return header[4]


async def test_connect_with_alias_and_sftp_subsystem(sshd: PrivateSSHD
                                                     ) -> None:
    prompter = Scripted()
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config)),
                          prompter)
    conn = await connector.connect()
    try:
        assert conn.get_extra_info("username") == sshd.user
        assert conn.get_extra_info("peername")[1] == sshd.port
        assert await sftp_version(conn) == 2
        assert await sftp_version(conn, "/usr/lib/openssh/sftp-server") == 2
    finally:
        conn.close()
        connector.close()
    assert prompter.asked == []
    assert connector.resolved is not None
    assert connector.resolved.hostname == "127.0.0.1"


@pytest.mark.parametrize(("spec", "chosen"), [
    (None, "aes128-gcm@openssh.com"),
    ("chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
     "aes256-gcm@openssh.com"),
    ("chacha20-poly1305@openssh.com,aes256-ctr",
     "chacha20-poly1305@openssh.com"),
    ("-aes128-gcm@openssh.com", "aes256-gcm@openssh.com"),
])
async def test_aes_gcm_is_preferred_among_the_ciphers_allowed(
        sshd: PrivateSSHD, spec: str | None, chosen: str) -> None:
    options = [] if spec is None else [f"Ciphers={spec}"]
    connector = Connector(SSHTarget(HOST_ALIAS, options=options,
                                    config_file=str(sshd.ssh_config)),
                          Scripted())
    conn = await connector.connect()
    try:
        assert conn.get_extra_info("send_cipher") == chosen
        assert conn.get_extra_info("recv_cipher") == chosen
    finally:
        conn.close()
        connector.close()


def test_ciphers_value_read_as_ssh_does() -> None:
    defaults = preferred_ciphers()
    assert defaults[:2] == ["aes128-gcm@openssh.com",
                            "aes256-gcm@openssh.com"]
    assert preferred_ciphers("aes256-ctr,aes*-gcm@openssh.com") == [
        "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes256-ctr"]
    assert preferred_ciphers("^aes256-ctr")[:3] == [
        "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes256-ctr"]
    assert preferred_ciphers("+aes128-cbc")[-1] == "aes128-cbc"
    assert "aes128-cbc" not in defaults
    assert preferred_ciphers("-chacha20*") == [
        a for a in defaults if not a.startswith("chacha20")]
    assert preferred_ciphers("no-such-cipher") == []


async def test_unknown_subsystem_like_sftp(sshd: PrivateSSHD, sftp_bin: str
                                           ) -> None:
    theirs = real_sftp(sftp_bin, sshd.ssh_config, [],
                       extra=["-s", "no-such-subsystem"])
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config)),
                          Scripted())
    conn = await connector.connect()
    try:
        with pytest.raises(ConnectError) as info:
            await open_sftp_channel(conn, "no-such-subsystem")
    finally:
        conn.close()
        connector.close()
    assert theirs.returncode == 255
    assert info.value.stderr == theirs.stderr


async def test_server_command_stderr_before_eof(
        sshd: PrivateSSHD, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config)),
                          Scripted())
    conn = await connector.connect()
    try:
        reader, writer = await open_sftp_channel(conn, "/no/such/server")
        writer.write(SFTP_INIT)
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.readexactly(5)
        # the remote shell's complaint reached our stderr first
        assert b"/no/such/server" in capfdbinary.readouterr().err
    finally:
        conn.close()
        connector.close()


async def test_concurrent_connections(sshd: PrivateSSHD) -> None:
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config)),
                          Scripted())
    conns = await asyncio.gather(*(connector.connect() for _ in range(4)))
    try:
        assert len({id(c) for c in conns}) == 4
        versions = await asyncio.gather(*(sftp_version(c) for c in conns))
        assert versions == [2, 2, 2, 2]
    finally:
        for conn in conns:
            conn.close()
        connector.close()


async def test_port_option_beats_port_flag(sshd: PrivateSSHD, sftp_bin: str
                                           ) -> None:
    closed = free_port()
    # -o Port comes before sftp's -P on ssh's command line: it wins
    await check_like_sftp(sftp_bin, sshd.ssh_config,
                          [f"Port={sshd.port}"], failed=False, port=closed)
    theirs = real_sftp(sftp_bin, sshd.ssh_config, [f"Port={closed}"],
                       extra=["-P", str(sshd.port)])
    ours = await our_stderr(sshd.ssh_config, [f"Port={closed}"],
                            port=sshd.port)
    assert ours == theirs.stderr
    assert ours == (f"ssh: connect to host 127.0.0.1 port {closed}: "
                    "Connection refused\r\nConnection closed\r\n")


async def test_closed_port_like_sftp(sshd: PrivateSSHD, sftp_bin: str
                                     ) -> None:
    out = await check_like_sftp(sftp_bin, sshd.ssh_config,
                                [f"Port={free_port()}"])
    assert "Connection refused" in out


@contextlib.contextmanager
def canned_server(payload: bytes) -> Iterator[int]:
    """A port whose connections get *payload*, then nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    kept: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                kept.append(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in kept:
            conn.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that never sends a version line."""
    with canned_server(b"") as port:
        yield port


@pytest.fixture
def canned_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port whose connections get the test's bytes, then nothing."""
    with canned_server(request.param) as port:
        yield port


async def test_a_silent_server_times_out_in_the_banner_exchange_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, silent_port: int) -> None:
    """ConnectTimeout bounds the connect and the server's version line
    together, as ssh's does (it used to bound neither: an interactive
    session waited for ever)."""
    options = [f"Port={silent_port}", "ConnectTimeout=1"]
    started = time.monotonic()
    ours = await asyncio.wait_for(our_stderr(sshd.ssh_config, options), 10)
    assert 1 <= time.monotonic() - started < 3
    theirs = real_sftp(sftp_bin, sshd.ssh_config, options)
    assert (theirs.returncode, theirs.stderr) == (255, ours)
    assert ours == ("Connection timed out during banner exchange\r\n"
                    f"Connection to 127.0.0.1 port {silent_port} timed out"
                    "\r\nConnection closed\r\n")
    quiet = ["LogLevel=ERROR", *options]     # the second line is INFO
    assert await our_stderr(sshd.ssh_config, quiet) == \
        real_sftp(sftp_bin, sshd.ssh_config, quiet).stderr


def on_a_terminal(program: list[str], args: list[str], home: Path
                  ) -> tuple[int | None, bytes, float]:
    """Run an interactive session to its end: status, what it showed,
    and how long it took (pexpect gives up after 15 s)."""
    pexpect = pytest.importorskip("pexpect")
    started = time.monotonic()
    child = pexpect.spawn(program[0], [*program[1:], *args],
                          env={**os.environ, "HOME": str(home)}, timeout=15)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before, time.monotonic() - started


OURS = [sys.executable, "-m", "psftp_shell"]


def test_an_interactive_session_ends_at_connect_timeout_too(
        sshd: PrivateSSHD, silent_port: int, tmp_path: Path) -> None:
    """No prompt can come before the version line, so an interactive
    session is bounded there as ssh is (and as a batch run always was)."""
    status, shown, seconds = on_a_terminal(OURS, [
        "-F", str(sshd.ssh_config), "-o", f"Port={silent_port}", "-o",
        "ConnectTimeout=1", HOST_ALIAS], tmp_path)
    assert (status, seconds < 5) == (255, True)
    assert b"Connection timed out during banner exchange" in shown


@pytest.mark.parametrize("canned_port", [
    b"SSH-2.0-" + b"x" * 9000 + b"\r\n",
    b"not a version\r\n" * 1100,
], ids=["long-line", "too-many-lines"], indirect=True)
async def test_what_comes_before_a_version_line_is_refused_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, canned_port: int) -> None:
    """ssh's words, not asyncssh's "Received disconnect" (no server
    sent one)."""
    options = [f"Port={canned_port}", "ConnectTimeout=5"]
    ours = await asyncio.wait_for(our_stderr(sshd.ssh_config, options), 10)
    theirs = real_sftp(sftp_bin, sshd.ssh_config, options)
    assert (theirs.returncode, theirs.stderr) == (255, ours)
    assert ours.startswith("kex_exchange_identification: ")
    assert f"port {canned_port}: invalid format\r\n" in ours


@pytest.mark.parametrize("canned_port", [b"SSH-2.0-OpenSSH_9.2\r\n"],
                         ids=["silent-after-version"], indirect=True)
def test_a_login_gone_silent_ends_at_the_server_alive_bound_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, canned_port: int,
        tmp_path: Path) -> None:
    """After its version line, ssh waits ServerAliveInterval x
    ServerAliveCountMax seconds for each packet of the login, and so do
    we now; an interactive session used to wait for ever."""
    args = ["-F", str(sshd.ssh_config), "-o", f"Port={canned_port}", "-o",
            "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
            HOST_ALIAS]
    theirs = on_a_terminal([sftp_bin], args, tmp_path)
    ours = on_a_terminal(OURS, args, tmp_path)
    assert ours[:2] == theirs[:2]
    assert ours[0] == 255 and ours[2] < 5
    assert f"port {canned_port} timed out".encode() in ours[1]


def test_a_pipe_broken_after_the_version_line_is_a_closed_connection(
        ) -> None:
    """The fault campaign's seed 131, trial 132: the server hung up in
    the middle of the login and the next write failed; that read "ssh:
    connect to host 127.0.0.1 port N: Broken pipe"."""
    target = types.SimpleNamespace(hostname="127.0.0.1", port=2222)
    words = describe_failure(BrokenPipeError(32, "Broken pipe"),
                             target, "127.0.0.1")  # type: ignore[arg-type]
    assert words == [(LogLevel.FATAL,
                      "Connection closed by 127.0.0.1 port 2222")]


async def test_unknown_key_strict_yes_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(tmp_path / "kh"))
    out = await check_like_sftp(sftp_bin, config, [])
    assert out.endswith("and you have requested strict checking.\r\n"
                        "Host key verification failed.\r\n"
                        "Connection closed\r\n")
    assert not (tmp_path / "kh").exists()


async def test_accept_new_records_key(sshd: PrivateSSHD, sftp_bin: str,
                                      tmp_path: Path) -> None:
    known = tmp_path / "kh"
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known),
                            StrictHostKeyChecking="accept-new")
    out = await our_stderr(config, [])
    assert out == (f"Warning: Permanently added '[127.0.0.1]:{sshd.port}' "
                   "(ED25519) to the list of known hosts.\r\n")
    host_pub = Path(str(sshd.host_key) + ".pub").read_text().split()
    assert known.read_text() == (f"[127.0.0.1]:{sshd.port} {host_pub[0]} "
                                 f"{host_pub[1]}\n")
    # the recorded key now satisfies ssh itself under strict checking
    await check_like_sftp(sftp_bin, config, ["StrictHostKeyChecking=yes"],
                          failed=False)


async def test_accept_new_hashed(sshd: PrivateSSHD, sftp_bin: str,
                                 tmp_path: Path) -> None:
    known = tmp_path / "kh"
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known),
                            StrictHostKeyChecking="accept-new",
                            HashKnownHosts="yes")
    await our_stderr(config, [])
    line = known.read_text()
    assert line.startswith("|1|") and "127.0.0.1" not in line
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known)],
        capture_output=True, text=True, check=False)
    assert found.returncode == 0 and "found: line 1" in found.stdout
    await check_like_sftp(sftp_bin, config, ["StrictHostKeyChecking=yes"],
                          failed=False)


async def test_changed_key_refused_like_sftp(sshd: PrivateSSHD,
                                             sftp_bin: str,
                                             tmp_path: Path) -> None:
    known = tmp_path / "kh"
    other = asyncssh.generate_private_key("ssh-ed25519")
    known.write_text(f"[127.0.0.1]:{sshd.port} "
                     + other.export_public_key().decode())
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known))
    for mode in ("yes", "accept-new", "ask"):
        out = await check_like_sftp(sftp_bin, config,
                                    [f"StrictHostKeyChecking={mode}"])
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in out
        assert f"Offending ED25519 key in {known}:1" in out
    # no: the warning, then a connection without password methods
    out = await check_like_sftp(sftp_bin, config,
                                ["StrictHostKeyChecking=no"], failed=False)
    assert "Password authentication is disabled" in out
    assert known.read_text().count("\n") == 1


async def test_changed_key_of_other_type_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    other = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    known.write_text(f"[127.0.0.1]:{sshd.port} "
                     + other.export_public_key().decode())
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known))
    out = await check_like_sftp(sftp_bin, config,
                                ["StrictHostKeyChecking=accept-new"])
    assert "Offending ECDSA key" in out


async def test_revoked_key_like_sftp(sshd: PrivateSSHD, sftp_bin: str,
                                     tmp_path: Path) -> None:
    known = tmp_path / "kh"
    host_pub = Path(str(sshd.host_key) + ".pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{sshd.port} {host_pub[0]} {host_pub[1]}\n"
                     f"@revoked * {host_pub[0]} {host_pub[1]}\n")
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known))
    out = await check_like_sftp(sftp_bin, config, [])
    assert "REVOKED HOST KEY DETECTED" in out


async def test_key_known_without_port_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    host_pub = Path(str(sshd.host_key) + ".pub").read_text().split()
    known.write_text(f"127.0.0.1 {host_pub[0]} {host_pub[1]}\n")
    config = derived_config(sshd, tmp_path / "cfg",
                            UserKnownHostsFile=str(known))
    assert await check_like_sftp(sftp_bin, config, [], failed=False) == ""


async def test_wrong_identity_like_sftp(sshd: PrivateSSHD, sftp_bin: str,
                                        tmp_path: Path) -> None:
    wrong = tmp_path / "id_wrong"
    key = asyncssh.generate_private_key("ssh-ed25519")
    wrong.write_bytes(key.export_private_key())
    wrong.chmod(0o600)
    config = derived_config(sshd, tmp_path / "cfg", IdentityFile=str(wrong))
    out = await check_like_sftp(sftp_bin, config, [])
    assert out == (f"{sshd.user}@127.0.0.1: Permission denied "
                   "(publickey).\r\nConnection closed\r\n")


async def test_log_levels_like_sftp(sshd: PrivateSSHD, sftp_bin: str
                                    ) -> None:
    closed = f"Port={free_port()}"
    for level in ("QUIET", "FATAL", "ERROR"):
        await check_like_sftp(sftp_bin, sshd.ssh_config,
                              [closed, f"LogLevel={level}"])
    theirs = real_sftp(sftp_bin, sshd.ssh_config, [closed], extra=["-q"])
    assert await our_stderr(sshd.ssh_config, [closed],
                            quiet=True) == theirs.stderr


async def test_bad_and_unsupported_options_like_sftp(
        sshd: PrivateSSHD, sftp_bin: str) -> None:
    out = await check_like_sftp(sftp_bin, sshd.ssh_config, ["NoSuchThing=1"])
    assert out.startswith("command-line: line 0: Bad configuration option")
    await check_like_sftp(sftp_bin, sshd.ssh_config,
                          ["RSAAuthentication=yes"], failed=False)
    await check_like_sftp(sftp_bin, sshd.ssh_config, ["Cipher=blowfish"],
                          failed=False)


async def test_unnegotiable_cipher_like_sftp(sshd: PrivateSSHD,
                                             sftp_bin: str) -> None:
    # sshd drops the connection as soon as it sees our offer; now and
    # then the reset beats its KEXINIT to us, so allow a second try
    for _ in range(3):
        out = await our_stderr(sshd.ssh_config, ["Ciphers=aes128-cbc"])
        if not out.startswith("Connection closed by"):
            break
    assert out == real_sftp(sftp_bin, sshd.ssh_config,
                            ["Ciphers=aes128-cbc"]).stderr
    assert out.startswith(f"Unable to negotiate with 127.0.0.1 port "
                          f"{sshd.port}: no matching cipher found.")


async def test_proxy_jump_through_sshd(sshd: PrivateSSHD, sftp_bin: str,
                                       tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    text = sshd.ssh_config.read_text()
    config.write_text(text + text.replace(f"Host {HOST_ALIAS}",
                                          "Host behind"))
    connector = Connector(SSHTarget("behind", config_file=str(config),
                                    jump=HOST_ALIAS), Scripted())
    conns = await asyncio.gather(connector.connect(), connector.connect())
    try:
        assert [await sftp_version(c) for c in conns] == [2, 2]
    finally:
        for conn in conns:
            conn.close()
        connector.close()
    # a jump host that cannot be reached fails as ssh -J does
    closed = free_port()
    theirs = real_sftp(sftp_bin, config, [], host="behind",
                       extra=["-J", f"127.0.0.1:{closed}"])
    ours = await our_stderr(config, [], host="behind",
                            jump=f"127.0.0.1:{closed}")
    assert ours.encode() == proxy_race_settled(theirs.stderr.encode(),
                                               ours.encode())


async def test_missing_config_file_like_sftp(sftp_bin: str,
                                             tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    theirs = real_sftp(sftp_bin, missing, [])
    assert await our_stderr(missing, []) == theirs.stderr


async def test_failure_is_shared_by_waiting_connections(
        sshd: PrivateSSHD) -> None:
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config),
                                    options=[f"Port={free_port()}"]),
                          Scripted())
    results = await asyncio.gather(
        *(connector.connect() for _ in range(3)), return_exceptions=True)
    connector.close()
    assert all(isinstance(r, ConnectError) for r in results)
    assert len({str(r) for r in results}) == 1
    assert isinstance(results[0], FatalError)


def test_command_line_config_order(tmp_path: Path) -> None:
    ident = tmp_path / "id"
    ident.write_text("x")
    lines, notes = command_line_config(SSHTarget(
        "h", port=2222, user="bob", identities=[str(ident),
                                                str(tmp_path / "gone")],
        options=["Port 1", "ControlMaster=auto", "ForwardX11 yes",
                 "UsePrivilegedPort yes"],
        compression=True, family=6, cipher="aes256-ctr", batch_mode=True))
    assert lines == [
        "Ciphers aes256-ctr", "Compression yes", "AddressFamily inet6",
        "BatchMode yes", f"IdentityFile {ident}", "Port 1",
        "ControlMaster auto", "ForwardX11 yes", "ForwardAgent no",
        "Port 2222", "User bob"]
    texts = [text for _, text in notes]
    assert texts == [
        f"Warning: Identity file {tmp_path / 'gone'} not accessible: "
        "No such file or directory.\n",
        'Warning: option "ControlMaster" is not supported by psftp-shell; '
        "ignored."]


def test_bad_option_text() -> None:
    with pytest.raises(ConnectError) as info:
        command_line_config(SSHTarget("h", options=["Bogus yes"]))
    assert str(info.value) == ("command-line: line 0: Bad configuration "
                               "option: bogus\nConnection closed")


def test_parse_jump() -> None:
    assert parse_jump("host") == (None, "host", None)
    assert parse_jump("me@host:2022") == ("me", "host", 2022)
    assert parse_jump("ssh://me@[::1]:2022") == ("me", "::1", 2022)
    with pytest.raises(ConnectError):
        parse_jump("host:port")


def test_verbose_logs_asyncssh_debug(sshd: PrivateSSHD) -> None:
    code = (
        "import asyncio, sys\n"
        "from psftp_shell.ssh.connect import Connector, SSHTarget\n"
        "from psftp_shell.ssh.prompter import BatchPrompter\n"
        "async def main():\n"
        f"    c = Connector(SSHTarget({HOST_ALIAS!r}, verbose=2,\n"
        f"        config_file={str(sshd.ssh_config)!r}), BatchPrompter())\n"
        "    (await c.connect()).close()\n"
        "    c.close()\n"
        "asyncio.run(main())\n")
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "debug2: " in result.stderr
    quiet = subprocess.run([sys.executable, "-c",
                            code.replace("verbose=2", "verbose=0")],
                           capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""


async def test_missing_identity_like_sftp(sshd: PrivateSSHD, sftp_bin: str,
                                          tmp_path: Path) -> None:
    config = derived_config(sshd, tmp_path / "cfg",
                            IdentityFile=f"{tmp_path / 'gone'}\n"
                                         f"  IdentityFile {sshd.identity}")
    out = await check_like_sftp(sftp_bin, config, [], failed=False)
    assert out.startswith("no such identity: ")


@pytest.mark.parametrize("client", ["sftp", "1", "3"])
def test_the_default_login_name_is_the_password_databases(
        sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path,
        client: str) -> None:
    """With no User anywhere, ssh logs in as getpwuid's name, whatever
    ``$USER`` and ``$LOGNAME`` say (and so do the ``-n`` streams)."""
    config = derived_config(sshd, tmp_path / "cfg", User="")
    argv = client_argv(client, sftp_bin)
    (tmp_path / "remote").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "remote" / name).write_bytes(name.encode() * 9)
    env = dict(os.environ, USER="psftp-nobody", LOGNAME="psftp-nobody")
    done = subprocess.run(
        [*argv, "-F", str(config), "-b", "-", HOST_ALIAS],
        input=f"get {tmp_path}/remote/* {tmp_path}\n".encode(),
        capture_output=True, env=env, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    assert (tmp_path / "c").read_bytes() == b"c" * 9
