"""Bad ssh option values, psftp-shell against OpenSSH's sftp.

Each value goes to both programs with ``-o`` or in a config file
(``-F``, alone, in a ``Host *`` block, in a block for another host, two
bad lines); the exit status and stderr must be the same.  ssh stops
before it connects, so no server is needed.  sftp's own
``\\rConnection closed.  \\n`` (its SIGCHLD handler, racing ssh's exit)
is left out of both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.twins import Run, psftp, sftp

pytestmark = pytest.mark.usefixtures("clean_ssh_env")

OPTIONS = [
    "Port=abc", "Port=0", "Port=70000", "Port=-1", "Port=", "Port",
    "Port==22", "=Port", "User=", "User=a b", 'User="a', "IdentityFile=",
    # tokens (misc.c's vdollar_percent_expand; IdentityFile's errors come
    # after the connection: test_match_lines)
    "ProxyCommand=nc %h %p %", "ProxyCommand=nc %h %y",
    # options psftp-shell does not use, checked as ssh checks them
    "EscapeChar=~~", "EscapeChar=^1", "EscapeChar=\u00e9", "EscapeChar=^~x",
    "SendEnv=A=b", 'SendEnv=LANG ""', "SetEnv=A", "SetEnv=A=1 B",
    "ControlPersist=Yes", "ControlPersist=10x", 'ControlPersist=""',
    "TunnelDevice=any:x", "TunnelDevice=2147483646", "TunnelDevice=-1",
    "TunnelDevice=1:2:3", "TunnelDevice=:1",
    "CanonicalDomains=Ex..ample.com", "CanonicalDomains=-a",
    "CanonicalDomains=a none", "CanonicalDomains=a%b", 'CanonicalDomains=a ""',
    "CanonicalDomains=\u00e9.com", "CanonicalizePermittedCNAMEs=Ab",
    "CanonicalizePermittedCNAMEs=*.A:", "CanonicalizePermittedCNAMEs=* none",
    "StreamLocalBindMask=8", "StreamLocalBindMask=1000",
    "StreamLocalBindMask=-1", "StreamLocalBindMask=x7",
    # ssh's log escapes what it shows of a value (log.c's strnvis)
    "IPQoS=\u00e9", "IPQoS=a\\b", "Ciphers=\u00e9",
    "BatchMode=maybe", "BatchMode", "StrictHostKeyChecking=maybe",
    "Compression=maybe", "Compression=", "IdentitiesOnly=maybe",
    "PasswordAuthentication=maybe", "CheckHostIP=maybe",
    "TCPKeepAlive=maybe", "HashKnownHosts=maybe", "ControlMaster=maybe",
    "VerifyHostKeyDNS=maybe", "RequestTTY=maybe",
    "CanonicalizeHostname=maybe", "ConnectTimeout=abc", "ConnectTimeout=-1",
    "ConnectTimeout=99999999999", "ConnectTimeout=1x", "ConnectTimeout=",
    "ServerAliveInterval=abc", "ServerAliveInterval=-5",
    "ServerAliveInterval=2147483648", "ServerAliveInterval=2147483647s1s",
    "ServerAliveInterval=35791395m", "ServerAliveInterval=1h-",
    'ServerAliveInterval="5 "', "ConnectTimeout=2147483648",
    "ServerAliveCountMax=abc", "ServerAliveCountMax=-1",
    "ConnectionAttempts=abc", "ConnectionAttempts=0",
    "NumberOfPasswordPrompts=abc", "LogLevel=loud", "AddressFamily=inet5",
    "Ciphers=foo", "MACs=foo", "KexAlgorithms=foo", "HostKeyAlgorithms=foo",
    "UserKnownHostsFile=", "ProxyJump=a@", "ProxyJump=host:abc",
    "ProxyJump=-b", "ProxyJump=a,b;c", "RekeyLimit=abc", "Foo=bar", "Foo",
    "-b",
    "IPQoS=foo", "IPQoS=af11 foo", "IPQoS=af11 cs1 ef", "IPQoS=256",
    "IPQoS=-1", "IPQoS=0x", "IPQoS=08", "IPQoS=1e1", "IPQoS=#x", 'IPQoS=""',
    "FingerprintHash=foo", "FingerprintHash=md5 x", 'FingerprintHash=""',
    "AddKeysToAgent=foo", "AddKeysToAgent=none", "AddKeysToAgent=confirm x",
    "AddKeysToAgent=confirm 1h x", "AddKeysToAgent=confirm 99999999999",
    "AddKeysToAgent=yes 1h", "AddKeysToAgent=1h x", 'AddKeysToAgent=""',
    "AddKeysToAgent=#x",
    "LocalForward=8080", "LocalForward=8080 localhost",
    "LocalForward=0 localhost:80", "LocalForward=abc localhost:80",
    "LocalForward=8080 localhost:0", "LocalForward=8080 localhost:80 x",
    'LocalForward=8080 ""', 'LocalForward="" a:2', "LocalForward=1 c:2:3:4",
    "LocalForward=[a:1 b:2", "LocalForward=1 [a]x:2", "LocalForward=1 c:",
    "LocalForward=1\\\\ c:2", "LocalForward=${PSFTP_UNSET}:1 a:2",
    "LocalForward=${A:1 a:2", "LocalForward=${}:1 a:2",
    "LocalForward=/x /" + "y" * 120, "RemoteForward=abc",
    "RemoteForward=8080 localhost", "DynamicForward=abc", "DynamicForward=0",
    "DynamicForward=a:b:c", "DynamicForward=1080 x", "DynamicForward=\\\\",
    "LocalForward=8080 " + "h" * 300 + ":80",
    "LocalForward=8080 " + "\u00e9" * 150 + ":80",
    "LocalForward=" + "h" * 250 + ":1 a:2",
    "RemoteForward=" + "h" * 300 + ":1",
    "DynamicForward=" + "h" * 300 + ":1080",
]
COMMAND_LINES = [
    ["-o", "-b", "x"], ["-J", "-b", "x"], ["-J", "a;b"], ["-J", "a@"],
    ["-J", "a/22"], ["-J", "u@a/22,b"],
    ["-o", "IgnoreUnknown=Foo", "-o", "Foo=bar", "-o", "Port=abc"],
    ["-q", "-o", "Port=abc"],
    ["-o", "ServerAliveInterval=1h", "-o", "Port=1"],
    ["-o", "ConnectTimeout=1m30s", "-o", "Port=1"],
    ["-o", "ServerAliveInterval=2147483647", "-o", "Port=1"],
    ["-o", "ServerAliveInterval=2147483646s1s", "-o", "Port=1"],
    ["-o", "ServerAliveInterval=+5", "-o", "Port=1"],
    ["-o", "ServerAliveInterval=-0", "-o", "Port=1"],
    ["-o", 'ServerAliveInterval="1h +5"', "-o", "Port=1"],
    ["-o", "ConnectTimeout=2147483647", "-o", "Port=1"],
    ["-o", "LocalForward=8080 " + "h" * 240 + ":80", "-o", "Port=1"],
    ["-o", "DynamicForward=" + "h" * 240 + ":1080", "-o", "Port=1"],
    ["-o", "DynamicForward=1:\\\\", "-o", "LocalForward=1 a\\/b:2",
     "-o", "Port=1"],
    ["-o", "Port=abc", "-J", "a@"], ["-J", "a@", "-o", "Port=abc"],
    ["-o", "Port=abc", "-c", "foo"], ["-c", "foo", "-o", "Port=abc"],
    ["-J", "a@", "-c", "foo"], ["-c", "foo", "-J", "a@"],
    ["-o", "Port=1", "-c", "foo", "-c", "aes128-ctr"],
    ["-J", "127.0.0.1:1", "-J", "127.0.0.1:1"],
    ["-J", "127.0.0.1:1", "-J", "a@"], ["-J", "a@", "-J", "127.0.0.1:1"],
    ["-o", "ProxyCommand=false", "-J", "127.0.0.1:1"],
    ["-o", "ProxyJump=none", "-J", "127.0.0.1:1"],
    ["-o", "ProxyCommand=none", "-o", "ProxyJump=127.0.0.1:1", "-J", "a"],
    ["-o", "Foo=bar", "-J", "a@"], ["-J", "127.0.0.1:1", "-o", "ProxyJump=a@"],
]
FILES = {
    "port": "Port abc\n", "port 0": "Port 0\n", "user": "User\n",
    "identity": "IdentityFile\n", "batch": "BatchMode maybe\n",
    "strict": "StrictHostKeyChecking maybe\n",
    "compression": "Compression maybe\n",
    "timeout": "ConnectTimeout abc\n", "alive": "ServerAliveInterval abc\n",
    "count": "ServerAliveCountMax abc\n",
    "attempts": "ConnectionAttempts abc\n",
    "prompts": "NumberOfPasswordPrompts abc\n", "log": "LogLevel loud\n",
    "family": "AddressFamily inet5\n", "kex": "KexAlgorithms foo\n",
    "hostkeys": "HostKeyAlgorithms foo\n",
    "known hosts": "UserKnownHostsFile\n", "jump": "ProxyJump a@\n",
    "ignored": "IgnoreUnknown Foo\nFoo bar\nPort x\n",
    "gssapi kex and bad": "GSSAPIKeyExchange yes\nPort abc\n",
    "host *": "Host *\n  Port abc\n",
    "host * batch": "Host *\n    BatchMode maybe\n",
    "other host": "Host other\n  Port abc\n",
    "two bad": "Port abc\nBatchMode maybe\n",
    "two bad host *": "Host *\n Port abc\n ConnectTimeout xyz\n",
    "unsupported and bad": "RSAAuthentication no\nPort abc\n",
    "times": "ServerAliveInterval 1h\nConnectTimeout 1m\nPort 1\n",
    "ipqos": "Host other\n  IPQoS af11 foo\n",
    "hash and agent": "FingerprintHash x\nAddKeysToAgent 1h x\n",
    "good ipqos, hash, agent": "IPQoS 0x10 -0\nIPQoS Af21 NONE\n"
    "FingerprintHash SHA1\nAddKeysToAgent confirm 1h\n"
    "AddKeysToAgent 90\nPort 1\n",
    "forwardings": "Host other\n LocalForward 8080\n RemoteForward abc\n"
    " DynamicForward 0\n",
    "good forwardings": "LocalForward 8080 localhost:80\nRemoteForward 0\n"
    "DynamicForward h:1080\nLocalForward /a /b\nLocalForward [::1]:1 "
    "[::1]:22\nRemoteForward h:0 /x\nLocalForward 1 a\\/b:2\n"
    "LocalForward a\\ b:1 c:2\nPort 1\n",
    "match unknown": "Match foo bar\n", "match no argument": "Match host\n",
    "match comment argument": "Match host a user #x\n",
    "match all and more": "Match all x\n", "match two then all":
    "Match host a user b all\n", "match nothing": "Match #x\n",
    "match empty": 'Match ""\n', "match bang": "Match !\n",
    "match later ssh": "Match localnetwork 10.0.0.0/8\n",
    "match empty word": 'Match host a "" user b\n',
    "match two bad": "Host other\nMatch foo\nMatch exec\nPort abc\n",
    "good matches": "Match all #x\nMatch !all # x\nMatch host a all\n"
    "Match canonical final\nMatch host a # c\nMatch host a \"\"\n"
    "Match all \"\"\nMatch Host a OriginalHost b LocalUser c User d\n"
    "Match host=a\nMatch all\nPort 1\n",
}


SIGPIPE_DEATH = -13
"""sftp's status when its ssh exited before sftp wrote to it: a race
(on a busy machine) that sftp's usual ``Connection closed``, exit 255,
wins almost always; the run is made again."""


def _settled(sftp_bin: str, args: list[str], cwd: Path) -> Run:
    """sftp's run with *args*, made again while it died of SIGPIPE."""
    for _ in range(5):
        theirs = sftp(sftp_bin, args, cwd=cwd)
        if theirs.status != SIGPIPE_DEATH:
            break
    return theirs


def _same(sftp_bin: str, args: list[str], cwd: Path) -> None:
    theirs = _settled(sftp_bin, [*args, "127.0.0.1"], cwd)
    ours = psftp([*args, "127.0.0.1"], cwd=cwd)

    assert (ours.status, _seen(ours.stderr)) == \
        (theirs.status, _seen(theirs.stderr))


def _seen(stderr: bytes) -> bytes:
    """*stderr* without sftp's racing ``Connection closed.`` line."""
    return stderr.replace(b"\rConnection closed.  \n", b"")


@pytest.mark.parametrize("option", OPTIONS)
def test_bad_option_value(option: str, sftp_bin: str,
                          tmp_path: Path) -> None:
    _same(sftp_bin, ["-o", option], tmp_path)


@pytest.mark.parametrize("args", COMMAND_LINES, ids=" ".join)
def test_bad_command_line(args: list[str], sftp_bin: str,
                          tmp_path: Path) -> None:
    _same(sftp_bin, args, tmp_path)


@pytest.mark.parametrize("name", FILES)
def test_bad_value_in_file(name: str, sftp_bin: str,
                           tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(FILES[name])
    _same(sftp_bin, ["-F", str(config)], tmp_path)
    _same(sftp_bin, ["-q", "-F", str(config)], tmp_path)


@pytest.mark.parametrize("keyword", [
    "Foo bar", "ObscureKeystrokeTiming no",
    "GSSAPIKexAlgorithms gss-group14-sha256-"])
def test_a_keyword_ssh_does_not_know_passes_in_a_file(
        keyword: str, sftp_bin: str, tmp_path: Path) -> None:
    """Unlike ssh 9.2's: a file may be written for a later ssh, or for
    a distribution's patches (RHEL's crypto policies).  A bad value of a
    known keyword after it is still reported as ssh reports it: as sftp
    does with the line commented out."""
    config = tmp_path / "config"
    config.write_text(f"#{keyword}\nPort abc\n")
    theirs = _settled(sftp_bin, ["-F", str(config), "127.0.0.1"], tmp_path)
    config.write_text(f"{keyword}\nPort abc\n")
    ours = psftp(["-F", str(config), "127.0.0.1"], cwd=tmp_path)
    assert b"line 2: Bad port 'abc'." in theirs.stderr
    assert (ours.status, _seen(ours.stderr)) == \
        (theirs.status, _seen(theirs.stderr))
