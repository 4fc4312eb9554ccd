"""The private sshd rig itself: OpenSSH's sftp logs in with its config."""

from __future__ import annotations

import subprocess

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD


def test_sftp_logs_in_to_private_sshd(sshd: PrivateSSHD, sftp_bin: str
                                      ) -> None:
    (sshd.root / "hello.txt").write_text("hi\n")
    result = subprocess.run(
        [sftp_bin, "-F", str(sshd.ssh_config), "-b", "-", HOST_ALIAS],
        input=b"pwd\nls\n", capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        b"sftp> pwd", b"Remote working directory: " + bytes(sshd.root)]
    assert b"hello.txt" in result.stdout
