"""Algorithm lists checked as OpenSSH 9.2's ssh checks them.

``-c``, ``Ciphers``, ``MACs``, ``KexAlgorithms`` and the key type lists
(``HostKeyAlgorithms``, ``PubkeyAcceptedAlgorithms``,
``CASignatureAlgorithms``, ``HostbasedAcceptedAlgorithms``) are
validated against the names ssh 9.2 knows (``ssh -Q cipher|mac|kex|key|
sig``), with ssh's words: :func:`check_cipher_flag` for ``-c`` and
:func:`option_error` for a config line.  Names are checked up to the
first empty one, as ssh's loops stop there; a ``-`` list is not checked.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

CIPHERS = frozenset("""
3des-cbc aes128-cbc aes192-cbc aes256-cbc aes128-ctr aes192-ctr aes256-ctr
aes128-gcm@openssh.com aes256-gcm@openssh.com chacha20-poly1305@openssh.com
""".split())
MACS = frozenset("""
hmac-sha1 hmac-sha1-96 hmac-sha2-256 hmac-sha2-512 hmac-md5 hmac-md5-96
umac-64@openssh.com umac-128@openssh.com hmac-sha1-etm@openssh.com
hmac-sha1-96-etm@openssh.com hmac-sha2-256-etm@openssh.com
hmac-sha2-512-etm@openssh.com hmac-md5-etm@openssh.com
hmac-md5-96-etm@openssh.com umac-64-etm@openssh.com umac-128-etm@openssh.com
""".split())
KEX = frozenset("""
diffie-hellman-group1-sha1 diffie-hellman-group14-sha1
diffie-hellman-group14-sha256 diffie-hellman-group16-sha512
diffie-hellman-group18-sha512 diffie-hellman-group-exchange-sha1
diffie-hellman-group-exchange-sha256 ecdh-sha2-nistp256 ecdh-sha2-nistp384
ecdh-sha2-nistp521 curve25519-sha256 curve25519-sha256@libssh.org
sntrup761x25519-sha512 sntrup761x25519-sha512@openssh.com
""".split())
KEY_TYPES = frozenset("""
ssh-ed25519 ssh-ed25519-cert-v01@openssh.com sk-ssh-ed25519@openssh.com
sk-ssh-ed25519-cert-v01@openssh.com ecdsa-sha2-nistp256
ecdsa-sha2-nistp256-cert-v01@openssh.com ecdsa-sha2-nistp384
ecdsa-sha2-nistp384-cert-v01@openssh.com ecdsa-sha2-nistp521
ecdsa-sha2-nistp521-cert-v01@openssh.com sk-ecdsa-sha2-nistp256@openssh.com
sk-ecdsa-sha2-nistp256-cert-v01@openssh.com ssh-dss
ssh-dss-cert-v01@openssh.com ssh-rsa ssh-rsa-cert-v01@openssh.com
webauthn-sk-ecdsa-sha2-nistp256@openssh.com rsa-sha2-256 rsa-sha2-512
rsa-sha2-256-cert-v01@openssh.com rsa-sha2-512-cert-v01@openssh.com
""".split())

KEY_TYPE_OPTIONS = frozenset({
    "hostkeyalgorithms", "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes", "casignaturealgorithms",
    "hostbasedacceptedalgorithms", "hostbasedkeytypes",
})
CHECKED_OPTIONS = frozenset({"ciphers", "macs", "kexalgorithms"}) | \
    KEY_TYPE_OPTIONS


def _names(spec: str) -> list[str]:
    """The names ssh looks at: up to the first empty one."""
    names = []
    for name in spec.split(","):
        if not name:
            break
        names.append(name)
    return names


def _unprefixed(spec: str) -> str:
    return spec[1:] if spec[:1] in ("+", "^") else spec


def _first_unknown(spec: str, known: frozenset[str]) -> str | None:
    for name in _names(_unprefixed(spec)):
        if name not in known:
            return name
    return None


def _key_types_valid(spec: str) -> bool:
    return all(name in KEY_TYPES or any(fnmatchcase(kt, name)
                                        for kt in KEY_TYPES)
               for name in _names(_unprefixed(spec)))


def check_cipher_flag(spec: str) -> str | None:
    """ssh's line for a bad ``-c`` value (it ends in ``\\n``), or None."""
    if spec[:1] != "-" and _first_unknown(spec, CIPHERS) is None:
        return None
    return f"Unknown cipher type '{spec}'\n"


def option_error(option: str, spec: str) -> list[str] | None:
    """ssh's reasons (without the "file line N: " part of the last) for
    a bad value of the config option *option* (lower case), or None."""
    if spec[:1] == "-" or option not in CHECKED_OPTIONS:
        return None
    if option == "ciphers":
        bad = _first_unknown(spec, CIPHERS) is not None
        return [f"Bad SSH2 cipher spec '{spec}'."] if bad else None
    if option == "macs":
        bad = _first_unknown(spec, MACS) is not None
        return [f"Bad SSH2 MAC spec '{spec}'."] if bad else None
    if option == "kexalgorithms":
        unknown = _first_unknown(spec, KEX)
        if unknown is None:
            return None
        return [f'Unsupported KEX algorithm "{unknown}"',
                f"Bad SSH2 KexAlgorithms '{spec}'."]
    if _key_types_valid(spec):
        return None
    return [f"Bad key types '{spec}'."]
