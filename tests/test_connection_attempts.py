"""ConnectionAttempts, as ssh reads and uses it: an integer from 1 up,
and that many rounds of connecting, a second apart."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD, free_port
from psftp_shell.ssh.config_words import integer_error
from tests.twins import psftp, sftp


@pytest.mark.parametrize("value", ["abc", "-1", "0", "99999999999", "2"])
def test_values_checked_as_ssh_checks_them(sshd: PrivateSSHD, sftp_bin: str,
                                          tmp_path: Path, value: str) -> None:
    args = ["-o", f"ConnectionAttempts={value}", "-F", str(sshd.ssh_config),
            "-b", "-", HOST_ALIAS]
    theirs = sftp(sftp_bin, args, stdin=b"pwd\n", cwd=tmp_path)
    ours = psftp(args, stdin=b"pwd\n", cwd=tmp_path)
    assert ours == theirs
    assert (theirs.status == 0) is (value == "2")


def test_zero_in_a_config_file(sftp_bin: str, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host x\n  ConnectionAttempts 0\n")
    args = ["-F", str(config), "-b", "-", "x"]
    assert psftp(args, cwd=tmp_path) == sftp(sftp_bin, args, cwd=tmp_path)


def test_integer_error() -> None:
    """misc.c ``atoi_err``: an empty value is "missing"."""
    assert [integer_error(v) for v in
            ("1", " 7", "+3", "-0", "x", "", "1.5", "2147483648", "-2")] \
        == [None, None, None, None, "invalid", "missing", "invalid",
            "too large", "too small"]


def _forward_later(port: int, target: int, delay: float) -> threading.Thread:
    """After *delay*, listen on *port* and pass one connection to
    *target* (until either side closes)."""
    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)
        except OSError:         # the other side went first
            pass

    def serve() -> None:
        time.sleep(delay)
        with socket.create_server(("127.0.0.1", port)) as listener:
            listener.settimeout(30)
            conn, _ = listener.accept()
        with conn, socket.create_connection(("127.0.0.1", target)) as up:
            back = threading.Thread(target=pipe, args=(up, conn))
            back.start()
            pipe(conn, up)
            back.join(30)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_refused_connection_is_tried_again(sshd: PrivateSSHD,
                                             tmp_path: Path,
                                             attempts: int) -> None:
    """The server's port opens half a second after the first try."""
    port = free_port()
    forwarder = _forward_later(port, sshd.port, 0.5)
    started = time.monotonic()
    alias = f"HostKeyAlias=[127.0.0.1]:{sshd.port}"   # its known key
    ours = psftp(["-o", f"ConnectionAttempts={attempts}", "-P", str(port),
                  "-o", alias, "-F", str(sshd.ssh_config), "-b", "-",
                  HOST_ALIAS],
                 stdin=b"pwd\n", cwd=tmp_path)
    took = time.monotonic() - started
    if attempts == 1:
        assert ours.status == 255
        assert b"Connection refused" in ours.stderr
        for _ in range(100):            # let the forwarder end
            try:
                socket.create_connection(("127.0.0.1", port), 10).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
    else:
        assert ours.status == 0, ours.stderr
        assert b"Remote working directory" in ours.stdout
        assert took >= 1.0              # a second between two rounds
    forwarder.join(30)
