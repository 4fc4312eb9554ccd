"""``-X addresses=all``: streams spread over a host name's addresses, and
only over addresses that show the same files."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from psftp_shell.frontend import cli
from psftp_shell.ssh.address_spread import Choice, View, order

NAME = "spread.invalid"
MIB = 1 << 20


def _infos(*addresses: str) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 22))
            for a in addresses]


def _firsts(infos: list[tuple[Any, ...]]) -> list[str]:
    return [info[4][0] for info in infos]


def test_order_rotates_by_connection_and_avoids_bad_addresses() -> None:
    infos = _infos("10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3")
    assert order(infos, None) == infos
    assert _firsts(order(infos, Choice(0)))[:2] == ["10.0.0.1", "10.0.0.1"]
    assert _firsts(order(infos, Choice(1)))[0] == "10.0.0.2"
    assert _firsts(order(infos, Choice(5)))[0] == "10.0.0.3"
    avoid = frozenset({"10.0.0.2"})
    assert [_firsts(order(infos, Choice(i, avoid)))[0]
            for i in range(4)] == ["10.0.0.1", "10.0.0.3", "10.0.0.1",
                                   "10.0.0.3"]
    # avoided addresses go last, never away
    assert _firsts(order(infos, Choice(1, avoid)))[-1] == "10.0.0.2"
    everything = frozenset({"10.0.0.1", "10.0.0.2", "10.0.0.3"})
    assert len(order(infos, Choice(2, everything))) == 4


def test_views_differ_by_fsid_only_when_both_know_it() -> None:
    one = View("/home/u", (4096, 1, 1, 0o40755, 100), 7)
    assert one.same_as(View("/home/u", (4096, 1, 1, 0o40755, 100), None))
    assert not one.same_as(View("/home/u", (4096, 1, 1, 0o40755, 100), 8))
    assert not one.same_as(View("/home/u", (4096, 1, 1, 0o40755, 101), 7))
    assert not one.same_as(View("/home/v", (4096, 1, 1, 0o40755, 100), 7))


class TwoNodes:
    """Two asyncssh SFTP servers with one host key, on 127.0.0.1 and
    127.0.0.2 at the same port: two nodes behind one name."""

    def __init__(self, tmp: Path, roots: tuple[Path, Path]) -> None:
        self.tmp = tmp
        self.roots = roots
        self.logins: dict[str, int] = {"127.0.0.1": 0, "127.0.0.2": 0}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.servers: list[asyncssh.SSHAcceptor] = []
        self.port = 0

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        user_key = asyncssh.generate_private_key("ssh-ed25519")
        identity = self.tmp / "id"
        identity.write_bytes(user_key.export_private_key())
        identity.chmod(0o600)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        for address, root in zip(self.logins, self.roots, strict=True):
            self.servers.append(await asyncssh.listen(
                address, self.port, server_host_keys=[host_key],
                authorized_client_keys=asyncssh.import_authorized_keys(
                    user_key.export_public_key().decode()),
                server_factory=self._factory(address),
                sftp_factory=self._sftp(root), allow_scp=False))
        pub = host_key.export_public_key().decode().split()
        known = self.tmp / "known_hosts"
        known.write_text(f"[{NAME}]:{self.port} {pub[0]} {pub[1]}\n")
        (self.tmp / "ssh_config").write_text(
            f"Host nodes\n  HostName {NAME}\n  Port {self.port}\n"
            f"  User {os.environ.get('USER', 'root')}\n"
            f"  IdentityFile {identity}\n  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            f"  UserKnownHostsFile {known}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n")

    def _factory(self, address: str) -> Any:
        nodes = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection
                                ) -> None:
                nodes.logins[address] += 1

        return Server

    @staticmethod
    def _sftp(root: Path) -> Any:
        chroot = os.fsencode(root)

        def factory(chan: asyncssh.SSHServerChannel[bytes]) -> Any:
            return asyncssh.SFTPServer(chan, chroot=chroot)
        return factory

    def stop(self) -> None:
        async def close() -> None:
            for server in self.servers:
                server.close()
                await server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def both_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make NAME resolve to 127.0.0.1 and 127.0.0.2."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any
             ) -> list[Any]:
        if host == NAME and port is not None:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (address, int(port)))
                    for address in ("127.0.0.1", "127.0.0.2")]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _nodes(tmp_path: Path, shared: bool) -> Iterator[TwoNodes]:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
    nodes = TwoNodes(tmp_path, (one, one if shared else two))
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def _run(nodes: TwoNodes, script: str, *extra: str) -> int:
    batch = nodes.tmp / "batch"
    batch.write_text(script)
    return cli.main(["psftp-shell", "-F", str(nodes.tmp / "ssh_config"),
                     "-n", "4", *extra, "-b", str(batch), "nodes"])


def test_shared_nodes_carry_streams_on_both_addresses(
        tmp_path: Path, both_addresses: None) -> None:
    for nodes in _nodes(tmp_path, shared=True):
        data = os.urandom(9 * MIB)
        (nodes.roots[0] / "big").write_bytes(data)
        got = tmp_path / "got"
        status = _run(nodes, f"get big {got}\nput {got} back\n",
                      "-X", "addresses=all")
        assert status == 0
        assert got.read_bytes() == data
        assert (nodes.roots[0] / "back").read_bytes() == data
        assert nodes.logins["127.0.0.1"] >= 2      # control and streams
        assert nodes.logins["127.0.0.2"] >= 2


def test_without_the_option_only_the_first_address_is_used(
        tmp_path: Path, both_addresses: None) -> None:
    for nodes in _nodes(tmp_path, shared=True):
        (nodes.roots[0] / "big").write_bytes(os.urandom(5 * MIB))
        assert _run(nodes, f"get big {tmp_path}/got\n") == 0
        assert nodes.logins["127.0.0.2"] == 0
        assert nodes.logins["127.0.0.1"] == 1 + 4


def test_a_node_with_other_files_never_carries_data(
        tmp_path: Path, both_addresses: None) -> None:
    for nodes in _nodes(tmp_path, shared=False):
        one, two = nodes.roots
        (tmp_path / "up").mkdir()
        (tmp_path / "down").mkdir()
        for root in (one, two):
            (root / "files").mkdir()
        data = {f"f{i}": os.urandom(300_000) for i in range(12)}
        for name, content in data.items():
            (tmp_path / "up" / name).write_bytes(content)
            (one / "files" / name).write_bytes(content)
            # node two: other bytes under the same names, sizes, times
            (two / "files" / name).write_bytes(os.urandom(len(content)))
            stamp = os.stat(one / "files" / name).st_mtime
            os.utime(two / "files" / name, (stamp, stamp))
        os.utime(two, (1_000_000, 1_000_000))
        status = _run(nodes, f"get files/* {tmp_path}/down\n"
                      f"put {tmp_path}/up/* .\n", "-X", "addresses=all")
        assert status == 0
        for name, content in data.items():
            assert (tmp_path / "down" / name).read_bytes() == content
            assert (one / name).read_bytes() == content
            assert not (two / name).exists()
        assert nodes.logins["127.0.0.2"] >= 1      # tried, then dropped


def test_a_stream_seeing_another_file_is_kept_off_its_chunks(
        tmp_path: Path, both_addresses: None,
        capfd: pytest.CaptureFixture[str]) -> None:
    for nodes in _nodes(tmp_path, shared=False):
        one, two = nodes.roots
        data = os.urandom(9 * MIB)
        (one / "big").write_bytes(data)
        (two / "big").write_bytes(os.urandom(9 * MIB + 1))
        # node two passes the start-directory check: same attributes
        stamp = os.stat(one).st_mtime
        os.utime(two, (stamp, stamp))
        got = tmp_path / "got"
        status = _run(nodes, f"get big {got}\n", "-X", "addresses=all")
        # the stream that starts the copy decides: on node one, node two's
        # streams are kept off; on node two, the copy fails.  Never mixed.
        if status == 0:
            assert got.read_bytes() == data
        else:
            assert "differs between the host's addresses" in \
                capfd.readouterr().err
            assert not got.exists()


def test_the_option_takes_first_or_all(capfd: pytest.CaptureFixture[str]
                                       ) -> None:
    assert cli.main(["psftp-shell", "-X", "addresses=some", "host"]) == 255
    assert "must be first or all" in capfd.readouterr().err
