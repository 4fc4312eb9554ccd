"""The views' text cutting: rich's truncation, without importing
``rich.text`` (10 ms of CPU an interactive session's start would pay)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rich.cells import cell_len
from rich.text import Text

from psftp_shell.frontend.view_text import fit

SAMPLES = [
    "",
    "f00762",
    "a-rather-long-file-name-that-needs-cutting.tar.gz",
    "\u4e2d\u6587\u6587\u4ef6\u540d\u79f0.txt",          # wide characters
    "caf\u00e9 na\u0308ive",                             # combining mark
    "\U0001f600 smile \U0001f600.png",                   # emoji
    "ab\u4e2dcd",                # a wide character at the cut
]


def _rich(text: str, width: int) -> str:
    line = Text(text)
    line.truncate(width, overflow="ellipsis", pad=True)
    return line.plain


@pytest.mark.parametrize("text", SAMPLES)
def test_same_as_rich_text_truncate(text: str) -> None:
    for width in range(1, 60):
        assert fit(text, width) == _rich(text, width), (text, width)


@pytest.mark.parametrize("text", SAMPLES)
def test_fills_the_width_exactly(text: str) -> None:
    for width in range(1, 60):
        assert cell_len(fit(text, width)) == width, (text, width)


def test_a_cut_ends_in_an_ellipsis() -> None:
    assert fit("abcdefghij", 5) == "abcd\u2026"
    assert fit("abc", 5) == "abc  "


def test_no_room_gives_nothing() -> None:
    # rich's own truncate would give "ab…" here (a slice by -1)
    assert fit("abc", 0) == ""
    assert fit("abc", -3) == ""


def test_rich_text_is_not_imported() -> None:
    code = ("import sys\n"
            "from psftp_shell.frontend.view_text import fit\n"
            "fit('\\u4e2d' * 30, 10)\n"
            "print('rich.text' in sys.modules, 'rich.cells' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["False", "True"]
