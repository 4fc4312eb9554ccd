"""ssh options on the command line, psftp-shell against OpenSSH's sftp.

Each case runs both programs in batch mode against the private sshd with
the same arguments and compares exit status, stdout and stderr byte for
byte.  A ProxyCommand logs the arguments it was given (after ssh's
``%`` expansion) and relays to the sshd, so the logs are compared too.
The Host alias has its own HostName, Port and User, so that expanding
a token from the command line instead of the config shows.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.ssh.kex_probe import (
    CMP_CS,
    ENC_CS,
    HOST_KEY,
    KEX,
    MAC_CS,
    unmatched,
)
from tests.twins import PSFTP, Run, proxy_race_settled, run

pytestmark = [pytest.mark.sshd, pytest.mark.usefixtures("clean_ssh_env")]

RELAY = """\
import os, socket, sys, threading
with open(os.environ["PROXY_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    try:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=up, daemon=True).start()
try:
    while data := sock.recv(65536):
        os.write(1, data)
except OSError:
    pass
"""


class Both:
    """Runs a command line through sftp and psftp-shell; keeps logs."""

    def __init__(self, sshd: PrivateSSHD, sftp_bin: str, tmp: Path) -> None:
        self.sshd = sshd
        self.sftp_bin = sftp_bin
        self.tmp = tmp
        self.relay = tmp / "relay.py"
        self.relay.write_text(RELAY)
        self.log = tmp / "proxy.log"
        self.config = sshd.ssh_config

    @property
    def proxy(self) -> str:
        """A Python ProxyCommand that logs its arguments."""
        return f"{sys.executable} {self.relay}"

    def one(self, program: list[str], args: list[str], stdin: bytes
            ) -> tuple[Run, str]:
        self.log.write_text("")
        result = run([*program, "-F", str(self.config), "-b", "-",
                      *args], stdin=stdin,
                     env={"PROXY_LOG": str(self.log)}, timeout=60)
        return result, self.log.read_text()

    def check(self, args: list[str], stdin: bytes = b"pwd\n",
              same_log: bool = True) -> tuple[Run, str]:
        """Assert both programs do the same; return sftp's run and log.

        Without *same_log*, the ProxyCommand may run more often.
        """
        for _ in range(5):
            theirs = self.one([self.sftp_bin], args, stdin)
            # when its ssh fails at once, sftp can die of SIGPIPE writing
            # to it before it reports anything (a race on a busy machine)
            if theirs[0].status != -signal.SIGPIPE:
                break
        ours = self.one(PSFTP, args, stdin)
        settled = proxy_race_settled(theirs[0].stderr, ours[0].stderr)
        assert ours[0] == dataclasses.replace(theirs[0], stderr=settled)
        if same_log:
            assert ours[1] == theirs[1]
        return theirs


def test_the_proxy_race_is_the_only_difference_forgiven() -> None:
    head = b"/bin/bash: line 1: /nonexistent/cmd: No such file or directory\n"
    eof = (b"kex_exchange_identification: Connection closed by remote "
           b"host\r\n")
    info = b"Connection closed by UNKNOWN port 65535\r\n"
    epipe = (b"banner exchange: Connection to UNKNOWN port 65535: Broken "
             b"pipe\r\n")
    tail = b"Connection closed\r\n"
    ours = head + eof + info + tail                     # LogLevel INFO
    assert proxy_race_settled(head + eof + info + tail, ours) == ours
    assert proxy_race_settled(head + epipe + tail, ours) == ours
    ours_error = head + eof + tail                      # LogLevel ERROR
    assert proxy_race_settled(head + tail, ours_error) == ours_error
    # anything else still differs
    assert proxy_race_settled(head + tail, ours) != ours
    assert proxy_race_settled(tail, ours_error) != ours_error
    assert proxy_race_settled(head + epipe, ours) != ours


@pytest.fixture
def both(sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> Both:
    return Both(sshd, sftp_bin, tmp_path)


def test_proxy_command_tokens_with_alias(both: Both) -> None:
    result, log = both.check(
        ["-o", f"ProxyCommand={both.proxy} %h %p %r %n %%", HOST_ALIAS])
    assert result.status == 0 and result.stderr == b""
    assert log == (f"127.0.0.1 {both.sshd.port} {both.sshd.user} "
                   f"{HOST_ALIAS} %\n")


def test_proxy_command_tokens_with_address(both: Both) -> None:
    sshd = both.sshd
    result, log = both.check(
        ["-o", f"ProxyCommand={both.proxy} %h %p %r %n",
         "-o", f"UserKnownHostsFile={sshd.known_hosts}",
         "-o", f"IdentityFile={sshd.identity}",
         "-P", str(sshd.port), f"{sshd.user}@127.0.0.1"])
    assert result.status == 0
    assert log == f"127.0.0.1 {sshd.port} {sshd.user} 127.0.0.1\n"


def test_proxy_command_through_ssh_w(both: Both) -> None:
    ssh = f"ssh -F {both.sshd.ssh_config} -W %h:%p {HOST_ALIAS}"
    result, _ = both.check(["-o", f"ProxyCommand={ssh}", HOST_ALIAS])
    assert result.status == 0


@pytest.mark.parametrize("level", ["INFO", "ERROR"])
def test_proxy_command_that_cannot_run(both: Both, level: str) -> None:
    result, _ = both.check(["-o", "ProxyCommand=/nonexistent/cmd",
                            "-o", f"LogLevel={level}", HOST_ALIAS])
    assert result.status == 255
    assert b"/nonexistent/cmd" in result.stderr      # the shell's words


@pytest.mark.parametrize("option", [
    "ProxyCommand=x %z", "IdentityFile=/x/%z", "IdentityFile=/x/${NOPE_X}",
    "UserKnownHostsFile=/x/%C%z"])
def test_bad_token_like_ssh(both: Both, option: str) -> None:
    os.environ.pop("NOPE_X", None)
    result, _ = both.check(["-o", option, HOST_ALIAS])
    assert result.status == 255


def test_jump_host_loop(both: Both) -> None:
    sshd = both.sshd
    result, _ = both.check(["-J", f"127.0.0.1:{sshd.port}", HOST_ALIAS])
    assert result.status == 255
    assert result.stderr.startswith(b"jumphost loop via 127.0.0.1\r\n")
    result, _ = both.check(["-J", f"{sshd.user}@127.0.0.1:{sshd.port}",
                            "-P", str(sshd.port), "127.0.0.1"])
    assert result.status == 255


def test_missing_identity_warning_ends_in_newline(both: Both) -> None:
    result, _ = both.check(["-i", "/nonexistent", HOST_ALIAS])
    assert result.stderr.startswith(
        b"Warning: Identity file /nonexistent not accessible: No such file "
        b"or directory.\n")


@pytest.mark.parametrize("args", [
    ["-c", "nonexist"], ["-c", "aes128-ctr,nonexist"], ["-c", "-aes128-ctr"],
    ["-c", "+aes128-ctr"], ["-o", "Ciphers=nonexist"],
    ["-o", "Ciphers=aes*"], ["-o", "Ciphers=-nonexist"],
    ["-o", "Ciphers=aes128-ctr,,nonexist"], ["-o", "MACs=hmac-sha1,nope"],
    ["-o", "KexAlgorithms=+curve*"], ["-o", "HostKeyAlgorithms=nomatch*"],
    ["-o", "HostKeyAlgorithms=+ssh-ed*"], ["-o", "PubkeyAcceptedAlgorithms=x"],
    ["-o", "CASignatureAlgorithms=x"], ["-q", "-o", "KexAlgorithms=x"],
])
def test_algorithm_lists_checked_like_ssh(both: Both, args: list[str]
                                          ) -> None:
    both.check([*args, HOST_ALIAS])


@pytest.mark.parametrize("option", ["Ciphers", "KexAlgorithms"])
def test_bad_algorithm_in_config_file(both: Both, option: str) -> None:
    both.config = both.tmp / "cfg"
    both.config.write_text(f"Host {HOST_ALIAS}\n  {option} nonexist\n"
                           + both.sshd.ssh_config.read_text())
    result, _ = both.check([HOST_ALIAS])
    assert result.status == 255


@pytest.mark.parametrize("args", [
    ["-c", "3des-cbc"], ["-o", "KexAlgorithms=diffie-hellman-group1-sha1"],
    ["-o", "HostKeyAlgorithms=ssh-dss"], ["-c", "aes128-ctr", "-o",
                                          "MACs=hmac-md5"],
])
@pytest.mark.parametrize("proxy", [False, True])
def test_nothing_in_common_like_ssh(both: Both, args: list[str],
                                    proxy: bool) -> None:
    if proxy:
        args = ["-o", f"ProxyCommand={both.proxy} %h %p", *args]
    for _ in range(3):          # the server's hang-up races our reading
        # the server's offer is read again, through the proxy if any
        result, _ = both.check([*args, HOST_ALIAS], same_log=False)
        assert result.status == 255
        assert result.stderr.startswith(b"Unable to negotiate with ")


def test_unmatched_in_ssh_order() -> None:
    theirs = [["k1"], ["h1"], ["aes128-gcm@openssh.com", "c1"],
              ["aes128-gcm@openssh.com", "c1"], ["m1"], ["m1"], ["none"],
              ["none"], [], []]
    ours = {KEX: ["k1"], ENC_CS: ["aes128-gcm@openssh.com"],
            MAC_CS: ["m2"], CMP_CS: ["none"]}
    assert unmatched(ours, theirs) is None          # AEAD: no MAC needed
    assert unmatched({**ours, ENC_CS: ["c1"]}, theirs) == ("MAC", "m1")
    assert unmatched({**ours, KEX: ["k2"], ENC_CS: ["c2"]}, theirs) == (
        "key exchange method", "k1")
    assert unmatched({**ours, HOST_KEY: ["h2"], ENC_CS: ["c2"]}, theirs) \
        == ("host key type", "h1")
    assert unmatched({**ours, ENC_CS: ["c2"]}, theirs) == (
        "cipher", "aes128-gcm@openssh.com,c1")
