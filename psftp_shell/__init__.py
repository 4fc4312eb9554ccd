"""psftp-shell: an OpenSSH sftp-compatible client with parallel transfers."""

__version__ = "0.1.0"
