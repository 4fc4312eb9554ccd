"""psftp-shell's help texts: sftp's usage message and the option list."""

from __future__ import annotations

_USAGE = (
    "usage: {prog} [-46AaCfNpqrv] [-B buffer_size] [-b batchfile]"
    " [-c cipher]\n"
    "          [-D sftp_server_command] [-F ssh_config]"
    " [-i identity_file]\n"
    "          [-J destination] [-l limit] [-n connections]"
    " [-o ssh_option]\n"
    "          [-P port] [-R num_requests] [-S program]"
    " [-s subsystem | sftp_server]\n"
    "          [-X sftp_option] destination\n"
)

# psftp-shell's own -X settings: name -> validator.  A validator takes the
# text after "=" and returns the value, or raises ValueError with a short


def usage(prog: str) -> str:
    """Return sftp's usage text for *prog*, with ``[-n connections]``."""
    return _USAGE.format(prog=prog)


# The option list of the man page and of any generated help, in sftp's
# order; the texts are ours.
OPTION_HELP: tuple[tuple[str, str], ...] = (
    ("-4", "Use IPv4 addresses only."),
    ("-6", "Use IPv6 addresses only."),
    ("-A", "Forward the authentication agent (passed to ssh)."),
    ("-a", "Resume every transfer, as reget and reput do."),
    ("-B buffer_size", "Bytes per read or write request (default: what "
     "the server's limits@openssh.com offers, else 32768)."),
    ("-b batchfile", "Read commands from batchfile (- for stdin); stop at "
     "the first failing command not prefixed with -.  Implies quiet "
     "operation and BatchMode yes."),
    ("-C", "Enable compression."),
    ("-c cipher", "The cipher to encrypt with."),
    ("-D sftp_server_command", "Run a local SFTP server and talk to it "
     "over pipes instead of connecting with SSH."),
    ("-F ssh_config", "Read this ssh client configuration file instead "
     "of ~/.ssh/config and /etc/ssh/ssh_config."),
    ("-f", "Flush each transferred file to disk (fsync)."),
    ("-i identity_file", "A private key to authenticate with."),
    ("-J destination", "Connect through this jump host (ProxyJump)."),
    ("-l limit", "Limit the bandwidth, in Kbit/s, of all streams "
     "together."),
    ("-N", "Undo the quiet mode that -b implies."),
    ("-n connections", "Run every get and put on this many parallel "
     "streams, 1 to 64 (default 1, or PSFTP_SHELL_CONNECTIONS, or the "
     "configuration file).  Unlike the CEA parallel-sftp patch, whose -n "
     "counted extra connections, this counts all streams."),
    ("-o ssh_option", "Any ssh_config option, as Key=Value."),
    ("-P port", "The port to connect to."),
    ("-p", "Preserve modes and times of transferred files."),
    ("-q", "Quiet: no progress meter, no informational messages."),
    ("-R num_requests", "Requests in flight per stream (default 64)."),
    ("-r", "Copy directories recursively."),
    ("-S program", "Use program instead of ssh for the connection."),
    ("-s subsystem | sftp_server", "The SSH subsystem, or the path of the "
     "server program, to run on the remote host (default sftp)."),
    ("-v", "More verbose logging; up to three times."),
    ("-X sftp_option", "buffer=SIZE or nrequests=N as in sftp, or a "
     "psftp-shell setting such as connections=N."),
)
