"""The psftp-shell benchmark suite: ``python -m bench quick|full``.

It starts a private OpenSSH sshd, emulates wide-area paths with a
user-space relay (:mod:`bench.relay`), runs OpenSSH ``sftp``, psftp-shell
and, where installed, lftp and rclone side by side, and writes a markdown
report, JSON and a plot under ``bench/results/``.
"""
