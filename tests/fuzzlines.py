"""A seeded generator of sftp command lines for the grammar fuzz test.

Lines are ``bytes`` (they may hold invalid UTF-8 and control bytes) and
mix valid and broken input: every command of the command table with
valid and invalid flags, quoting of every kind, globs, the ``-``/``@``
prefixes, comments, blank lines, lines around the 2047-byte limit, too
many words and ``!`` escapes.

Every path a line can name stays inside the throwaway tree it runs in:
names come from a small relative vocabulary, and :func:`unsafe` (applied
to each candidate line) rejects anything that could reach outside it,
by looking at the raw bytes (no ``~``, no ``..``, no absolute or
dot-leading component) and at the parse psftp-shell makes of it (no
``lcd`` to the home directory).  A bare ``cd`` is harmless: the servers
the fuzz test uses start in the tree.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psftp_shell.shell.command_line import parse
from psftp_shell.shell.commands import COMMANDS, Command, Syntax, lookup
from psftp_shell.shell.context import Invocation
from psftp_shell.shell.grammar import GrammarError, split_prefix, tokenize

MAX_LINE = 2047
"""The longest line sftp reads in one piece (its 2048-byte buffer)."""

FILES = ("a", "b.txt", "sp ace", "dir1/f", "dir1/g.txt", "ln_a", "st*r",
         "e", "q'uote")
DIRS = ("dir1", "sub", "sub/deep")
NEW = ("n1", "n2", "dir1/n3", "sub/n4", "nd", "sub/nd2")
GLOBS = ("*", "?", "d*", "*.txt", "[ab]*", "[!a]*", "dir1/*", "{a,e}",
         "{dir1,sub}/*", "s[", "[", "]", "*/*", "st\\*r", "[[:alpha:]]*",
         "[a-c]", "sub/*/*", "{a,", "*]", "[]]", "[!]")
NUMBERS = ("644", "0755", "0x1ff", "-1", "4294967296", " 7", "8", "09",
           "abc", "+12", "0x", "1e3", "0777777777777", "0", "4294967295",
           "0X10", "-0")
BANG = ("", "true", "echo x", "fail now", "ls *", "exit 3", " ", "a;b",
        "$(x)", "`x`")
QUITS = ("bye", "exit", "quit")
UNKNOWN = ("lsx", "foo", "l", "getx", "!!", "-", "@", "--", "cd-", "?x")
CONTROL = tuple(bytes([b]) for b in (*range(1, 9), 0x0e, 0x1b, 0x1f, 0x7f))
BAD_UTF8 = (b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\x80", b"\xed\xa0",
            b"\xf4\x90\x80\x80")

_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz"
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SLASH_AFTER = _NAME_CHARS | frozenset(b"*?].")
_DOT_AFTER = _NAME_CHARS | frozenset(b"*?")
_STALE_LEADERS = (b"pwd", b"version", b"ls", b"progress", b"help")


def build_tree(root: Path) -> None:
    """Fill *root* with the small tree the vocabulary names."""
    (root / "dir1").mkdir()
    (root / "sub" / "deep").mkdir(parents=True)
    for name, size in (("a", 100), ("b.txt", 3000), ("sp ace", 1),
                       ("dir1/f", 70000), ("dir1/g.txt", 0), ("st*r", 5),
                       ("e", 2), ("q'uote", 9), ("sub/deep/x", 10)):
        (root / name).write_bytes(bytes(i % 251 for i in range(size)))
    (root / "ln_a").symlink_to("a")
    (root / "dangling").symlink_to("nowhere")


def unsafe(raw: bytes, *, allow_stale: bool = False) -> str | None:
    """Why *raw* could touch something outside the tree (None: it cannot).

    The byte rules hold whoever parses the line; the parse rules use
    psftp-shell's grammar (lines too long to run are not parsed).
    """
    reason = _unsafe_bytes(raw, allow_stale)
    if reason is None and len(raw) <= MAX_LINE:
        reason = _unsafe_parse(raw)
    return reason


def _unsafe_bytes(raw: bytes, allow_stale: bool) -> str | None:
    """The parser-independent rules."""
    if b"~" in raw:
        return "tilde"
    if b".." in raw:
        return "dot-dot"
    if not allow_stale and (b"\v" in raw or b"\f" in raw):
        return "vertical tab or form feed"
    for index, byte in enumerate(raw):
        before = raw[index - 1] if index else None
        if byte == ord("/") and before not in _SLASH_AFTER:
            return "absolute or odd component"
        if byte == ord(".") and before not in _DOT_AFTER:
            return "component that starts with a dot"
    return None


def _unsafe_parse(raw: bytes) -> str | None:
    """The rules that need psftp-shell's reading of the line."""
    text = raw.split(b"\n", 1)[0].split(b"\0", 1)[0].decode(
        "utf-8", "surrogateescape")
    rest = split_prefix(text).rest
    try:
        words = tokenize(rest)
        parsed = parse(rest)
    except GrammarError:
        return None
    if parsed is None:
        return None
    if not words and not rest.startswith("!"):
        return "runs the previous line's command"
    cmd, inv = parsed
    if cmd.name in ("lcd", "lchdir") and not inv.arg(0):
        return "lcd to the home directory"
    return None


def parsed(raw: bytes) -> tuple[Command, Invocation] | None:
    """What psftp-shell reads *raw* as (None: nothing, or an error)."""
    text = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    try:
        return parse(split_prefix(text).rest)
    except GrammarError:
        return None


def plain_letters(raw: bytes) -> bytes:
    """The line without quotes and backslashes, lower case."""
    return re.sub(rb"['\"\\]", b"", raw).lower()


@dataclass
class LineMaker:
    """Makes fuzz lines from one seeded random generator.

    :param local_cd: whether ``lcd``/``lchdir`` lines may be made (only
        lines psftp-shell reads as ``lcd`` into the tree are kept)
    :param stale: whether lines that rerun the previous command (a lone
        vertical tab) may be made, each after a harmless command
    """

    rng: random.Random
    local_cd: bool = True
    stale: bool = True

    def lines(self, count: int) -> list[bytes]:
        """At least *count* safe lines (a stale pair counts as two)."""
        out: list[bytes] = []
        while len(out) < count:
            out += self.unit()
        return out

    def unit(self) -> list[bytes]:
        """One safe line, or a harmless line and a stale rerun of it."""
        while True:
            if self.stale and self.rng.random() < 0.02:
                leader = self.rng.choice(_STALE_LEADERS)
                return [leader, self.rng.choice((b"\v", b"\f", b" \v "))]
            raw = self.candidate()
            if not self.local_cd and b"lc" in plain_letters(raw):
                continue
            if unsafe(raw) is None:
                return [raw]

    def candidate(self) -> bytes:
        """One line, before the safety check."""
        kinds: list[tuple[float, Callable[[], bytes]]] = [
            (70, self.command), (4, self.blank), (4, self.comment),
            (4, self.garbage), (4, self.long_line), (6, self.bang),
            (2, self.many_words), (4, self.unknown)]
        total = sum(weight for weight, _ in kinds)
        pick = self.rng.uniform(0, total)
        for weight, make in kinds:
            pick -= weight
            if pick <= 0:
                return make()
        return self.command()

    # ------------------------------------------------------------ kinds

    def prefix(self) -> bytes:
        """A ``-``/``@`` prefix with white space, often none."""
        if self.rng.random() < 0.5:
            return b""
        parts = self.rng.choices((b"-", b"@", b" ", b"\t", b"\r"),
                                 k=self.rng.randint(1, 4))
        return b"".join(parts)

    def command(self) -> bytes:
        """A command word of the table with arguments."""
        cmd = self.rng.choice(COMMANDS)
        if cmd.name in QUITS and self.rng.random() < 0.7:
            cmd = self.rng.choice(COMMANDS)     # fewer early ends
        word = cmd.name
        if self.rng.random() < 0.1:
            word = "".join(c.upper() if self.rng.random() < 0.5 else c
                           for c in word)
        words = [self.quote(word)] if cmd.name != "!" else ["!"]
        words += [self.quote(w) for w in self.arguments(cmd.name)]
        line = self.prefix() + " ".join(words).encode(
            "utf-8", "surrogateescape")
        if self.rng.random() < 0.1:
            line += self.rng.choice((b" # comment", b"#x", b" #", b"\t#!"))
        return self.mutate(line)

    def blank(self) -> bytes:
        """An empty or white-space-only line."""
        return self.rng.choice((b"", b" ", b"\t", b"  \t ", b"\r", b"-",
                                b"@", b"-@", b" - ", b"@ @"))

    def comment(self) -> bytes:
        """A comment line."""
        return self.prefix() + self.rng.choice((b"#", b"# ls", b"#!true",
                                                b" #rm *", b"#'"))

    def garbage(self) -> bytes:
        """Control characters and invalid UTF-8, maybe after a command."""
        head = self.rng.choice((b"", b"ls ", b"get ", b"cd ", b"-",
                                b"mkdir "))
        body = b"".join(self.rng.choice(CONTROL + BAD_UTF8 + (b"a", b" "))
                        for _ in range(self.rng.randint(1, 12)))
        return head + body

    def long_line(self) -> bytes:
        """A line of a length near sftp's 2047-byte limit, or far above."""
        length = self.rng.choice((2045, 2046, 2047, 2048, 2049, 3000))
        head = self.rng.choice((b"ls ", b"-ls ", b"get ", b"mkdir ",
                                b"-rm '", b"!echo "))
        fill = self.rng.choice((b"a", b"*", b"\\", b" ", b"\xff"))
        return (head + fill * length)[:length]

    def many_words(self) -> bytes:
        """More words than sftp's argument limit, or just fewer."""
        count = self.rng.choice((126, 127, 128, 129, 200))
        head = self.rng.choice((b"ls", b"-rm", b"get", b"put", b"lls"))
        return head + b" a" * count

    def unknown(self) -> bytes:
        """A word that is not a command."""
        word = self.rng.choice(UNKNOWN).encode()
        return self.prefix() + word + b" " + self.path().encode()

    def bang(self) -> bytes:
        """A ``!`` escape or ``lls``; $SHELL is a harmless script."""
        head = self.rng.choice((b"!", b"! ", b"lls", b"lls ", b"LLS "))
        body = self.rng.choice(BANG).encode()
        if head.startswith(b"lls") and self.rng.random() < 0.5:
            body = self.rng.choice((b"-l ", b"-la ", b"-z ")) + \
                self.path().encode()
        return self.prefix() + head + body

    # ------------------------------------------------------- arguments

    def arguments(self, name: str) -> list[str]:
        """Words for command *name*: flags, numbers, paths."""
        cmd = lookup(name)
        assert cmd is not None
        words: list[str] = []
        if self.rng.random() < 0.4:
            words.append(self.flag_word(cmd.flags))
        if cmd.syntax in (Syntax.NUMBER, Syntax.NUMBER_PATH) and \
                self.rng.random() < 0.8:
            words.append(self.rng.choice(NUMBERS))
        if name in ("lcd", "lchdir"):
            if not self.local_cd:
                return words
            return words + [self.rng.choice(DIRS + ("a", "nd"))]
        for _ in range(self.rng.choice((0, 1, 1, 2, 2, 3, 4))):
            words.append(self.path())
        return words

    def flag_word(self, flags: str) -> str:
        """A flag cluster: valid letters, invalid ones, ``-`` or ``--``."""
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.choice(("-", "--", "-laf1", "-l-", "-:"))
        pool = flags + "xzQ-" if roll < 0.4 or not flags else flags
        count = self.rng.randint(1, 4)
        return "-" + "".join(self.rng.choice(pool) for _ in range(count))

    def path(self) -> str:
        """A relative path or glob from the vocabulary, or odd text."""
        roll = self.rng.random()
        if roll < 0.45:
            return self.rng.choice(FILES + DIRS)
        if roll < 0.65:
            return self.rng.choice(GLOBS)
        if roll < 0.8:
            return self.rng.choice(NEW)
        if roll < 0.85:
            return "x" * self.rng.choice((200, 255, 256, 1000))
        if roll < 0.9:
            return self.rng.choice(DIRS) + "/" + self.rng.choice(GLOBS)
        return self.rng.choice(("", " ", "-", "#", "\\", "a\\", "-x",
                                "\\-a", "a b", "'", '"'))

    def quote(self, word: str) -> str:
        """Write *word* with some quoting, sometimes broken."""
        roll = self.rng.random()
        if roll < 0.55:
            return word.replace(" ", "\\ ") if self.rng.random() < 0.7 \
                else word
        if roll < 0.7:
            return "'" + word + "'"
        if roll < 0.82:
            return '"' + word + '"'
        if roll < 0.87:
            return self.rng.choice(("'", '"')) + word     # unbalanced
        if roll < 0.94:
            cut = self.rng.randint(0, len(word))
            return word[:cut] + '"' + word[cut:] + '"'
        return "".join("\\" + c if self.rng.random() < 0.5 else c
                       for c in word)

    def mutate(self, line: bytes) -> bytes:
        """Now and then, put a control or non-UTF-8 byte in the line."""
        if self.rng.random() >= 0.08:
            return line
        where = self.rng.randint(0, len(line))
        extra = self.rng.choice(CONTROL + BAD_UTF8 + (b"\0", b"\t"))
        return line[:where] + extra + line[where:]


def script(lines: list[bytes]) -> bytes:
    """The lines as a batch file."""
    return b"".join(line + b"\n" for line in lines)


def seeds(default: tuple[int, ...], environ: dict[str, str]
          ) -> tuple[int, ...]:
    """The seeds to run: ``PSFTP_FUZZ_SEED`` (comma-separated) or *default*."""
    text = environ.get("PSFTP_FUZZ_SEED", "")
    if not text.strip():
        return default
    return tuple(int(part) for part in text.split(",") if part.strip())


def line_count(default: int, environ: dict[str, str]) -> int:
    """How many lines a campaign runs: ``PSFTP_FUZZ_LINES`` or *default*."""
    text = environ.get("PSFTP_FUZZ_LINES", "")
    return int(text) if text.strip() else default


def chunks(lines: list[bytes], size: int) -> Iterator[list[bytes]]:
    """*lines* in batches of *size*, never splitting a stale pair."""
    start = 0
    while start < len(lines):
        end = min(start + size, len(lines))
        while end < len(lines) and lines[end].strip(b" ") in (b"\v",
                                                             b"\f"):
            end += 1
        yield lines[start:end]
        start = end
