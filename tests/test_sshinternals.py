"""The asyncssh internals of the SSH layer: checked, with a fallback.

With the asyncssh this package installs, every check passes and the
extended paths are used.  Each check is then shown to refuse a changed
internal, and a connection to the private sshd is shown to work on the
public fallbacks (asyncssh reading the config and ciphers itself).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.ssh import asyncssh_checks as sshinternals
from psftp_shell.ssh import config_reader as configreader
from psftp_shell.ssh.algorithm_prefs import preferred_ciphers
from psftp_shell.ssh.connect import Connector, SSHTarget
from psftp_shell.ssh.hostkeys import StrictMode
from psftp_shell.ssh.ssh_config import command_line_config, resolve
from tests.prompts import Scripted


def test_checks_pass_with_the_installed_asyncssh() -> None:
    assert sshinternals.CLIENT_CONFIG is not None
    assert configreader.PROJECT_CONFIG is not None
    assert sshinternals.CIPHERS is not None
    assert "aes128-gcm@openssh.com" in sshinternals.CIPHERS[0]
    assert sshinternals.HOST_KEY_DEFAULTS is not None
    assert "ssh-ed25519" in sshinternals.HOST_KEY_DEFAULTS


def test_checks_refuse_changed_internals(monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    class NoHandlers:
        _percent_expand: set[str] = set()

    assert not sshinternals.config_class_ok(NoHandlers)
    base = sshinternals.CLIENT_CONFIG
    handlers = {k: v for k, v in base._handlers.items() if k != "ciphers"}
    changed = type("Changed", (base,), {"_handlers": handlers})
    assert not sshinternals.config_class_ok(changed)
    shaped = type("Shaped", (base,), {"_handlers": {
        k: v[1] for k, v in base._handlers.items()}})
    assert not sshinternals.config_class_ok(shaped)

    fake = types.ModuleType("fake_algs")
    fake.get_default_encryption_algs = lambda: ["aes128-ctr"]  # type: ignore
    fake.get_encryption_algs = lambda: [b"aes128-ctr"]  # type: ignore
    fake.get_default_certificate_algs = lambda: 3  # type: ignore
    fake.get_default_public_key_algs = lambda: [b"ssh-ed25519"]  # type: ignore
    monkeypatch.setitem(sys.modules, "fake_algs", fake)
    assert sshinternals.cipher_lists("fake_algs") is None     # str, not bytes
    assert sshinternals.host_key_defaults("fake_algs") is None
    assert sshinternals.cipher_lists("no_such_module") is None
    fake.get_default_encryption_algs = lambda: [b"aes128-ctr"]  # type: ignore
    assert sshinternals.cipher_lists("fake_algs") == (["aes128-ctr"],
                                                       ["aes128-ctr"])


def test_match_handler_wrapped_once_in_asyncssh_own_class() -> None:
    """asyncssh.connect reads the files with its own class: its Match
    handler is the project's, put there once; a changed table is left
    alone."""
    from asyncssh.config import SSHClientConfig
    option, handler = SSHClientConfig._handlers["match"]
    assert option == "Match" and getattr(handler, "psftp_wrapped", False)
    assert configreader.PROJECT_CONFIG._handlers["match"][1] is handler

    def never(handler: object) -> object:
        raise AssertionError("wrapped twice")

    assert sshinternals.wrap_client_handler("match", never)
    for changed in (object, type("Bare", (), {"_handlers": {
            "match": handler}}), type("NoMatch", (), {"_handlers": {}})):
        assert not sshinternals.wrap_client_handler("match", never, changed)


def test_match_words_without_the_line_to_read_again() -> None:
    """A config object with no file line to read again (another
    asyncssh): the words asyncssh split, up to a comment or empty word."""
    seen: list[list[str]] = []
    wrapped = configreader._match_words(
        lambda config, option, args: seen.append(list(args)))
    for config in (types.SimpleNamespace(),
                   types.SimpleNamespace(_path="/nonexistent", _line_no=1)):
        args = ["host", "a", "", "x"]
        wrapped(config, "Match", args)
        assert args == [] and seen.pop() == ["host", "a"]


@pytest.fixture
def public_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if none of the internals were as expected."""
    monkeypatch.setattr(configreader, "PROJECT_CONFIG", None)
    monkeypatch.setattr(sshinternals, "CIPHERS", None)
    monkeypatch.setattr(sshinternals, "HOST_KEY_DEFAULTS", None)


def test_public_config_reads_the_same(sshd: PrivateSSHD, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    target = SSHTarget(HOST_ALIAS, config_file=str(sshd.ssh_config),
                       options=["StrictHostKeyChecking=accept-new",
                                "ProxyCommand=nc %h %p %n"], batch_mode=True)
    lines, _ = command_line_config(target)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("".join(line + "\n" for line in lines))
    paths = [str(cmdline), str(sshd.ssh_config)]
    extended = resolve(target, paths, "me", lines)
    monkeypatch.setattr(configreader, "PROJECT_CONFIG", None)
    public = resolve(target, paths, "me", lines)
    assert isinstance(configreader.load(paths, HOST_ALIAS, "me", lines),
                      configreader.PublicConfig)
    for r in (extended, public):
        assert (r.hostname, r.port, r.user) == ("127.0.0.1", sshd.port,
                                                sshd.user)
        assert r.proxy_command == f"nc 127.0.0.1 {sshd.port} {HOST_ALIAS}"
        assert r.identities == [str(sshd.identity)]
        assert r.strict is StrictMode.ACCEPT_NEW and r.batch


def test_preferred_ciphers_fall_back_to_asyncssh(public_only: None) -> None:
    assert preferred_ciphers() is None
    assert preferred_ciphers("aes256-ctr") is None
    assert preferred_ciphers("aes256-ctr", (["aes128-ctr"], [
        "aes128-ctr", "aes256-ctr"])) == ["aes256-ctr"]


@pytest.mark.sshd
@pytest.mark.usefixtures("clean_ssh_env", "public_only")
async def test_connects_on_the_public_fallbacks(sshd: PrivateSSHD) -> None:
    assert sshinternals.CIPHERS is None
    connector = Connector(SSHTarget(HOST_ALIAS,
                                    config_file=str(sshd.ssh_config),
                                    options=["Ciphers=aes256-ctr"],
                                    batch_mode=True), Scripted())
    try:
        conn = await connector.connect()
        assert conn.get_extra_info("send_cipher") == "aes256-ctr"
        conn.close()
    finally:
        connector.close()
