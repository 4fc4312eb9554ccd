"""The man page's table of ssh options, held against sftp.

Every option of :mod:`psftp_shell.ssh.option_table` goes through sftp and
psftp-shell with ``-o`` and a harmless value; both must end the same
(status, stdout, stderr), except that an option the table calls ignored
adds psftp-shell's warning in front of stderr.  Then ``%`` tokens, for
the Host alias (HostName, Port and User from the config) and for a
plain address: ProxyJump, LocalCommand (never run under sftp; a token
ssh does not know is refused), IdentityFile, and ControlPath with
``-S ssh`` (ssh itself opens the master socket at the expanded path).
ProxyCommand's tokens are in ``tests/test_sshoptions.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.ssh import ssh_config as sshconfig
from psftp_shell.ssh.option_table import NAMES, Treatment, rows
from tests.test_connect import our_stderr, real_sftp
from tests.test_sshoptions import Both

pytestmark = [pytest.mark.sshd, pytest.mark.usefixtures("clean_ssh_env")]

# A harmless value of each option, for the private sshd.
SAMPLES = {
 "AddKeysToAgent": "no", "AddressFamily": "inet", "AFSTokenPassing": "no",
 "BatchMode": "yes", "BindAddress": "127.0.0.1", "BindInterface": "lo",
 "CanonicalDomains": "example.invalid", "CanonicalizeFallbackLocal": "yes",
 "CanonicalizeHostname": "no", "CanonicalizeMaxDots": "1",
 "CanonicalizePermittedCNAMEs": "*.a.invalid:*.b.invalid",
 "CASignatureAlgorithms": "ssh-ed25519",
 "CertificateFile": "/nonexistent/cert",
 "ChallengeResponseAuthentication": "no", "CheckHostIP": "no",
 "Cipher": "blowfish", "Ciphers": "aes128-ctr", "ClearAllForwardings": "yes",
 "Compression": "yes", "CompressionLevel": "6", "ConnectionAttempts": "1",
 "ConnectTimeout": "10", "ControlMaster": "no", "ControlPath": "none",
 "ControlPersist": "no", "DSAAuthentication": "no", "DynamicForward": "1080",
 "EnableEscapeCommandline": "no", "EnableSSHKeySign": "no",
 "EscapeChar": "none", "ExitOnForwardFailure": "no", "FallBackToRsh": "no",
 "FingerprintHash": "sha256", "ForkAfterAuthentication": "no",
 "ForwardAgent": "no", "ForwardX11": "no", "ForwardX11Timeout": "10",
 "ForwardX11Trusted": "no", "GatewayPorts": "no",
 "GlobalKnownHostsFile": "/dev/null", "GlobalKnownHostsFile2": "/dev/null",
 "GSSAPIAuthentication": "no", "GSSAPIDelegateCredentials": "no",
 "HashKnownHosts": "no", "Host": "*",
 "HostbasedAcceptedAlgorithms": "ssh-ed25519", "HostbasedAuthentication": "no",
 "HostbasedKeyTypes": "ssh-ed25519", "HostKeyAlgorithms": "ssh-ed25519",
 "HostKeyAlias": "other-name", "HostName": "127.0.0.1",
 "IdentitiesOnly": "yes", "IdentityAgent": "none",
 "IdentityFile": "{identity}", "IdentityFile2": "{identity}",
 "IgnoreUnknown": "Foo", "Include": "/nonexistent/include", "IPQoS": "af21",
 "KbdInteractiveAuthentication": "no", "KbdInteractiveDevices": "pam",
 "KeepAlive": "yes", "KerberosAuthentication": "no",
 "KerberosTgtPassing": "no", "KexAlgorithms": "curve25519-sha256",
 "KnownHostsCommand": "none", "LocalCommand": "echo %h %n >&2",
 "LocalForward": "10022 127.0.0.1:22", "LogLevel": "ERROR",
 "LogVerbose": "kex.c:*:1000", "MACs": "hmac-sha2-256", "Match": "all",
 "NoHostAuthenticationForLocalhost": "no", "NumberOfPasswordPrompts": "1",
 "PasswordAuthentication": "no", "PermitLocalCommand": "yes",
 "PermitRemoteOpen": "any", "PKCS11Provider": "none", "Port": "{port}",
 "PreferredAuthentications": "publickey", "Protocol": "2",
 "ProxyCommand": "none", "ProxyJump": "none", "ProxyUseFdpass": "no",
 "PubkeyAcceptedAlgorithms": "ssh-ed25519",
 "PubkeyAcceptedKeyTypes": "ssh-ed25519", "PubkeyAuthentication": "yes",
 "RekeyLimit": "1G", "RemoteCommand": "none",
 "RemoteForward": "10022 127.0.0.1:22", "RequestTTY": "no",
 "RequiredRSASize": "2048", "RevokedHostKeys": "/dev/null",
 "RhostsAuthentication": "no", "RhostsRSAAuthentication": "no",
 "RSAAuthentication": "no", "SecurityKeyProvider": "internal",
 "SendEnv": "LANG", "ServerAliveCountMax": "3", "ServerAliveInterval": "30",
 "SessionType": "default", "SetEnv": "FOO=bar", "SKeyAuthentication": "no",
 "SmartcardDevice": "none", "StdinNull": "no", "StreamLocalBindMask": "0177",
 "StreamLocalBindUnlink": "no", "StrictHostKeyChecking": "yes",
 "SyslogFacility": "USER", "TCPKeepAlive": "yes", "TISAuthentication": "no",
 "Tunnel": "no", "TunnelDevice": "any:any", "UpdateHostKeys": "no",
 "UseRoaming": "no", "UsePrivilegedPort": "no", "User": "{user}",
 "UserKnownHostsFile": "{known_hosts}", "UserKnownHostsFile2": "/dev/null",
 "UseRsh": "no", "VerifyHostKeyDNS": "no", "VisualHostKey": "no",
 "XAuthLocation": "/usr/bin/xauth",
}


def test_table_names_every_option() -> None:
    assert {name.lower() for name in NAMES} == sshconfig.SSH_OPTIONS
    assert set(SAMPLES) == set(NAMES)
    assert {row.treatment for row in rows()} == set(Treatment)


@pytest.fixture
def both(sshd: PrivateSSHD, sftp_bin: str, tmp_path: Path) -> Both:
    return Both(sshd, sftp_bin, tmp_path)


def _sample(sshd: PrivateSSHD, name: str) -> str:
    return SAMPLES[name].format(identity=sshd.identity, port=sshd.port,
                                user=sshd.user, known_hosts=sshd.known_hosts)


@pytest.mark.slow
async def test_each_option_as_the_table_says(sshd: PrivateSSHD,
                                            sftp_bin: str) -> None:
    """sftp in batch mode against psftp-shell's connection layer (a
    whole process per option would take minutes)."""
    for row in rows():
        option = f"{row.name}={_sample(sshd, row.name)}"
        theirs = real_sftp(sftp_bin, sshd.ssh_config, [option])
        ours = await our_stderr(sshd.ssh_config, [option])
        expect = theirs.stderr
        if row.treatment is Treatment.IGNORED:
            expect = (f'Warning: option "{row.name}" is not supported by '
                      "psftp-shell; ignored.\r\n") + expect
        assert (row.name, ours) == (row.name, expect)


def _plain(both: Both) -> list[str]:
    """The command line's end for the plain address (no Host alias)."""
    sshd = both.sshd
    both.config = both.tmp / "plain.cfg"
    both.config.write_text(
        "Host *\n"
        f"  IdentityFile {sshd.identity}\n  IdentitiesOnly yes\n"
        f"  IdentityAgent none\n  UserKnownHostsFile {sshd.known_hosts}\n"
        "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n")
    return ["-P", str(sshd.port), f"{sshd.user}@127.0.0.1"]


@pytest.fixture(params=["alias", "address"])
def target(request: pytest.FixtureRequest, both: Both) -> list[str]:
    """The end of the command line: the Host alias or a plain address."""
    return [HOST_ALIAS] if request.param == "alias" else _plain(both)


@pytest.mark.parametrize("jump", ["%n", "%r@%h", "127.0.0.1:%p"])
def test_proxy_jump_tokens(both: Both, target: list[str], jump: str) -> None:
    both.check(["-o", f"ProxyJump={jump}", *target])


def test_local_command_tokens(both: Both, target: list[str]) -> None:
    ran = both.tmp / "ran"
    result, _ = both.check(["-o", "PermitLocalCommand=yes", "-o",
                            f"LocalCommand=echo %h %p %r %n %C >{ran}",
                            *target])
    assert result.status == 0 and not ran.exists()
    result, _ = both.check(["-o", "LocalCommand=echo %z", *target])
    assert result.status == 255


def test_identity_file_tokens_for_both(both: Both, target: list[str]
                                       ) -> None:
    sshd = both.sshd
    keys = both.tmp / f"k-127.0.0.1-{sshd.port}-{sshd.user}"
    keys.mkdir()
    for suffix in ("", ".pub"):
        (keys / ("id" + suffix)).write_bytes(
            Path(str(sshd.identity) + suffix).read_bytes())
    (keys / "id").chmod(0o600)
    if target == [HOST_ALIAS]:
        both.config = both.tmp / "noid.cfg"
        both.config.write_text("".join(
            line + "\n" for line in sshd.ssh_config.read_text().splitlines()
            if "IdentityFile" not in line))
    else:
        both.config.write_text(both.config.read_text().replace(
            f"IdentityFile {sshd.identity}", "IdentityFile /nonexistent"))
    result, _ = both.check(["-o", f"IdentityFile={both.tmp}/k-%h-%p-%r/id",
                            *target])
    assert result.status == 0


def test_control_path_with_ssh(both: Both, target: list[str]) -> None:
    # a short path: a Unix socket's name is limited to 108 bytes
    sockets = Path(tempfile.mkdtemp(prefix="cp", dir="/tmp"))
    result, _ = both.check(
        ["-S", "ssh", "-o", f"ControlPath={sockets}/%h-%p-%r-%n", "-o",
         "ControlMaster=auto", "-o", "ControlPersist=no", *target],
        stdin=f"!ls {sockets}\n".encode())
    expect = f"127.0.0.1-{both.sshd.port}-{both.sshd.user}-"
    assert expect.encode() in result.stdout
    sockets.rmdir()                 # the master has gone with the session
