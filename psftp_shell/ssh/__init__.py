"""SSH connections on asyncssh that behave like OpenSSH's ssh.

ssh_config and -o options, host keys, authentication, the algorithms
offered, one connection attempt, the quick login, the streams' logins
held beside the first and the quiet ones, SFTP channels, commands
run on the server (-X verify-exec), address spreading, -v's debug log,
and the transports (SSH channels or a local process's pipes).  Importing
the package prepares asyncssh's own import: its library look-ups without
a compiler run, and without its X.509 shim where that could not load.

May import: psftp_shell.sftp, psftp_shell.core, asyncssh.
"""

from psftp_shell.ssh import library_lookup, no_x509

library_lookup.watch()
no_x509.leave_out()
