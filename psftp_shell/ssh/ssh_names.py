"""The keywords of OpenSSH 9.2's ssh_config, sorted by how ssh reads
their values (readconf.c's keyword table and switch, Debian's build:
GSSAPI and PKCS#11 on).  Used by :mod:`psftp_shell.ssh.readconf`."""

from __future__ import annotations

_BOOL = ("yes", "no", "true", "false")
_ASK = (*_BOOL, "ask")

FLAG = frozenset("""
forwardx11 forwardx11trusted gatewayports exitonforwardfailure
passwordauthentication kbdinteractiveauthentication
challengeresponseauthentication skeyauthentication tisauthentication
hostbasedauthentication gssapiauthentication gssapidelegatecredentials
batchmode checkhostip tcpkeepalive keepalive
nohostauthenticationforlocalhost clearallforwardings enablesshkeysign
identitiesonly hashknownhosts permitlocalcommand visualhostkey stdinnull
forkafterauthentication proxyusefdpass canonicalizefallbacklocal
streamlocalbindunlink enableescapecommandline
""".split())
MULTISTATE: dict[str, tuple[str, ...]] = {
    "pubkeyauthentication": (*_BOOL, "unbound", "host-bound"),
    "dsaauthentication": (*_BOOL, "unbound", "host-bound"),
    "verifyhostkeydns": _ASK, "updatehostkeys": _ASK,
    "stricthostkeychecking": (*_ASK, "off", "accept-new"),
    "compression": ("yes", "no"),
    "addressfamily": ("inet", "inet6", "any"),
    "controlmaster": (*_ASK, "auto", "autoask"),
    "tunnel": (*_BOOL, "ethernet", "point-to-point"),
    "requesttty": (*_BOOL, "force", "auto"),
    "sessiontype": ("none", "subsystem", "default"),
    "canonicalizehostname": (*_BOOL, "always"),
}
TIMES = frozenset({"connecttimeout", "forwardx11timeout",
                   "serveraliveinterval"})
INTEGERS = frozenset({"numberofpasswordprompts", "connectionattempts",
                      "serveralivecountmax", "canonicalizemaxdots",
                      "requiredrsasize"})
STRINGS = frozenset("""
kbdinteractivedevices user hostname hostkeyalias preferredauthentications
bindaddress bindinterface pkcs11provider smartcarddevice securitykeyprovider
xauthlocation controlpath ignoreunknown revokedhostkeys identityfile
identityfile2 certificatefile identityagent
""".split())
ARRAYS = frozenset({"globalknownhostsfile", "userknownhostsfile",
                    "logverbose"})
COMMANDS = frozenset({"proxycommand", "localcommand", "remotecommand",
                      "knownhostscommand"})
ALGORITHMS = frozenset("""
ciphers macs kexalgorithms hostkeyalgorithms casignaturealgorithms
hostbasedacceptedalgorithms hostbasedkeytypes pubkeyacceptedalgorithms
pubkeyacceptedkeytypes
""".split())
UNCHECKED = frozenset("""
port loglevel proxyjump rekeylimit host match include forwardagent
localforward remoteforward dynamicforward permitremoteopen escapechar
sendenv setenv controlpersist tunneldevice ipqos canonicaldomains
canonicalizepermittedcnames streamlocalbindmask fingerprinthash
addkeystoagent syslogfacility protocol
""".split())
"""Keywords with checks of their own in readconf, or none here."""
DEPRECATED = frozenset("""
cipher fallbacktorsh globalknownhostsfile2 rhostsauthentication
userknownhostsfile2 useroaming usersh useprivilegedport
""".split())
UNSUPPORTED = frozenset("""
afstokenpassing kerberosauthentication kerberostgtpassing
rsaauthentication rhostsrsaauthentication compressionlevel
""".split())
LOG_LEVELS = frozenset({"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE",
                        "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"})
IPQOS_NAMES = frozenset("""
none af11 af12 af13 af21 af22 af23 af31 af32 af33 af41 af42 af43 cs0 cs1
cs2 cs3 cs4 cs5 cs6 cs7 ef le lowdelay throughput reliability
""".split())
"""The IPQoS names of misc.c (any case); a number 0..255 also does."""
DIGESTS = frozenset({"md5", "sha1", "sha256", "sha384", "sha512"})
"""The FingerprintHash names ssh's digest table knows (any case)."""
ADD_KEYS = (*_ASK, "confirm")

KEYWORDS = (FLAG | frozenset(MULTISTATE) | TIMES | INTEGERS | STRINGS |
            ARRAYS | COMMANDS | ALGORITHMS | UNCHECKED | DEPRECATED |
            UNSUPPORTED)


def known_keyword(keyword: str) -> bool:
    """Whether ssh knows the (lower case) *keyword*."""
    return keyword in KEYWORDS
