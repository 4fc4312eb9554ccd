"""A config file's ``Match`` condition checked as OpenSSH 9.2's
readconf.c ``match_cfg_line`` checks it, without evaluating it.

The criteria are ``all`` (alone, or after at most one other), the
argument-less ``canonical`` and ``final``, and ``host``,
``originalhost``, ``user``, ``localuser`` and ``exec`` with one
argument each; any may be negated with ``!``; a word starting with
``#`` ends the line.  ssh 9.2 knows no other criterion (``localnetwork``
and ``tagged`` came later), nor does asyncssh's reader.
"""

from __future__ import annotations

from psftp_shell.ssh.config_words import strdelim

_WITH_ARGUMENT = frozenset({"host", "originalhost", "user", "localuser",
                            "exec"})


def _ends(word: str | None) -> bool:
    """Whether *word* is no argument: none, empty or a comment."""
    return not word or word.startswith("#")


def match_words(condition: str | None) -> list[str]:
    """The words of a Match *condition* (the line after ``Match``) as
    ssh's ``match_cfg_line`` takes them: :func:`strdelim`'s, up to a
    comment, an empty word or the end (a quoted word stays whole, ``=``
    and all)."""
    words: list[str] = []
    word, rest = strdelim(condition)
    while not _ends(word):
        assert word is not None
        words.append(word)
        word, rest = strdelim(rest)
    return words


def match_error(condition: str, at: str) -> tuple[list[str] | None, bool]:
    """ssh's lines against the Match *condition* of the line *at*
    (``file line N``), or None; and whether words are left over for
    ssh's "extra arguments" check (after an empty quoted word)."""
    rest: str | None = condition
    criteria = 0
    while True:
        word, rest = strdelim(rest)
        if _ends(word):
            break
        assert word is not None
        name = word[1:] if word.startswith("!") else word
        if name.lower() == "all":
            arg, rest = strdelim(rest)
            if criteria > 1 or not _ends(arg):
                return [f"{at}: '{word}' cannot be combined with other "
                        "Match attributes"], False
            return None, bool(rest) and arg == ""
        criteria += 1
        if name.lower() in ("canonical", "final"):
            continue
        arg, rest = strdelim(rest)
        if _ends(arg):
            return [f"Missing Match criteria for {name}"], False
        if name.lower() not in _WITH_ARGUMENT:
            return [f"Unsupported Match attribute {name}"], False
    if not criteria:
        return ["One or more attributes required for Match"], False
    return None, bool(rest) and word == ""
