"""psftp-shell: an OpenSSH sftp-compatible client with parallel transfers."""

from psftp_shell.core import depwarnings, quick_exit

__version__ = "0.1.0"

# Before anything can import asyncssh or cryptography: their warnings
# are theirs to fix, not the user's to read (see depwarnings).
depwarnings.quiet()

# First of all exit handlers, so that it runs after every other one.
quick_exit.watch()
