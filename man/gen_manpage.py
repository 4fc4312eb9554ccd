"""Generate man/psftp-shell.1 from the command table and the option list.

Run by ``make man``; ``tests/test_manpage.py`` fails when the committed
page differs from what this prints.
"""

from __future__ import annotations

import sys

from psftp_shell import __version__
from psftp_shell.frontend.usage import OPTION_HELP, usage
from psftp_shell.shell.commands import COMMANDS
from psftp_shell.ssh.option_table import rows as ssh_option_rows


def esc(text: str) -> str:
    """Escape text for troff: backslashes, leading dots and dashes."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def section(title: str) -> list[str]:
    return [f".SH {title}"]


def ssh_options_section() -> list[str]:
    """The table of ssh options passed with -o (a tbl table)."""
    out = section("SSH OPTIONS")
    out += [
        "How each ssh option given with",
        ".B \\-o",
        "(or read from ssh_config) is treated, next to the ssh that sftp",
        "runs.",
        ".B as ssh",
        "options behave as ssh's do under sftp;",
        ".B differently",
        "ones as the note says;",
        ".B ignored",
        "ones are named in a warning and have no effect;",
        ".B refused",
        "ones get ssh's own words.  Tokens",
        "(%h, %p, %r, %n and the others) are expanded once, after every",
        "config file, as ssh does.  With",
        ".BR \"\\-S ssh\" ,",
        "ssh itself reads them all.",
        ".na",
        ".TS",
        "l l lx.",
        "Option\tTreatment\tNote",
        "_",
    ]
    for row in ssh_option_rows():
        note = f"T{{\n{esc(row.note)}\nT}}" if row.note else ""
        out.append(f"{esc(row.name)}\t{esc(row.treatment.value)}\t{note}")
    out += [".TE", ".ad"]
    return out


def render() -> str:
    """Return the whole man page as troff source."""
    out = [
        "'\\\" t",
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
        "A batch file that transfers opens them alongside its login.",
        "An interactive session whose login offers a key that asks nothing",
        "to sign (unencrypted, or an agent's) connects up to 8 of them",
        "beside that login, to a host known_hosts knows, and they",
        "authenticate only once it has succeeded, with what it was told",
        "and without asking or printing anything (one that would is left",
        "to the first transfer; one held over 10 s gives up).",
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
        "A command that copies several files keeps up to eight of them",
        "in flight, even at",
        ".BR \\-n\\ 1 :",
        "a server's log shows their requests interleaved and numbered",
        "otherwise, while what is printed is sftp's, in sftp's order (but",
        "for the number in",
        ".B Unexpected reply",
        "from a broken server).  sftp's progress meter draws their lines",
        "one after the other, each in its place among the messages.",
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
    out += openssh_fixes()
    out += ssh_options_section()
    out += section("PERFORMANCE")
    out += [
        "All streams share one process.  On loopback, with two shared",
        "cores, its CPU per GiB moved is about three quarters of sftp's",
        "with its ssh: in the latest",
        ".B make bench\\-cpu",
        "run (512 MiB), 1.73 to 1.80 CPU seconds per GiB for a get",
        "against sftp's 2.28, and 1.60 to 1.61 for a put against sftp's",
        "2.33; starting up takes a fixed 0.27 s of it.",
        "With",
        ".B \\-S ssh",
        "the ssh processes do the encryption and psftp\\-shell's own",
        "process takes",
        "0.94 to 1.14 s/GiB.",
        "So one process moves at most about one core's worth: faster",
        "paths need",
        ".B \\-S ssh",
        "or, later, worker processes.",
        "Many small files are bound by CPU as well: on the same machine,",
        "a get of 2,000 files of 0.1 to 4 KB went ×1.3 faster than with",
        "sftp at",
        ".B \\-n\\ 1",
        "(eight files in flight) and ×1.2 to ×1.3 at",
        ".BR \\-n\\ 8 ;",
        "a put of them about as fast as sftp's (×0.95 to ×1.14).",
        "The README has the tables, with lftp and rclone beside them.",
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
        "seconds without an answer (one interval more at most).  As for",
        ".BR ssh (1),",
        ".B ConnectTimeout",
        "bounds each connection's connect and the server's version line",
        "together",
        ".RB ( \"Connection timed out during banner exchange\" ),",
        "and after it a login gives up a server silent for",
        ".B ServerAliveInterval",
        r"\(mu",
        ".B ServerAliveCountMax",
        "seconds while nothing is asked of the user, in interactive",
        "sessions too; a stream",
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


OPENSSH_FIXES = [
    ("10.4", "download to a server\\-controlled path: sftp host:path "
     "pasted the start directory into a get command and parsed it again",
     "adopted: the cd and the get of host:path take their operands as "
     "words; a path with a space, quote or # is fetched where 9.2 fails"),
    ("10.4", "a server answering READ with zero bytes kept the download "
     "looping", "adopted, stricter: the first empty DATA ends the "
     "session (exit 255, server sent zero data length); it had been "
     "taken for the end of the file"),
    ("10.4", "copy\\-data reading and writing one file (a server "
     "change)", "adopted on the client side: cp truncates its target "
     "after the copy, not before, so cp f f or a link to f keeps f"),
    ("10.3", "the limits extension's open\\-handles value used as the "
     "number of outstanding requests", "adopted"),
    ("10.3", "a put \\-r reset the mode of a directory that already "
     "existed", "adopted: only a directory it made, or with \\-p"),
    ("10.4", "over\\-read of an empty REALPATH reply, or of a 2048\\-byte "
     "batch line ending in a backslash", "already safe: refused with "
     "sftp's message; long lines are refused whole"),
    ("10.1", "a failed WRITE hidden by later successful ones",
     "already safe: the upload fails, and with posix\\-rename nothing "
     "is left"),
    ("10.3", "a source named .. copied into the destination's parent",
     "adopted: it goes to the destination itself"),
    ("10.0", "a resumed put's high\\-water mark", "already safe: reput "
     "to a server that reorders replies is exact"),
    ("9.4", "a huge count of extended attributes decoded",
     "already safe: bounded by the packet"),
    ("9.4", "the final truncate on servers that reorder requests",
     "already safe: downloads are renamed into place when complete; "
     "reget from such a server is exact"),
    ("10.4", "close\\-on\\-exec descriptors to ssh, so that a ! "
     "command cannot write into the connection", "already safe: the "
     "descriptors Python opens are not inherited"),
    ("10.0", "ControlMaster no passed to ssh, so that sftp never "
     "starts a shared master connection", "not adopted: \\-S gets "
     "sftp 9.2's arguments exactly; otherwise there is no ssh process"),
    ("9.5", "symbolic links to directories in recursive copies",
     "not applicable: a change to scp's SFTP mode and scp \\-3 only"),
    ("9.8\\-10.3", "tab completion cutting a multibyte character; "
     "editline vi mode; flushing the prompt",
     "not applicable: no editline"),
    ("10.4", "the ls \\-n listing printing names",
     "not applicable: output, 9.2 kept"),
]
"""OpenSSH's changes to sftp.c, sftp-client.c, sftp-common.c and
sftp-glob.c from 9.2 to 10.5 that touch security or data safety; the
rest are leaks, renames and header order.  tests/test_openssh_fixes.py
holds a test for each."""


def openssh_fixes() -> list[str]:
    """The table of OpenSSH's sftp fixes after 9.2, with decisions."""
    out = [".PP",
           "OpenSSH's output as of 9.2 is the interface; the safety fixes",
           "OpenSSH made to sftp since then, up to 10.5, and what",
           "psftp\\-shell did with each:"]
    for release, change, decision in OPENSSH_FIXES:
        out += [".TP", f".B {release}", f"{change[0].upper()}{change[1:]}.",
                ".br",
                f"{decision[0].upper()}{decision[1:]}."]
    return out


if __name__ == "__main__":
    sys.stdout.write(render())
