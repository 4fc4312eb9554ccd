"""known_hosts handling and the StrictHostKeyChecking policy."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from psftp_shell.ssh.auth import LogLevel
from psftp_shell.ssh.connect import ConnectError, Connector, SSHTarget
from psftp_shell.ssh.hostkeys import (
    NO_PROXY_IP,
    HostKeyPolicy,
    StrictMode,
    host_identity,
    parse_strict,
)
from psftp_shell.ssh.known_hosts import (
    KnownHosts,
    Status,
    hash_hostname,
    hostfile_name,
    key_type,
    read_known_hosts_file,
)
from tests.prompts import Scripted

pytestmark = pytest.mark.usefixtures("clean_ssh_env")


def pub(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key().decode().split()[:2])


@pytest.fixture(scope="module")
def keys() -> dict[str, asyncssh.SSHKey]:
    return {name: asyncssh.generate_private_key(alg) for name, alg in (
        ("a", "ssh-ed25519"), ("b", "ssh-ed25519"),
        ("ec", "ecdsa-sha2-nistp256"))}


def test_names_and_types(keys: dict[str, asyncssh.SSHKey]) -> None:
    assert hostfile_name("h", 22) == "h"
    assert hostfile_name("h", 2222) == "[h]:2222"
    assert hostfile_name("h", 2222, "alias") == "alias"
    assert key_type(keys["a"]) == "ED25519"
    assert key_type(keys["ec"]) == "ECDSA"
    ident = host_identity("h", 2222, None, "10.0.0.1")
    assert (ident.name, ident.fallback, ident.ip) == (
        "[h]:2222", "h", "[10.0.0.1]:2222")
    assert host_identity("h", 22, None, None).ip == NO_PROXY_IP
    assert [parse_strict(v) for v in ("yes", "off", "ask", "accept-new")] \
        == [StrictMode.YES, StrictMode.NO, StrictMode.ASK,
            StrictMode.ACCEPT_NEW]
    with pytest.raises(ValueError):
        parse_strict("maybe")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                    reason="needs ssh-keygen")
def test_hashed_name_matches_ssh_keygen(tmp_path: Path,
                                        keys: dict[str, asyncssh.SSHKey]
                                        ) -> None:
    known = tmp_path / "kh"
    known.write_text(f"{hash_hostname('[h.example]:2222')} "
                     f"{pub(keys['a'])}\n")
    found = subprocess.run(["ssh-keygen", "-F", "[h.example]:2222", "-f",
                            str(known)], capture_output=True, text=True,
                           check=False)
    assert found.returncode == 0
    missed = subprocess.run(["ssh-keygen", "-F", "h.example", "-f",
                             str(known)], capture_output=True, text=True,
                            check=False)
    assert missed.returncode == 1


def test_check_statuses(tmp_path: Path,
                        keys: dict[str, asyncssh.SSHKey]) -> None:
    a, b, ec = keys["a"], keys["b"], keys["ec"]
    known = tmp_path / "kh"
    known.write_text(
        "# comment\n\nnot a valid line\n"
        f"[h]:2222 {pub(a)}\n"
        f"{hash_hostname('hashed')} {pub(a)}\n"
        f"*.wild,!bad.wild {pub(a)}\n"
        f"plain {pub(b)}\n"
        f"@revoked plain {pub(ec)}\n"
        f"@cert-authority * {pub(b)}\n")
    kh = KnownHosts([str(known)], [])
    assert [e.line for e in read_known_hosts_file(str(known))] == \
        [4, 5, 6, 7, 8, 9]
    assert kh.check(a, "[h]:2222").status is Status.OK
    assert kh.check(a, "hashed").status is Status.OK
    assert kh.check(a, "x.wild").status is Status.OK
    assert kh.check(a, "bad.wild").status is Status.NEW
    verdict = kh.check(a, "plain")
    assert verdict.status is Status.CHANGED
    assert verdict.offending is not None and verdict.offending.line == 7
    assert kh.check(ec, "plain").status is Status.REVOKED
    assert kh.check(b, "[h]:2222").status is Status.CHANGED
    assert kh.check(a, "[other]:2222").status is Status.NEW
    # a key known for the host without the port is fine on any port
    assert kh.check(b, "[plain]:2222", "plain").status is Status.OK
    keys_, cas = kh.trusted("plain")
    assert [k.public_data for k in keys_] == [b.public_data]
    assert [k.public_data for k in cas] == [b.public_data]
    assert kh.trusted("[h]:2222")[0][0].public_data == a.public_data
    assert kh.other_names(a, "[h]:2222") == [
        f"{known}:5: [hashed name]", f"{known}:6: *.wild,!bad.wild"]


def test_global_file_and_tilde(tmp_path: Path,
                               keys: dict[str, asyncssh.SSHKey]) -> None:
    home = Path(os.environ["HOME"])
    user = home / "kh"
    user.write_text(f"other {pub(keys['a'])}\n")
    system = tmp_path / "global"
    system.write_text(f"host {pub(keys['a'])}\n")
    kh = KnownHosts(["~/kh"], [str(system)])
    assert kh.check(keys["a"], "host").status is Status.OK
    assert kh.other_names(keys["a"], "third") == [
        "~/kh:1: other", f"{system}:1: host"]


def test_record_plain_and_hashed(tmp_path: Path,
                                 keys: dict[str, asyncssh.SSHKey]) -> None:
    known = tmp_path / "kh"
    known.write_text(f"x {pub(keys['b'])}")      # no final newline
    kh = KnownHosts([str(known)], [])
    assert kh.record("[h]:2222", keys["a"], hashed=False)
    assert kh.record("secret", keys["a"], hashed=True)
    lines = known.read_text().splitlines()
    assert lines[:2] == [f"x {pub(keys['b'])}", f"[h]:2222 {pub(keys['a'])}"]
    assert lines[2].startswith("|1|") and "secret" not in lines[2]
    again = KnownHosts([str(known)], [])
    assert again.check(keys["a"], "secret").status is Status.OK
    assert not KnownHosts([str(tmp_path / "no" / "dir")], []).record(
        "h", keys["a"], hashed=False)


def policy_for(tmp_path: Path, mode: StrictMode, told: list[str],
               *, batch: bool = False) -> HostKeyPolicy:
    kh = KnownHosts([str(tmp_path / "kh")], [])
    return HostKeyPolicy(kh, mode, batch=batch,
                         notify=lambda level, text: told.append(text))


async def test_policy_decisions(tmp_path: Path,
                                keys: dict[str, asyncssh.SSHKey]) -> None:
    ident = host_identity("h", 2222, None, "127.0.0.1")
    told: list[str] = []
    outcome = policy_for(tmp_path, StrictMode.YES, told).validate(
        keys["a"], ident)
    assert not outcome.accepted and outcome.question is None
    assert outcome.failure == [
        (LogLevel.ERROR, "No ED25519 host key is known for [h]:2222 and "
                         "you have requested strict checking."),
        (LogLevel.FATAL, "Host key verification failed.")]
    batch = policy_for(tmp_path, StrictMode.ASK, told, batch=True)
    assert batch.validate(keys["a"], ident).failure == [
        (LogLevel.FATAL, "Host key verification failed.")]
    ask = policy_for(tmp_path, StrictMode.ASK, told)
    question = ask.validate(keys["a"], ident).question
    assert question is not None and question.startswith(
        "The authenticity of host '[h]:2222 ([127.0.0.1]:2222)' can't be "
        "established.\nED25519 key fingerprint is SHA256:")
    assert not (tmp_path / "kh").exists() and told == []
    new = policy_for(tmp_path, StrictMode.ACCEPT_NEW, told)
    assert new.validate(keys["a"], ident).accepted
    assert told == ["Warning: Permanently added '[h]:2222' (ED25519) to the "
                    "list of known hosts."]
    assert not new.validate(keys["b"], ident).accepted   # now changed


async def test_confirm_asks_once(tmp_path: Path,
                                 keys: dict[str, asyncssh.SSHKey]) -> None:
    ident = host_identity("h", 22, None, "127.0.0.1")
    policy = policy_for(tmp_path, StrictMode.ASK, [])
    asked: list[str] = []
    answers = ["  maybe ", " YES  "]

    async def ask(prompt: str, echo: bool) -> str:
        asked.append(prompt)
        await asyncio.sleep(0.01)
        return answers.pop(0)

    outcomes = [policy.validate(keys["a"], ident) for _ in range(3)]
    results = await asyncio.gather(*(policy.confirm(o, ident, ask)
                                     for o in outcomes))
    assert results == [True, True, True]
    assert asked[1] == "Please type 'yes', 'no' or the fingerprint: "
    assert len(asked) == 2
    assert policy.validate(keys["a"], ident).accepted
    # the fingerprint itself is a yes, an empty answer a no
    fp_policy = policy_for(tmp_path / "x", StrictMode.ASK, [])
    (tmp_path / "x").mkdir()
    fp = str(keys["b"].get_fingerprint())
    outcome = fp_policy.validate(keys["b"], ident)

    async def say_fp(prompt: str, echo: bool) -> str:
        return fp
    assert await fp_policy.confirm(outcome, ident, say_fp)

    async def say_nothing(prompt: str, echo: bool) -> str:
        return ""
    outcome = fp_policy.validate(keys["a"], host_identity("z", 22, None,
                                                          "1.2.3.4"))
    assert not await fp_policy.confirm(outcome, ident, say_nothing)


# -- the ask policy end to end on the real sshd -------------------------


def ask_config(sshd: PrivateSSHD, tmp_path: Path, known: Path) -> Path:
    text = sshd.ssh_config.read_text()
    text = text.replace(str(sshd.known_hosts), str(known))
    text = text.replace("StrictHostKeyChecking yes",
                        "StrictHostKeyChecking ask")
    config = tmp_path / "cfg"
    config.write_text(text)
    return config


@pytest.mark.sshd
async def test_ask_yes_records_once_for_many(sshd: PrivateSSHD,
                                             tmp_path: Path) -> None:
    known = tmp_path / "kh"
    prompter = Scripted("yes")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(
        ask_config(sshd, tmp_path, known))), prompter)
    conns = await asyncio.gather(*(connector.connect() for _ in range(3)))
    for conn in conns:
        conn.close()
    connector.close()
    assert len(prompter.asked) == 1
    assert prompter.asked[0].endswith(
        "This key is not known by any other names.\n"
        "Are you sure you want to continue connecting "
        "(yes/no/[fingerprint])? ")
    assert prompter.told == [f"Warning: Permanently added '[127.0.0.1]:"
                             f"{sshd.port}' (ED25519) to the list of known "
                             "hosts."]
    assert known.read_text().count("\n") == 1


@pytest.mark.sshd
async def test_ask_no_refuses(sshd: PrivateSSHD, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    prompter = Scripted("no")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(
        ask_config(sshd, tmp_path, known))), prompter)
    results = await asyncio.gather(*(connector.connect() for _ in range(2)),
                                   return_exceptions=True)
    connector.close()
    assert [str(r) for r in results] == [
        "Host key verification failed.\nConnection closed"] * 2
    assert all(isinstance(r, ConnectError) for r in results)
    assert len(prompter.asked) == 1 and not known.exists()


@pytest.mark.sshd
async def test_ask_prompt_is_ssh_prompt(sshd: PrivateSSHD, sftp_bin: str,
                                        tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    known = tmp_path / "kh"
    host_pub = Path(str(sshd.host_key) + ".pub").read_text().split()
    known.write_text(f"elsewhere {host_pub[0]} {host_pub[1]}\n"
                     f"{hash_hostname('secret')} {host_pub[0]} "
                     f"{host_pub[1]}\n")
    config = ask_config(sshd, tmp_path, known)
    child = pexpect.spawn(sftp_bin, ["-F", str(config), HOST_ALIAS],
                          encoding="utf-8", timeout=20,
                          env=dict(os.environ))
    child.expect(r"\(yes/no/\[fingerprint\]\)\? ")
    theirs = (child.before + child.after).replace("\r\n", "\n")
    child.sendline("no")
    child.expect(pexpect.EOF)
    child.close()
    prompter = Scripted("no")
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(config)),
                          prompter)
    with pytest.raises(ConnectError):
        await connector.connect()
    connector.close()
    assert "known by the following other names" in prompter.asked[0]
    assert theirs.lstrip("\r") == prompter.asked[0]


@pytest.mark.sshd
async def test_ask_without_a_way_to_ask_fails(sshd: PrivateSSHD,
                                              tmp_path: Path) -> None:
    from psftp_shell.ssh.prompter import BatchPrompter
    known = tmp_path / "kh"
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(
        ask_config(sshd, tmp_path, known))), BatchPrompter())
    with pytest.raises(ConnectError) as info:
        await connector.connect()
    connector.close()
    assert str(info.value) == ("Host key verification failed.\n"
                               "Connection closed")
    assert not known.exists()
