"""psftp-shell: an OpenSSH sftp-compatible client with parallel transfers."""

from psftp_shell.core import depwarnings

__version__ = "0.1.0"

# Before anything can import asyncssh or cryptography: their warnings
# are theirs to fix, not the user's to read (see depwarnings).
depwarnings.quiet()
