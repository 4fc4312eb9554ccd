"""Generate man/psftp-shell.1 from the command table and the option list.

Run by ``make man``; ``tests/test_manpage.py`` fails when the committed
page differs from what this prints.
"""

from __future__ import annotations

import sys

from psftp_shell import __version__
from psftp_shell.commands import COMMANDS
from psftp_shell.helptext import OPTION_HELP, usage


def esc(text: str) -> str:
    """Escape text for troff: backslashes, leading dots and dashes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def section(title: str) -> list[str]:
    return [f".SH {title}"]


def render() -> str:
    """Return the whole man page as troff source."""
    out = [
        f'.TH PSFTP-SHELL 1 "" "psftp-shell {__version__}" "User Commands"',
        *section("NAME"),
        "psftp\\-shell \\- OpenSSH sftp-compatible client with parallel "
        "transfers",
        *section("SYNOPSIS"),
        ".nf",
        *[esc(line) for line in
          usage("psftp-shell").removeprefix("usage: ").splitlines()],
        ".fi",
        *section("DESCRIPTION"),
        "psftp\\-shell is a drop\\-in replacement for OpenSSH's",
        ".BR sftp (1):",
        "the same options, interactive commands, batch files, messages and",
        "exit statuses, so that it can be used as",
        ".BR \"alias sftp=psftp\\-shell\" .",
        "It adds",
        ".B \\-n",
        ".IR N :",
        "every",
        ".B get",
        "and",
        ".B put",
        "runs on",
        ".I N",
        "streams at once.",
        "Unlike the CEA parallel-sftp patch, whose -n counted extra",
        "connections, N counts all streams, the first one included.",
        "Files are written under a temporary name beside the destination",
        "and renamed onto it only when every byte has arrived, so a failed",
        "transfer never leaves partial data under the final name.",
        *section("OPTIONS"),
    ]
    for flags, text in OPTION_HELP:
        out += [".TP", f".B {esc(flags)}", esc(text)]
    out += section("COMMANDS")
    out += ["Commands are case-insensitive.  A line starting with",
            ".B \\-",
            "does not end a batch when it fails; one starting with",
            ".B @",
            "is not echoed.  Lines starting with # are comments."]
    for cmd in COMMANDS:
        if not cmd.usage:
            continue
        for use, text in zip(cmd.usage.split("\n"),
                             cmd.help.split("\n") if "\n" in cmd.usage
                             else [cmd.help.replace("\n", " ")],
                             strict=True):
            out += [".TP", f".B {esc(use)}", esc(text)]
    aliases = [c.name for c in COMMANDS if not c.usage]
    out += [".PP", "Also accepted, as in sftp: "
            + esc(", ".join(aliases)) + "."]
    out += section("CONFIGURATION")
    out += [
        "Settings are read from",
        ".IR $XDG_CONFIG_HOME/psftp\\-shell/config",
        "(by default",
        ".IR ~/.config/psftp\\-shell/config ),",
        "one",
        ".I key = value",
        "per line; # starts a comment.",
        ".TP", ".B connections = N",
        "the number of parallel streams, 1 to 64, as with \\-n.",
        "The option wins over the environment variable",
        ".BR PSFTP_SHELL_CONNECTIONS ,",
        "which wins over the file.",
        ".TP", ".B channels = N",
        "SFTP channels per SSH connection, 1 to 64 (also",
        ".BR \"\\-X channels=N\" ):",
        "N streams then share fewer TCP connections, for servers that",
        "limit connections or logins that ask for a one\\-time code.",
        ".TP", ".B addresses = first | all",
        "with",
        ".B all",
        "(also",
        ".BR \"\\-X addresses=all\" ),",
        "the streams go to every address the host name resolves to,",
        "in turn, for a cluster of transfer nodes sharing one",
        "filesystem.  An address is used only once a connection to it",
        "shows the same start directory (attributes and filesystem id)",
        "as the first; chunked downloads also compare each stream's",
        "view of the file.",
        ".TP", ".B verify = size | hash | none",
        "how a copy is checked before its temporary is renamed onto",
        "the destination (also",
        ".BR \"\\-X verify=...\" ):",
        ".B size",
        "(the default) compares the sizes;",
        ".B hash",
        "compares SHA\\-256 hashes of 4 MiB ranges, computed by the",
        "server's check\\-file extension where it has one, else by",
        "reading the copy back; a range that differs is copied again,",
        "and the command fails if it still differs.",
        ".B none",
        "checks nothing, as sftp.",
        ".TP", ".B verify\\-exec = yes | no",
        "with",
        ".BR yes ,",
        ".B verify = hash",
        "may run",
        ".B dd",
        "and",
        ".B sha256sum",
        "on the server over the SSH connection instead of reading the",
        "copy back (also",
        ".BR \"\\-X verify\\-exec=yes\" ).",
    ]
    out += section("DIFFERENCES FROM SFTP")
    out += [
        "OpenSSH sftp splits a batch or piped input line longer than 2047",
        "bytes into several commands, which can run a command nobody",
        "wrote.  psftp\\-shell prints",
        ".B Error: input line too long",
        "and treats the line as a failed command.",
        ".PP",
        "A transfer writes to a temporary file beside its destination and",
        "renames it into place at the end; sftp writes in place and leaves",
        "a truncated file behind when a transfer fails.",
        ".PP",
        ".B put \\-a \\-R",
        "skips files already complete on the server and sends missing",
        "ones whole, as a resumed",
        ".B get \\-a \\-R",
        "does; sftp fails both.",
        ".PP",
        "Logging in takes fewer round trips than ssh: when public\\-key",
        "authentication comes first, no",
        ".B none",
        "request is sent before the first key, and a key that is",
        "unencrypted on disk is sent signed at once instead of first",
        "asking whether the server would accept it.  Agent keys,",
        "encrypted keys and security keys are still offered first, as",
        "ssh does.  With an OpenSSH server, authentication starts right",
        "behind the request for the authentication service instead of",
        "after the server has accepted it.  A server's log shows these",
        "requests differently.",
        ".PP",
        "With more than one stream, a",
        ".B put",
        "of one big file to a named target opens its temporary file beside",
        "the target while it asks whether the target is a directory; if",
        "it is, that temporary is removed again and the file goes inside.",
        ".PP",
        "A copy onto its own source (the server runs on this machine, or",
        "both ends share a filesystem) is refused with",
        ".B is the same file",
        "and fails; sftp truncates the file.  The two are taken for one",
        "file when they agree on size, mtime and mode and an access time",
        "set on the local one shows in the remote one; the access time is",
        "put back at once.",
        ".PP",
        "With more than one stream, a big file rewritten during the copy",
        "(a new mtime, no growth) is copied again from the start, up to",
        "three times, so that nothing read before the change stays in",
        "the result.",
    ]
    out += section("LOST CONNECTIONS")
    out += [
        "Every command ends, whatever happens to its connections.  A",
        "connection closed or reset is noticed at once.  One that goes",
        "silent is given up, as by",
        ".BR ssh (1),",
        "after",
        ".B ServerAliveInterval",
        r"\(mu",
        ".B ServerAliveCountMax",
        "seconds without an answer (one interval more at most); a stream",
        "that cannot log in within three times",
        ".B ConnectTimeout",
        "(30 seconds without it) is tried again (in batch mode, a login",
        "of the control connection that long fails as ssh's does),",
        "and a command waits at",
        "most",
        ".B ConnectTimeout",
        "(10 seconds) for its first stream before it starts on the",
        "control connection.  The ranges a lost stream had not finished go",
        "to the other streams, to a replacement, and last to the control",
        "connection; once the control connection is lost too, the command",
        "fails with",
        ".B Connection closed",
        "and exit status 255, keeping its temporary and journal, so that",
        ".BR reget ,",
        ".B reput",
        "or",
        r".B \-a",
        "move only what is missing.  A command therefore ends within the",
        "time it needs to move its data plus, for each connection lost,",
        "at most",
        ".B ServerAliveInterval",
        r"\(mu",
        r".RB ( ServerAliveCountMax \~+\~1)",
        "+",
        ".B ConnectTimeout",
        "seconds.  With",
        ".B ServerAliveInterval",
        "at its default of 0, a silent connection is waited for as ssh",
        r"waits for it; Ctrl\-C or SIGTERM still ends the command: once it",
        "is stopping, a stream that has not answered its oldest request",
        "for 5 seconds is given up.",
    ]
    out += section("EXIT STATUS")
    out += [
        "0 on success; 1 for a usage error, a failed batch command or a",
        "failed automatic fetch; 255 when the connection fails or is lost.",
    ]
    out += section("SEE ALSO")
    out += [".BR sftp (1),", ".BR ssh (1),", ".BR ssh_config (5)"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
