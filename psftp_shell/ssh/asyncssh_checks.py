"""The asyncssh internals the SSH layer uses, checked once at start-up.

asyncssh's version is not pinned to one minor release, so each internal
the connection modules rely on is looked at when this module is
imported, and a use falls back to asyncssh's public behaviour when the
internal is not what it expects:

- ``asyncssh.config.SSHClientConfig`` (its ``_handlers`` table of
  ``(name, handler)`` pairs, ``_percent_expand``, ``_set_bool``,
  ``_set_int``, ``_error``, ``_path``, ``_line_no``, ``load`` and
  ``get``), which :mod:`psftp_shell.ssh.ssh_config` extends with the options
  ssh's policy needs.  Without it the config is read through the public
  :class:`asyncssh.SSHClientConnectionOptions` (``StrictHostKeyChecking``
  and the other options asyncssh does not know then come from the
  command line only).
- the ``match`` entry of that class's ``_handlers`` table, the one
  internal changed in place (:func:`wrap_client_handler`): asyncssh
  reads the files again itself when it connects, and its ``Match``
  must take the words ssh takes.  Without the entry asyncssh's own
  ``Match`` stays.
- ``asyncssh.config._exec``, which runs a ``Match exec`` command, made
  to run each command once per process (:func:`run_exec_once`): ssh
  runs it once, where asyncssh would run it again at every read of the
  files, each connection's included.  Without it, it runs each time.
- ``asyncssh.encryption``'s cipher lists, for putting AES-GCM first.
  Without them asyncssh reads ``Ciphers`` itself, in its own order.
- ``asyncssh.public_key``'s default host key algorithms, for putting a
  known host's key types first.  Without them asyncssh's order stays.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_CONFIG_HANDLERS = ("ciphers", "macs", "kexalgorithms", "hostkeyalgorithms",
                    "casignaturealgorithms", "hostname", "port", "user",
                    "proxycommand", "identityfile")
_CONFIG_METHODS = ("_set_bool", "_set_int", "_error", "load", "get",
                   "has_match_final", "parse")


def _algs(function: Callable[[], Any]) -> list[str] | None:
    """The names *function* returns, if it returns a list of bytes."""
    try:
        algs = list(function())
    except Exception:               # any change of shape: fall back
        return None
    if not algs or not all(isinstance(a, bytes) for a in algs):
        return None
    return [a.decode("ascii") for a in algs]


def config_class_ok(cls: Any) -> bool:
    """Whether *cls* is the SSHClientConfig sshconfig knows how to extend."""
    handlers = getattr(cls, "_handlers", None)
    if not isinstance(handlers, dict) or not isinstance(
            getattr(cls, "_percent_expand", None), (set, frozenset)):
        return False
    for name in _CONFIG_HANDLERS:
        entry = handlers.get(name)
        if not (isinstance(entry, tuple) and len(entry) == 2 and
                isinstance(entry[0], str) and callable(entry[1])):
            return False
    return all(callable(getattr(cls, name, None)) for name in _CONFIG_METHODS)


def _find(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def client_config_class() -> Any:
    """asyncssh's SSHClientConfig if it is as expected, else None."""
    cls = _find("asyncssh.config", "SSHClientConfig")
    return cls if cls is not None and config_class_ok(cls) else None


def wrap_client_handler(name: str, wrap: Callable[[Any], Any],
                        cls: Any = None) -> bool:
    """Replace the *name* handler of *cls* (by default asyncssh's own
    SSHClientConfig, whichever shape it has) by *wrap* of it, in the
    class's table itself, so that every reader of that class uses it:
    once, and only if the entry is an ``(option, handler)`` pair."""
    if cls is None:
        cls = _find("asyncssh.config", "SSHClientConfig")
    handlers = getattr(cls, "_handlers", None)
    if not isinstance(handlers, dict):
        return False
    entry = handlers.get(name)
    if not (isinstance(entry, tuple) and len(entry) == 2 and
            isinstance(entry[0], str) and callable(entry[1])):
        return False
    if getattr(entry[1], "psftp_wrapped", False):
        return True
    wrapped = wrap(entry[1])
    wrapped.psftp_wrapped = True
    handlers[name] = (entry[0], wrapped)
    return True


def cipher_lists(module: str = "asyncssh.encryption"
                 ) -> tuple[list[str], list[str]] | None:
    """asyncssh's (default, known) ciphers, or None if not as expected."""
    defaults = _find(module, "get_default_encryption_algs")
    known = _find(module, "get_encryption_algs")
    if not (callable(defaults) and callable(known)):
        return None
    default_names, known_names = _algs(defaults), _algs(known)
    if default_names is None or known_names is None or \
            not set(default_names) <= set(known_names):
        return None
    return default_names, known_names


def host_key_defaults(module: str = "asyncssh.public_key"
                      ) -> list[str] | None:
    """asyncssh's default host key algorithms (certificates first), or
    None if not as expected."""
    certs = _find(module, "get_default_certificate_algs")
    keys = _find(module, "get_default_public_key_algs")
    if not (callable(certs) and callable(keys)):
        return None
    cert_names, key_names = _algs(certs), _algs(keys)
    if cert_names is None or key_names is None:
        return None
    return cert_names + key_names


# Checked once, at start-up.
CLIENT_CONFIG = client_config_class()
CIPHERS = cipher_lists()
HOST_KEY_DEFAULTS = host_key_defaults()


def run_exec_once(module: str = "asyncssh.config") -> bool:
    """Make *module*'s ``_exec`` (a ``Match exec`` command's run) give
    the first answer for a command again, instead of running it again;
    only if it is a function, and once."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return False
    run = getattr(found, "_exec", None)
    if not callable(run):
        return False
    if getattr(run, "psftp_wrapped", False):
        return True
    answers: dict[str, bool] = {}

    def once(command: str) -> bool:
        if command not in answers:
            answers[command] = bool(run(command))
        return answers[command]
    once.psftp_wrapped = True       # type: ignore[attr-defined]
    found._exec = once              # type: ignore[attr-defined]
    return True
