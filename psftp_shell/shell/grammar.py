"""The command-line grammar of OpenSSH's sftp shell (a pure module).

This is sftp.c's ``parse_args`` prefix handling, its ``makeargv``
tokenizer (strict, and sloppy for tab completion), the BSD ``getopt`` that
parses per-command flags, and the ``strtoll`` rules for numeric arguments.

Text is ``str``; bytes that are not UTF-8 are expected as lone surrogates
(``surrogateescape``).  The tokenizer and ``getopt`` work on the encoded
bytes, as sftp does, so lengths and flag characters count bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from psftp_shell.core.errors import ShellError

MAXARGS = 128
"""The most arguments makeargv keeps (one more fits without a trailer)."""

MAXARGLEN = 8192
"""The size of makeargv's word buffer; lines are at most one byte less."""

PREFIX_WHITESPACE = " \t\r\n"
"""What ``parse_args`` skips around the ``-``/``@`` prefix (misc.h)."""

_SPACE = frozenset(b" \t\n\v\f\r")      # isspace() in the C locale
_GLOB_META = frozenset(b"?[*")
_START, _SQUOTE, _DQUOTE, _UNQUOTED = range(4)
_COMPLETION_ESCAPED = frozenset("'\"\\\t[ #*")


class GrammarError(ShellError):
    """A line sftp rejects while parsing; the message is sftp's text."""


@dataclass(frozen=True, slots=True)
class LinePrefix:
    """A command line split into its ``-``/``@`` prefix and the rest."""

    ignore_errors: bool
    no_echo: bool
    rest: str


@dataclass(frozen=True, slots=True)
class CursorContext:
    """Where the cursor is, as sftp's completion sees the line before it.

    ``args`` are the words (sloppy ``makeargv``); ``arg_index`` is the
    index of the word the cursor is in, or ``len(args)`` when the text is
    empty or ends in a space (a new word starts there; sftp tests for a
    literal space only); ``quote`` is the quote that opened the last word
    begun (sftp's ``lastquote``: ``None`` if that word began unquoted);
    ``terminated`` is False when the text ends inside an open quote.
    """

    args: list[str]
    arg_index: int
    quote: str | None
    terminated: bool


def split_prefix(line: str) -> LinePrefix:
    """Split off the ``-`` (ignore errors) and ``@`` (no echo) prefix."""
    rest = line.lstrip(PREFIX_WHITESPACE)
    ignore_errors = no_echo = False
    index = 0
    while index < len(rest) and rest[index] in "-@":
        if rest[index] == "-":
            ignore_errors = True
        else:
            no_echo = True
        index += 1
    rest = rest[index:].lstrip(PREFIX_WHITESPACE)
    return LinePrefix(ignore_errors, no_echo, rest)


def is_blank_or_comment(rest: str) -> bool:
    """Return whether a line (after its prefix) is a no-op for sftp."""
    return rest == "" or rest.startswith("#") or rest.startswith("\0")


class _ArgvBuilder:
    """The output side of makeargv: words, and sftp's byte budget."""

    def __init__(self) -> None:
        """Start with no words."""
        self.words: list[bytearray] = []
        self.used = 0           # bytes of makeargv's argvs buffer in use
        self.argc = 0

    def start(self) -> None:
        """Begin a new word."""
        self.words.append(bytearray())

    def put(self, *chars: int) -> None:
        """Append bytes to the current word."""
        self.words[-1].extend(chars)
        self.used += len(chars)

    def grow(self, room: int, *chars: int) -> None:
        """Append where makeargv checks for room first (the text grows)."""
        if self.used >= MAXARGLEN - room:
            raise GrammarError("string too long")
        self.put(*chars)

    def finish(self) -> None:
        """End the current word (its NUL takes a byte)."""
        self.used += 1
        self.argc += 1

    def result(self) -> list[str]:
        """Return the finished words as text."""
        out = []
        for word in self.words[:self.argc]:
            end = word.find(0)      # a NUL ends a C string
            raw = bytes(word if end < 0 else word[:end])
            out.append(raw.decode("utf-8", "surrogateescape"))
        return out


def _encode(text: str) -> bytes:
    """Return the bytes of *text* up to the first NUL, as C sees them."""
    raw = text.encode("utf-8", "surrogateescape")
    end = raw.find(0)
    return raw if end < 0 else raw[:end]


def _makeargv(text: str, sloppy: bool
              ) -> tuple[list[str], str | None, bool]:
    """Port of sftp.c's makeargv: (words, lastquote, quote terminated)."""
    arg = _encode(text)
    if len(arg) > MAXARGLEN - 1:
        raise GrammarError("string too long")

    def at(k: int) -> int:
        # makeargv may step one byte past the terminating NUL (after a
        # trailing backslash); sftp's line buffer holds a NUL there too.
        return arg[k] if k < len(arg) else 0

    out = _ArgvBuilder()
    state = _START
    lastquote: int | None = None
    terminated = True
    i = 0
    while True:
        if out.argc >= MAXARGS + 1:
            raise GrammarError("Too many arguments.")
        c = at(i)
        if c in _SPACE:
            if state == _UNQUOTED:
                out.finish()
                state = _START
            elif state != _START:
                out.put(c)
        elif c in b"\"'":
            quoted = _DQUOTE if c == ord('"') else _SQUOTE
            if state == _START:
                out.start()
                state = quoted
                lastquote = c
            elif state == _UNQUOTED:
                state = quoted
            elif state == quoted:
                state = _UNQUOTED
            else:
                out.put(c)
        elif c == ord("\\"):
            nxt = at(i + 1)
            if state in (_SQUOTE, _DQUOTE):
                quote_char = ord("'") if state == _SQUOTE else ord('"')
                if nxt == quote_char:
                    out.put(nxt)
                elif nxt in _GLOB_META:
                    # glob will undo one level: "\*" stays a literal.
                    out.grow(5, c, c, c, nxt)
                else:
                    out.put(c, nxt)
                i += 1
            else:
                if state == _START:
                    out.start()
                    state = _UNQUOTED
                    lastquote = None
                if nxt in _GLOB_META or nxt == c:
                    out.put(c, nxt)
                else:
                    out.put(nxt)
                i += 1
        elif c == ord("#") and state not in (_SQUOTE, _DQUOTE):
            if state == _UNQUOTED:
                out.finish()
            break
        elif c == 0:
            if state in (_SQUOTE, _DQUOTE):
                if not sloppy:
                    raise GrammarError("Unterminated quoted argument")
                state = _UNQUOTED
                terminated = False
            if state == _UNQUOTED:
                out.finish()
            break
        else:
            if state == _START:
                out.start()
                state = _UNQUOTED
                lastquote = None
            if state in (_SQUOTE, _DQUOTE) and c in _GLOB_META:
                out.grow(3, ord("\\"), c)
            else:
                out.put(c)
        i += 1
    quote = None if lastquote is None else chr(lastquote)
    return out.result(), quote, terminated


def tokenize(text: str) -> list[str]:
    """Split a command line into words as sftp does (strict makeargv).

    Glob escapes stay in the words: quoted ``*?[`` come out as ``\\*``
    etc., unquoted ``\\*`` ``\\?`` ``\\[`` ``\\\\`` pairs are kept; any other
    backslash escape is resolved.  Raises :class:`GrammarError`.
    """
    return _makeargv(text, sloppy=False)[0]


def tokenize_sloppy(text: str) -> CursorContext:
    """Tokenize the text before the cursor, as sftp's tab completion does.

    An unterminated quote is allowed (the word runs to the end).  The
    length and argument-count limits still raise :class:`GrammarError`.
    """
    args, quote, terminated = _makeargv(text, sloppy=True)
    if not args or text.endswith(" "):
        arg_index = len(args)
    else:
        arg_index = len(args) - 1
    return CursorContext(args, arg_index, quote, terminated)


def getopt(command: str, argv: list[str], flags: str
           ) -> tuple[list[str], list[str]]:
    """Parse leading flags like sftp's BSD getopt (no permutation).

    *argv* are the words after the command word and *flags* the letters
    the command accepts (none takes a value).  Returns the flag letters
    in the order given and the operands.  Parsing stops at the first word
    that is not an option, at ``-`` (an operand) and after ``--``.  A
    ``-`` inside a cluster (``-l-``) also stops it, and that word becomes
    the first operand, as in OpenSSH's getopt.  An unknown flag raises
    ``GrammarError("<command>: Invalid flag -<c>")``.
    """
    allowed = flags.encode("ascii")
    found: list[str] = []
    optind = 0
    while optind < len(argv):
        word = argv[optind].encode("utf-8", "surrogateescape")
        if not word.startswith(b"-") or word == b"-":
            break
        if word == b"--":
            optind += 1
            break
        place = 1
        while place < len(word):
            char = word[place]
            place += 1
            if char == ord("-") and place == len(word):
                # A trailing "-" ends the options; optind stays put.
                return found, argv[optind:]
            if char in b":-" or char not in allowed:
                flag = bytes([char]).decode("utf-8", "surrogateescape")
                raise GrammarError(f"{command}: Invalid flag -{flag}")
            found.append(chr(char))
        optind += 1
    return found, argv[optind:]


def parse_number(text: str | None, base: int, command: str) -> int:
    """Parse a numeric argument with sftp's rules (``strtoll``).

    Leading white space and a sign are allowed; the digits must run to
    the end of the word, and the value must lie in 0..4294967295.
    Anything else (or no word at all) raises ``GrammarError("You must
    supply a numeric argument to the <command> command.")``.
    """
    error = GrammarError(
        f"You must supply a numeric argument to the {command} command.")
    if text is None:
        raise error
    raw = _encode(text)
    index = 0
    while index < len(raw) and raw[index] in _SPACE:
        index += 1
    sign = 1
    if index < len(raw) and raw[index] in b"+-":
        sign = -1 if raw[index] == ord("-") else 1
        index += 1
    digits = raw[index:]
    if not digits or not all(_digit_value(d) < base for d in digits):
        raise error
    value = sign * int(digits, base)
    if not 0 <= value <= 0xFFFFFFFF:
        raise error
    return value


def _digit_value(byte: int) -> int:
    """Return the value of a strtoll digit (99 for a non-digit)."""
    char = chr(byte).lower()
    if char.isascii() and char.isdigit():
        return ord(char) - ord("0")
    if "a" <= char <= "z":
        return ord(char) - ord("a") + 10
    return 99


def parse_octal(text: str | None, command: str) -> int:
    """Parse an octal argument (chmod, lumask) with sftp's rules."""
    return parse_number(text, 8, command)


def escape_completion(text: str, quote: str | None) -> str:
    """Escape text that completion inserts into a word, as sftp does.

    Quotes, backslash, tab, ``[``, space, ``#`` and ``*`` get a backslash
    when the word is unquoted, or (inside quotes) when the character is
    the open quote itself.
    """
    out = []
    for char in text:
        if char in _COMPLETION_ESCAPED and (quote is None or char == quote):
            out.append("\\")
        out.append(char)
    return "".join(out)
