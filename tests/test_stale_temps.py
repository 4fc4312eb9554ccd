"""A temporary that can never be resumed is removed when the copy
starts over, with its journal, and the user is told.

An interrupted chunked copy leaves its temporary and a journal (under
``$XDG_STATE_HOME``).  When the
source is rewritten before the next ``get``/``reget``/``put``/``reput``
of it, that temporary can never be finished: the new copy removes it
and its journal, and says what it removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import test_parallel
from tests.test_parallel import (
    CHUNK,
    PRig,
    get_journal,
    leftovers,
    payload,
    stop_after,
)

prig = test_parallel.prig      # three streams over sftp-server pipes


def _stopped_get(rig: PRig) -> None:
    rig.engine.is_interrupted = lambda: False
    rig.seen.on_advance = None


@pytest.mark.parametrize("resume", [False, True])
async def test_get_after_the_source_was_rewritten(prig: PRig,
                                                  resume: bool) -> None:
    (prig.remote / "f").write_bytes(payload(20 * CHUNK))
    stop_after(prig, 5 * CHUNK)
    assert not await prig.get("f", "down")
    kept = leftovers(prig.local)
    assert len(kept) == 1 and get_journal(prig, "down").is_file()
    _stopped_get(prig)
    newer = payload(20 * CHUNK, seed=9)
    (prig.remote / "f").write_bytes(newer)
    os.utime(prig.remote / "f", (1, 1))
    assert await prig.get("f", "down", resume=resume)
    assert (prig.local / "down").read_bytes() == newer
    assert leftovers(prig.local) == []
    assert not get_journal(prig, "down").exists()
    assert prig.messages().startswith(
        f"Removed {kept[0]} (")
    assert prig.messages().endswith(
        f" bytes) of an interrupted copy of {prig.remote / 'f'}: it has "
        "changed since\r\n")


async def test_a_new_get_says_it_starts_over(prig: PRig) -> None:
    data = payload(20 * CHUNK)
    (prig.remote / "f").write_bytes(data)
    stop_after(prig, 5 * CHUNK)
    assert not await prig.get("f", "down")
    _stopped_get(prig)
    assert await prig.get("f", "down")
    assert (prig.local / "down").read_bytes() == data
    assert leftovers(prig.local) == []
    assert prig.messages().endswith(": copying it again\r\n")


@pytest.mark.parametrize("resume", [False, True])
async def test_put_after_the_source_was_rewritten(
        prig: PRig, tmp_path: Path, resume: bool) -> None:
    (prig.local / "f").write_bytes(payload(40 * CHUNK + 3))
    stop_after(prig, 10 * CHUNK)
    assert not await prig.put("f", "up")
    _stopped_get(prig)
    kept = leftovers(prig.remote)
    state = tmp_path / "state" / "psftp-shell" / "journal"
    assert len(kept) == 1 and len(list(state.iterdir())) == 1
    newer = payload(30 * CHUNK, seed=5)
    (prig.local / "f").write_bytes(newer)
    ok = await prig.put("f", "up", resume=resume)
    if resume:      # nothing to resume: sftp's reput of a missing file
        assert not ok and prig.messages().endswith(
            "stat remote: No such file or directory\r\n")
    else:
        assert ok and (prig.remote / "up").read_bytes() == newer
    assert leftovers(prig.remote) == []
    assert list(state.iterdir()) == []
    assert f"Removed {kept[0]} (" in prig.messages()
    assert (f" bytes) of an interrupted copy of {prig.local / 'f'}: it "
            "has changed since\r\n") in prig.messages()


@pytest.mark.parametrize("upload", [False, True])
async def test_a_kept_temporary_is_reported_with_its_finish(
        prig: PRig, upload: bool) -> None:
    """The observer hears which temporary a stopped copy kept, with how
    much it holds and the command that finishes it (the views print
    'kept ... : reget SRC DST to finish')."""
    kept: list[tuple[str, int, str]] = []
    prig.seen.kept_temp = lambda *args: kept.append(args)  # type: ignore[attr-defined]
    data = payload(40 * CHUNK + 3)
    stop_after(prig, 10 * CHUNK)
    if upload:
        (prig.local / "f").write_bytes(data)
        assert not await prig.put("f", "up")
        where, finish = prig.remote, f"reput f {prig.remote / 'up'}"
    else:
        (prig.remote / "f").write_bytes(data)
        assert not await prig.get("f", "down")
        where, finish = prig.local, f"reget {prig.remote / 'f'} down"
    temps = leftovers(where)
    assert len(kept) == 1 and len(temps) == 1, (kept, temps)
    temp, nbytes, command = kept[0]
    assert temp.endswith("/" + temps[0]) and command == finish
    assert 10 * CHUNK <= nbytes < len(data)
