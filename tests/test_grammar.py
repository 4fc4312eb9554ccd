"""Tests for psftp_shell.shell.grammar: prefixes, makeargv, getopt, numbers.

Besides the rules of spec §3.1 checked one by one, the tokenizer, the
flag parser and the number parser are compared with the real sftp
client: ``rename`` echoes both its parsed (unglobbed) words in its error
message, ``ls``/``rm`` echo their operand and ``lumask`` its number.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from psftp_shell.core.paths import make_absolute, undo_glob_escape
from psftp_shell.shell.grammar import (
    MAXARGLEN,
    MAXARGS,
    CursorContext,
    GrammarError,
    LinePrefix,
    escape_completion,
    getopt,
    is_blank_or_comment,
    parse_number,
    parse_octal,
    split_prefix,
    tokenize,
    tokenize_sloppy,
)


@pytest.fixture
def sftp_cmd(sftp_bin: str, sftp_server_bin: str) -> list[str]:
    """The real sftp client, talking to a local sftp-server (``-D``)."""
    return [sftp_bin, "-D", sftp_server_bin]


# -- helpers for the real client ----------------------------------------

def unvis(text: str) -> bytes:
    """Undo the strnvis(VIS_SAFE|VIS_OCTAL) that sftp's log applies."""
    out = bytearray()
    index = 0
    while index < len(text):
        if text.startswith("\\\\", index):
            out += b"\\"
            index += 2
        elif re.match(r"\\[0-7]{3}", text[index:index + 4]):
            out.append(int(text[index + 1:index + 4], 8))
            index += 4
        else:
            out += text[index].encode()
            index += 1
    return bytes(out)


def run_sftp(sftp_cmd: list[str], cwd: Path, line: str) -> tuple[list[str],
                                                           list[bytes]]:
    """Run one batch line; return (stdout lines but the echo, stderr)."""
    env = dict(os.environ, LC_ALL="C")
    proc = subprocess.run(
        sftp_cmd + ["-b", "-"], cwd=cwd, env=env,
        input=line.encode("utf-8", "surrogateescape") + b"\n",
        capture_output=True, timeout=30, check=False)
    out = proc.stdout.decode("utf-8", "replace").splitlines()
    err = proc.stderr.decode("ascii").splitlines()
    return ([x for x in out if not x.startswith("sftp> ")],
            [unvis(x.rstrip("\r")) for x in err])


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """An empty directory; its real path is the remote cwd of sftp -D."""
    path = tmp_path / "cwd"
    path.mkdir()
    return Path(os.path.realpath(path))


def enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# -- split_prefix ---------------------------------------------------------

@pytest.mark.parametrize("line, ignore, no_echo, rest", [
    ("ls", False, False, "ls"),
    ("  -ls /x", True, False, "ls /x"),
    ("-@ls /bsd", True, True, "ls /bsd"),
    ("@-rm x", True, True, "rm x"),
    ("--@-ls", True, True, "ls"),
    ("@ \t pwd  ", False, True, "pwd  "),
    ("\r\n- @ls", True, False, "@ls"),
    ("", False, False, ""),
    ("-", True, False, ""),
    ("\v-ls", False, False, "\v-ls"),
])
def test_split_prefix(line: str, ignore: bool, no_echo: bool,
                      rest: str) -> None:
    assert split_prefix(line) == LinePrefix(ignore, no_echo, rest)


@pytest.mark.parametrize("rest, blank", [
    ("", True), ("# comment", True), ("#", True), ("ls #x", False),
    (" ", False),
])
def test_blank_or_comment(rest: str, blank: bool) -> None:
    assert is_blank_or_comment(rest) is blank


# -- tokenize: the rules of spec §3.1 -------------------------------------

@pytest.mark.parametrize("text, words", [
    ("ls  a\tb\r", ["ls", "a", "b"]),                   # isspace, CRLF
    ('ls a"b c"d', ["ls", "ab cd"]),                    # quotes join
    ("ls 'a b'c", ["ls", "a bc"]),
    ('ls ""', ["ls", ""]),                              # empty argument
    ("ls '' x", ["ls", "", "x"]),
    ("ls a#b", ["ls", "a"]),                            # # ends the line
    ("ls a #b c", ["ls", "a"]),
    ('ls "a#b"', ["ls", "a#b"]),
    ("ls 'x'#y", ["ls", "x"]),
    ("sp\\ ace", ["sp ace"]),                           # \ + other: char
    ("\\a\\b\\#", ["ab#"]),
    ("ls \\*\\?\\[\\\\", ["ls", "\\*\\?\\[\\\\"]),      # escape pairs kept
    ("ls \\]", ["ls", "]"]),
    ("ls 'star*.txt'", ["ls", "star\\*.txt"]),          # quoted magic
    ('ls "q?[x]"', ["ls", "q\\?\\[x]"]),
    ("ls '\\s'", ["ls", "\\s"]),                        # both kept
    ('ls "\\s\\\\"', ["ls", "\\s\\\\"]),
    ('ls "\\*"', ["ls", "\\\\\\*"]),                    # \\\* (3 + 1)
    ("ls '\\?\\['", ["ls", "\\\\\\?\\\\\\["]),
    ('ls "it\\"s"', ["ls", 'it"s']),                   # escaped own quote
    ("ls 'it\\'s'", ["ls", "it's"]),
    ("ls 'say \"hi\"'", ["ls", 'say "hi"']),
    ('ls "it\\\'s"', ["ls", "it\\'s"]),                # other quote: kept
    ("ls x\\", ["ls", "x"]),                            # trailing \ drops
    ("ls \\", ["ls", ""]),
    ("ls \\ ", ["ls", " "]),
    ("ls\0 x", ["ls"]),                                 # NUL ends the line
    ("", []),
    ("   ", []),
    ("\u00e9 '\u00fc \u00f6'", ["\u00e9", "\u00fc \u00f6"]),
    ("a\udcff b", ["a\udcff", "b"]),                    # undecodable byte
])
def test_tokenize(text: str, words: list[str]) -> None:
    assert tokenize(text) == words


@pytest.mark.parametrize("text", [
    'ls "abc', "ls 'abc", 'ls a"b', 'ls "x\\"', "ls 'x\\", 'ls "a\\',
])
def test_tokenize_unterminated(text: str) -> None:
    with pytest.raises(GrammarError) as info:
        tokenize(text)
    assert str(info.value) == "Unterminated quoted argument"


def test_tokenize_argument_limit() -> None:
    words = [f"w{i}" for i in range(MAXARGS + 1)]
    # 129 words fit when nothing follows the last one ...
    assert tokenize(" ".join(words)) == words
    # ... but not when a separator (or a 130th word) follows.
    for text in (" ".join(words) + " ", " ".join(words + ["x"])):
        with pytest.raises(GrammarError, match=r"^Too many arguments\.$"):
            tokenize(text)


def test_tokenize_length_limit() -> None:
    assert tokenize("a" * (MAXARGLEN - 1)) == ["a" * (MAXARGLEN - 1)]
    with pytest.raises(GrammarError, match="^string too long$"):
        tokenize("a" * MAXARGLEN)
    # The limit counts bytes, not characters.
    with pytest.raises(GrammarError, match="^string too long$"):
        tokenize("\u00e9" * (MAXARGLEN // 2))


def test_tokenize_growth_limit() -> None:
    # A quoted "*" grows to "\*"; makeargv checks for room before each
    # (three bytes free), so 4095 fit in its 8192-byte buffer, not 4096.
    assert tokenize('"' + "*" * 4095 + '"') == ["\\*" * 4095]
    with pytest.raises(GrammarError, match="^string too long$"):
        tokenize('"' + "*" * 4096 + '"')
    # A quoted "\*" grows to four bytes (five must be free).
    assert tokenize('"' + "\\*" * 2047 + '"') == ["\\\\\\*" * 2047]
    with pytest.raises(GrammarError, match="^string too long$"):
        tokenize('"' + "\\*" * 2048 + '"')


# -- tokenize compared with the real sftp ---------------------------------

RENAME_CASES = [
    "a b", '"a b" c', "'a b' c", 'a"b c"d e', '"" x', "'' x",
    "sp\\ ace x", "'\\s' x", '"\\s" x', "back\\\\slash x",
    '"back\\\\slash" x', '"star*.txt" x', "star\\*.txt x", '"\\*" x',
    "'\\*' x", '"q?" "[ab]"', "\\[ab] \\?", "a#b c", '"a#b" c',
    'x "it\\"s"', "x 'it\\'s'", "x 'say \"hi\"'", 'x "say \'hi\'"',
    "x\tc", "x y\r", 'x "unterminated', "x 'unterminated", "x y\\",
    'x "y\\', "x \\", "x \\#", 'x a\\"b', "x \\'b", "-l a b",
    "-- -l b", "-x a b", "x", "\u00e9 '\u00fc \u00f6'", "x\\ y z",
    "\"a\"'b'c d", "x \"[\" ']'", "/abs/p 'rel p'", "-l", "- x",
    "-l- x", "--l x", "x\\\\\\* y\\?", "'\\\\' \"\\\\\\\\\"",
    "a\x01b c",
]


def predict_rename(text: str, cwd: str) -> bytes:
    """What sftp prints for ``rename <text>`` (server status cut off)."""
    try:
        words = tokenize("rename " + text)
        _flags, paths = getopt("rename", words[1:], "l")
    except GrammarError as exc:
        return enc(str(exc))
    if len(paths) < 2:
        return b"You must specify two paths after a rename command."
    old, new = (make_absolute(undo_glob_escape(p), cwd) for p in paths[:2])
    return enc(f'remote rename "{old}" to "{new}"')


def run_rename(sftp_cmd: list[str], cwd: Path, text: str) -> list[bytes]:
    """Run ``rename <text>``; return stderr without the server status."""
    _out, err = run_sftp(sftp_cmd, cwd, "rename " + text)
    return [line.rsplit(b": ", 1)[0] if line.startswith(b"remote rename")
            else line for line in err]


def test_tokenize_matches_sftp(sftp_cmd: list[str], scratch: Path) -> None:
    for text in RENAME_CASES:
        err = run_rename(sftp_cmd, scratch, text)
        assert err == [predict_rename(text, str(scratch))], text


def test_argument_limit_matches_sftp(sftp_cmd: list[str],
                                     scratch: Path) -> None:
    words = " ".join(f"w{i}" for i in range(MAXARGS))
    for text in (words, words + " ", words + " x"):
        err = run_rename(sftp_cmd, scratch, text)
        assert err == [predict_rename(text, str(scratch))]


# -- sloppy mode (tab completion) -----------------------------------------

@pytest.mark.parametrize("text, args, index, quote, terminated", [
    ("", [], 0, None, True),
    ("l", ["l"], 0, None, True),
    ("ls ", ["ls"], 1, None, True),
    ("get fo", ["get", "fo"], 1, None, True),
    ('get "fo', ["get", "fo"], 1, '"', False),
    ("get 'a b", ["get", "a b"], 1, "'", False),
    ("get 'a b' ", ["get", "a b"], 2, "'", True),     # lastquote stays
    ("get 'a' b", ["get", "a", "b"], 2, None, True),
    ('get a"b c', ["get", "ab c"], 1, None, False),    # began unquoted
    ('get "a ', ["get", "a "], 2, '"', False),        # literal space test
    ("get a\\ ", ["get", "a "], 2, None, True),
    ("get 'x*", ["get", "x\\*"], 1, "'", False),
    ("get x#", ["get", "x"], 1, None, True),
])
def test_tokenize_sloppy(text: str, args: list[str], index: int,
                         quote: str | None, terminated: bool) -> None:
    assert tokenize_sloppy(text) == CursorContext(args, index, quote,
                                                  terminated)


def test_tokenize_sloppy_limits() -> None:
    with pytest.raises(GrammarError, match="^Too many arguments\\.$"):
        tokenize_sloppy("x " * (MAXARGS + 1))
    with pytest.raises(GrammarError, match="^string too long$"):
        tokenize_sloppy("'" + "x" * MAXARGLEN)


@pytest.mark.parametrize("text, quote, escaped", [
    ("a b#c*[d]", None, "a\\ b\\#c\\*\\[d]"),
    ("it's \"x\"\t\\", None, "it\\'s\\ \\\"x\\\"\\\t\\\\"),
    ("it's a \"x\"", "'", "it\\'s a \"x\""),
    ("it's a \"x\"", '"', "it's a \\\"x\\\""),
    ("?\u00e9", None, "?\u00e9"),
])
def test_escape_completion(text: str, quote: str | None,
                           escaped: str) -> None:
    assert escape_completion(text, quote) == escaped
    # Unquoted, the escaped text tokenizes back to the original (modulo
    # the glob escapes sftp keeps in words).
    if quote is None:
        assert undo_glob_escape(tokenize(escaped)[0]) == text


# -- getopt ---------------------------------------------------------------

@pytest.mark.parametrize("argv, flags, found, operands", [
    (["-l", "x"], "1Safhlnrt", ["l"], ["x"]),
    (["-lr", "-S", "x", "-t"], "1Safhlnrt", ["l", "r", "S"], ["x", "-t"]),
    (["x", "-l"], "1Safhlnrt", [], ["x", "-l"]),          # no permuting
    (["--", "-x"], "afPpRr", [], ["-x"]),
    (["-a", "--", "--"], "afPpRr", ["a"], ["--"]),
    (["-"], "", [], ["-"]),
    (["-a", "-", "b"], "afPpRr", ["a"], ["-", "b"]),
    (["-l-", "x"], "1Safhlnrt", ["l"], ["-l-", "x"]),     # BSD quirk
    (["", "-l"], "1Safhlnrt", [], ["", "-l"]),
    ([], "", [], []),
    (["-ppP"], "afPpRr", ["p", "p", "P"], []),
])
def test_getopt(argv: list[str], flags: str, found: list[str],
                operands: list[str]) -> None:
    assert getopt("cmd", argv, flags) == (found, operands)


@pytest.mark.parametrize("command, argv, flags, message", [
    ("ls", ["-lZ"], "1Safhlnrt", "ls: Invalid flag -Z"),
    ("get", ["-z", "x"], "afPpRr", "get: Invalid flag -z"),
    ("rm", ["-r", "x"], "", "rm: Invalid flag -r"),
    ("ls", ["--x"], "1Safhlnrt", "ls: Invalid flag --"),
    ("ls", ["-:"], "1Safhlnrt", "ls: Invalid flag -:"),
    ("pwd", ["-x"], "", "pwd: Invalid flag -x"),
    ("ls", ["-\u00e9"], "1Safhlnrt", "ls: Invalid flag -\udcc3"),
])
def test_getopt_invalid(command: str, argv: list[str], flags: str,
                        message: str) -> None:
    with pytest.raises(GrammarError) as info:
        getopt(command, argv, flags)
    assert str(info.value) == message


LS_CASES = ["-lZ", "-- -x", "-", "-l-", "--x", "-:", "/nonexist -l",
            "-1 -", "-\u00e9", "-1 -- --"]


def predict_ls(text: str, cwd: str) -> bytes:
    """What sftp prints for ``ls <text>`` when the path does not exist."""
    try:
        _flags, paths = getopt("ls", tokenize(text), "1Safhlnrt")
    except GrammarError as exc:
        return enc(str(exc))
    path = make_absolute(paths[0], cwd)
    return enc(f'Can\'t ls: "{path}" not found')


def test_getopt_matches_sftp(sftp_cmd: list[str], scratch: Path) -> None:
    for text in LS_CASES:
        _out, err = run_sftp(sftp_cmd, scratch, "ls " + text)
        assert err == [predict_ls(text, str(scratch))], text
    _out, err = run_sftp(sftp_cmd, scratch, "rm -")
    assert err == [enc(f"remote delete {scratch}/-: "
                       "No such file or directory")]
    out, err = run_sftp(sftp_cmd, scratch, "pwd -")
    assert (out, err) == ([f"Remote working directory: {scratch}"], [])


# -- numbers --------------------------------------------------------------

@pytest.mark.parametrize("text, base, value", [
    ("644", 8, 0o644), ("0", 8, 0), (" \t022", 8, 0o22), ("+17", 8, 0o17),
    ("-0", 8, 0), ("37777777777", 8, 0xFFFFFFFF), ("1000", 10, 1000),
    ("4294967295", 10, 4294967295), ("0010", 10, 10),
])
def test_parse_number(text: str, base: int, value: int) -> None:
    assert parse_number(text, base, "cmd") == value


@pytest.mark.parametrize("text, base", [
    ("", 8), ("8", 8), ("08", 8), ("0x1", 8), ("1a", 10), ("12 ", 10),
    ("-1", 10), ("4294967296", 10), ("40000000000", 8), ("+", 8),
    ("1_0", 10), ("99999999999999999999999", 10), ("\u0661", 10), (None, 8),
])
def test_parse_number_rejects(text: str | None, base: int) -> None:
    with pytest.raises(GrammarError) as info:
        parse_number(text, base, "chown")
    assert str(info.value) == (
        "You must supply a numeric argument to the chown command.")


def test_parse_octal() -> None:
    assert parse_octal("755", "chmod") == 0o755
    with pytest.raises(GrammarError, match="to the chmod command"):
        parse_octal("9", "chmod")


LUMASK_CASES = ["022", "' 022'", "'022 '", "+17", "08", "-- -0",
                "-- -1", "37777777777", "40000000000", "0x1", "''",
                "'\t7'", "7#", "-h 5"]


def test_parse_octal_matches_sftp(sftp_cmd: list[str], scratch: Path) -> None:
    for text in LUMASK_CASES:
        out, err = run_sftp(sftp_cmd, scratch, "lumask " + text)
        _flags, operands = getopt("lumask", tokenize(text), "h")
        try:
            value = parse_octal(operands[0] if operands else None, "lumask")
        except GrammarError as exc:
            assert (out, err) == ([], [enc(str(exc))]), text
        else:
            assert (out, err) == ([f"Local umask: {value:03o}"], []), text
