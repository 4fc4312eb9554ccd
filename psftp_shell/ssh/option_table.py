"""How each ssh option a script may pass with ``-o`` is treated.

The man page's table of ssh options is generated from :func:`rows`; the
differential test in ``tests/test_sshoptiontable.py`` runs each option
through sftp and psftp-shell and holds them to what the table says.
The sorting itself lives in :mod:`psftp_shell.ssh.ssh_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from psftp_shell.ssh import ssh_config as sshconfig
from psftp_shell.ssh.refusals import ALIASES


class Treatment(Enum):
    """What psftp-shell does with an option, next to sftp's ssh."""

    SAME = "as ssh"
    DIFFERENT = "differently"
    IGNORED = "ignored, with a warning"
    REFUSED = "refused, as ssh"


# ssh_config(5)'s spelling of every option sshconfig.SSH_OPTIONS knows.
NAMES = """
AddKeysToAgent AddressFamily AFSTokenPassing BatchMode BindAddress
BindInterface CanonicalDomains CanonicalizeFallbackLocal
CanonicalizeHostname CanonicalizeMaxDots CanonicalizePermittedCNAMEs
CASignatureAlgorithms CertificateFile ChallengeResponseAuthentication
CheckHostIP Cipher Ciphers ClearAllForwardings Compression
CompressionLevel ConnectionAttempts ConnectTimeout ControlMaster
ControlPath ControlPersist DSAAuthentication DynamicForward
EnableEscapeCommandline EnableSSHKeySign EscapeChar ExitOnForwardFailure
FallBackToRsh FingerprintHash ForkAfterAuthentication ForwardAgent
ForwardX11 ForwardX11Timeout ForwardX11Trusted GatewayPorts
GlobalKnownHostsFile GlobalKnownHostsFile2 GSSAPIAuthentication
GSSAPIDelegateCredentials HashKnownHosts Host HostbasedAcceptedAlgorithms
HostbasedAuthentication HostbasedKeyTypes HostKeyAlgorithms HostKeyAlias
HostName IdentitiesOnly IdentityAgent IdentityFile IdentityFile2
IgnoreUnknown Include IPQoS KbdInteractiveAuthentication
KbdInteractiveDevices KeepAlive KerberosAuthentication
KerberosTgtPassing KexAlgorithms KnownHostsCommand LocalCommand
LocalForward LogLevel LogVerbose MACs Match NoHostAuthenticationForLocalhost
NumberOfPasswordPrompts PasswordAuthentication PermitLocalCommand
PermitRemoteOpen PKCS11Provider Port PreferredAuthentications Protocol
ProxyCommand ProxyJump ProxyUseFdpass PubkeyAcceptedAlgorithms
PubkeyAcceptedKeyTypes PubkeyAuthentication RekeyLimit RemoteCommand
RemoteForward RequestTTY RequiredRSASize RevokedHostKeys
RhostsAuthentication RhostsRSAAuthentication RSAAuthentication
SecurityKeyProvider SendEnv ServerAliveCountMax ServerAliveInterval
SessionType SetEnv SKeyAuthentication SmartcardDevice
StdinNull StreamLocalBindMask StreamLocalBindUnlink StrictHostKeyChecking
SyslogFacility TCPKeepAlive TISAuthentication Tunnel TunnelDevice
UpdateHostKeys UseRoaming UsePrivilegedPort User UserKnownHostsFile
UserKnownHostsFile2 UseRsh VerifyHostKeyDNS VisualHostKey XAuthLocation
""".split()

# How the options honoured differently differ (keys in lower case).
DIFFERENCES = {
    "ciphers": "AES-GCM is put first among the ciphers allowed (the "
               "least CPU); the list is checked as ssh checks it",
    "proxycommand": "run as ssh runs it; when the server hangs up during "
                    "the key exchange it is run once more to read the "
                    "server's offer for ssh's message",
    "kexalgorithms": "checked as ssh checks it; a name ssh knows and "
                     "asyncssh lacks fails the connection",
    "controlpath": "no master is used (with -S ssh, ssh uses it and "
                   "expands its tokens)",
    "controlmaster": "no master is started or used (with -S ssh, ssh "
                     "does)",
    "controlpersist": "no master is kept (with -S ssh, ssh does)",
    "canonicalizehostname": "done by asyncssh, with the system resolver",
    "pubkeyacceptedalgorithms": "checked as ssh checks it, then ignored "
                                "(a warning names it)",
    "hostbasedacceptedalgorithms": "checked as ssh checks it, then ignored "
                                   "(a warning names it)",
    "rekeylimit": "asyncssh's limits apply where the value is default",
}
_NOT_ON_COMMAND_LINE = frozenset({"host", "match", "include"})
_SESSION_NOTES = {
    "sessiontype": "ssh's error unless subsystem (sftp's own session)",
    "remotecommand": "ssh's error unless none",
    "stdinnull": "yes closes the session at once, as under sftp",
    "localcommand": "never run: sftp turns PermitLocalCommand off; a token "
                    "ssh does not know gets ssh's error",
}
_DIFFERENT_BUT_WARNED = frozenset({
    "controlpath", "controlmaster", "controlpersist",
    "pubkeyacceptedalgorithms", "hostbasedacceptedalgorithms"})
_NO_EFFECT_NOTE = "no effect, as under sftp (no session, tty or forwarding)"


@dataclass(frozen=True)
class Row:
    """One option of the table."""

    name: str
    treatment: Treatment
    note: str


def treatment(lower: str) -> Treatment:
    """How the option *lower* (lower case) is treated."""
    lower = ALIASES.get(lower, lower).lower()
    if lower in sshconfig._DEPRECATED or lower in sshconfig._SSH_UNSUPPORTED \
            or lower in _NOT_ON_COMMAND_LINE:
        return Treatment.REFUSED
    if lower in DIFFERENCES and lower not in _DIFFERENT_BUT_WARNED:
        return Treatment.DIFFERENT
    if lower in sshconfig.HONOURED_OPTIONS or lower in sshconfig._IRRELEVANT:
        return Treatment.SAME
    return Treatment.IGNORED


def _note(lower: str, how: Treatment) -> str:
    if lower in ALIASES:
        return f"read as {ALIASES[lower]}, as ssh reads it"
    if lower in DIFFERENCES:
        return DIFFERENCES[lower]
    if lower in _NOT_ON_COMMAND_LINE:
        return ("ssh's error: not supported as a command-line option "
                "(config files: as ssh)")
    if lower in _SESSION_NOTES:
        return _SESSION_NOTES[lower]
    if how is Treatment.REFUSED:
        if lower in sshconfig._SSH_UNSUPPORTED:
            return "ssh's \"Unsupported option\" error; the session goes on"
        return "deprecated: ignored without a word, as ssh does"
    if how is Treatment.IGNORED:
        return "a warning names it; the session goes on without it"
    if lower in sshconfig._IRRELEVANT and \
            lower not in sshconfig.HONOURED_OPTIONS:
        return _NO_EFFECT_NOTE
    return ""


def rows() -> list[Row]:
    """Every option, in ssh_config(5)'s spelling and alphabetical order."""
    return [Row(name, treatment(name.lower()),
                _note(name.lower(), treatment(name.lower())))
            for name in sorted(NAMES, key=str.lower)]
