"""Name and log-message escaping, checked against OpenSSH's sftp."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from psftp_shell.core.escape import to_bytes, vis_log, vis_name
from psftp_shell.sftp.attrs import Attrs
from psftp_shell.shell.listing import (
    columns,
    long_line,
    name_len,
    sort_entries,
)

# Raw names (bytes) that exercise every escaping rule: controls that are
# escaped or passed, invalid UTF-8, and Unicode that glibc considers
# printable (combining, format, private use, emoji) or not (C1 control,
# line separator, unassigned, noncharacter, encoded surrogate, overlong).
ODD_NAMES = [
    b"esc\x1b[31mred", b"tab\there", b"nl\nline", b"cr\rx", b"bell\x07",
    b"del\x7f", b"back\\slash", b'q"uote', b"bad\xff\xfe", b"caf\xc3\xa9",
    b"c1\xc2\x85", b"zw\xe2\x80\x8b", b"cjk\xe4\xb8\xad",
    b"sur\xed\xa0\x80", b"trunc\xe4\xb8", b"nonchar\xef\xbf\xbe",
    b"unassigned\xcd\xb8", b"pua\xee\x80\x80", b"ls\xe2\x80\xa8",
    b"shy\xc2\xad", b"comb\xcc\x81", b"emoji\xf0\x9f\x98\x80",
    b"over\xc0\xaf", b"split\xe4\xb8\xe4\xb8\xadx",
]
LOCALES = [("C", False), ("C.UTF-8", True)]


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def run_sftp(sftp_bin: str, server: str, cwd: Path, script: bytes,
             lc_all: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, LC_ALL=lc_all)
    return subprocess.run([sftp_bin, "-D", server, "-b", "-"], input=script,
                          capture_output=True, cwd=cwd, env=env, timeout=30)


@pytest.fixture
def odd_dir(tmp_path: Path) -> Path:
    for raw in ODD_NAMES:
        with open(bytes(tmp_path) + b"/" + raw, "wb"):
            pass
    return tmp_path


@pytest.mark.parametrize(("lc_all", "utf8"), LOCALES)
def test_listings_of_odd_names_match_sftp(
        odd_dir: Path, sftp_bin: str, sftp_server_bin: str, lc_all: str,
        utf8: bool) -> None:
    result = run_sftp(sftp_bin, sftp_server_bin, odd_dir,
                      b"ls -1\nls\nls -l\n", lc_all)
    assert result.returncode == 0, result.stderr
    out = decode(result.stdout)
    # The user and group columns come from what sftp printed.
    user, group = out.split("sftp> ls -l\n")[1].split()[2:4]
    now = time.time()
    entries = sort_entries(
        [(decode(raw), Attrs.from_stat(os.lstat(bytes(odd_dir) + b"/" + raw)))
         for raw in ODD_NAMES], key="name", reverse=False)
    names = [n for n, _ in entries]
    width_m = max(name_len(n) for n in names)
    expected = ["sftp> ls -1\n"]
    expected += [vis_name(n, utf8=utf8) + "\n" for n in names]
    expected.append("sftp> ls\n")
    expected += [line + "\n" for line in
                 columns(names, width=80, max_len=width_m, utf8=utf8)]
    expected.append("sftp> ls -l\n")
    expected += [long_line(n, a, user=user, group=group, human=False,
                           now=now, utf8=utf8) + "\n" for n, a in entries]
    assert out == "".join(expected)


@pytest.mark.parametrize(("lc_all", "utf8"), LOCALES)
def test_error_messages_match_sftp(
        tmp_path: Path, sftp_bin: str, sftp_server_bin: str, lc_all: str,
        utf8: bool) -> None:
    missing = [b"caf\xc3\xa9x", b"esc\x1bx", b"tab\tx", b"bell\x07x",
               b"bad\xff\xfex", b"cjk\xe4\xb8\xadx", b"del\x7fx", b"cr\rx"]
    script = b"".join(b'-get "' + raw + b'"\n' for raw in missing)
    result = run_sftp(sftp_bin, sftp_server_bin, tmp_path, script, lc_all)
    assert result.returncode == 0
    cwd = decode(bytes(tmp_path))
    expected = "".join(
        vis_log(f'File "{cwd}/{decode(raw)}" not found.') + "\r\n"
        for raw in missing)
    assert decode(result.stderr) == expected
    # The command echo is mprintf'd, i.e. escaped like names.
    echo = "".join("sftp> " + vis_name(f'-get "{decode(raw)}"', utf8=utf8)
                   + "\n" for raw in missing)
    assert decode(result.stdout) == echo


def test_vis_name_c_locale_escapes_every_non_ascii_byte() -> None:
    assert vis_name("caf\u00e9", utf8=False) == "caf\\303\\251"
    assert vis_name("\u4e2d", utf8=False) == "\\344\\270\\255"
    assert vis_name("caf\u00e9", utf8=True) == "caf\u00e9"


def test_vis_name_controls() -> None:
    assert vis_name("a\x1b[31mb", utf8=True) == "a\\033[31mb"
    assert vis_name("x\x7f\x00", utf8=True) == "x\\177\\000"
    # Tab, newline and carriage return pass through mprintf untouched.
    assert vis_name("a\tb\nc\rd", utf8=True) == "a\tb\nc\rd"
    # A backslash is printable: mprintf does not double it.
    assert vis_name("a\\b", utf8=False) == "a\\b"
    assert vis_name("\u0085\u2028", utf8=True) == "\\302\\205\\342\\200\\250"


def test_vis_name_surrogates_are_bytes() -> None:
    assert vis_name(decode(b"a\xff\xe4\xb8"), utf8=True) == "a\\377\\344\\270"
    # A valid sequence stays a character even if the caller's string holds
    # it as surrogates.
    assert vis_name("\udce4\udcb8\udcad", utf8=True) == "\u4e2d"
    # A lone surrogate that surrogateescape cannot map is its 3 bytes.
    assert vis_name("\ud800", utf8=True) == "\\355\\240\\200"


@pytest.mark.parametrize("raw", ODD_NAMES)
def test_vis_name_is_idempotent(raw: bytes) -> None:
    for utf8 in (False, True):
        once = vis_name(decode(raw), utf8=utf8)
        assert vis_name(once, utf8=utf8) == once


def test_printable_rule_matches_glibc_wcwidth() -> None:
    """Every code point of planes 0-1 and 14-16: escaped iff wcwidth < 0."""
    script = r"""
import ctypes, locale, sys
from psftp_shell.core.escape import vis_name
locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
wcwidth = ctypes.CDLL(None).wcwidth
wcwidth.argtypes = [ctypes.c_wchar]
ranges = [range(1, 0x20000), range(0xE0000, 0x110000)]
bad = [cp for r in ranges for cp in r
       if not 0xD800 <= cp < 0xE000 and chr(cp) not in "\t\n\r"
       and (wcwidth(chr(cp)) >= 0) != (vis_name(chr(cp), utf8=True)
                                       == chr(cp))]
print(len(bad), [hex(cp) for cp in bad[:10]])
"""
    result = subprocess.run([sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 []"


@pytest.mark.parametrize(("env", "expected"), [
    ({"LC_ALL": "C"}, "False"),
    ({"LC_ALL": "C.UTF-8"}, "True"),
    ({"LC_ALL": "C", "LC_CTYPE": "C.UTF-8"}, "False"),
    ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, "True"),
    # Turkish locales fall back to C.UTF-8 (or C) in sftp.
    ({"LC_ALL": "tr_TR.UTF-8"}, "True"),
    ({"LC_ALL": "tr_TR.ISO-8859-9"}, "False"),
    # No locale at all: sftp stays in C although Python coerces its own
    # LC_CTYPE to C.UTF-8 (PEP 538).
    ({}, "False"),
    ({"LANG": "C"}, "False"),
    ({"PYTHONCOERCECLOCALE": "0"}, "False"),
    ({"LANG": "C.UTF-8"}, "True"),
])
def test_locale_detection(env: dict[str, str], expected: str,
                          tmp_path: Path, sftp_bin: str,
                          sftp_server_bin: str) -> None:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LC_", "PYTHON")) and k != "LANG"}
    full_env = dict(clean, **env)
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys\n"
         "from psftp_shell.core.escape import vis_name, locale_is_utf8\n"
         "sys.stdout.buffer.write(b'%s %s' % (str(locale_is_utf8()).encode(),"
         " vis_name('\\u00e9').encode()))"],
        capture_output=True, timeout=30, env=full_env)
    assert result.returncode == 0, result.stderr
    flag, shown = result.stdout.split()
    assert flag.decode() == expected
    # sftp in the same environment agrees.
    (tmp_path / "\u00e9").touch()
    sftp = subprocess.run([sftp_bin, "-D", sftp_server_bin, "-b", "-"],
                          input=b"ls -1\n", capture_output=True,
                          cwd=tmp_path, env=full_env, timeout=30)
    assert sftp.stdout == b"sftp> ls -1\n" + shown + b"\n"


def test_vis_log_examples() -> None:
    # Spec 0: a backslash in an error message prints doubled.
    assert (vis_log('Can\'t ls: "/srv/remote/\\*.txt" not found')
            == 'Can\'t ls: "/srv/remote/\\\\*.txt" not found')
    # Tab, newline, CR, BS and BEL pass; other controls and non-ASCII
    # bytes are octal whatever the locale.
    assert vis_log("a\tb\x07\x08\r\n") == "a\tb\x07\x08\r\n"
    assert vis_log("\x1b\x7f\u00e9") == "\\033\\177\\303\\251"
    assert vis_log(decode(b"\xff")) == "\\377"


def test_vis_log_truncates_like_log_c() -> None:
    assert vis_log("x" * 2000) == "x" * 1021
    # An escape that would straddle the 1023-byte buffer is dropped whole.
    text = vis_log("x" * 1020 + "\x1b" + "y")
    assert text == "x" * 1020
    assert len(vis_log("\\" * 600)) == 1021


def test_to_bytes_round_trip() -> None:
    raw = b"a\xffb\xc3\xa9"
    assert to_bytes(decode(raw)) == raw
