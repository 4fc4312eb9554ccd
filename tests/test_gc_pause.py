"""No cyclic collection during start-up; the collector back afterwards."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from psftp_shell.frontend import gc_pause


def test_pause_settle_resume() -> None:
    assert gc.isenabled()
    gc_pause.pause()
    try:
        assert not gc.isenabled()
        gc_pause.pause()                    # idempotent
        before = gc.get_freeze_count()
        made = [[] for _ in range(1000)]
        gc_pause.settled()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(made)
    finally:
        gc_pause.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc_pause.resume()
    assert gc.isenabled()


def test_freeze_more_takes_the_line_editor_once() -> None:
    gc_pause.freeze_more()                  # not paused: nothing to do
    assert gc.get_freeze_count() == 0
    gc_pause.pause()
    try:
        gc_pause.freeze_more()              # not settled yet: nothing
        assert gc.get_freeze_count() == 0
        gc_pause.settled()
        settled = gc.get_freeze_count()
        editor = [[] for _ in range(1000)]
        gc_pause.freeze_more()
        more = gc.get_freeze_count()
        assert more >= settled + len(editor)
        later = [[] for _ in range(1000)]
        assert later
        gc_pause.freeze_more()              # once per session
        assert gc.get_freeze_count() == more
    finally:
        gc_pause.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        gc_pause.pause()
        gc_pause.settled()
        assert not gc.isenabled()
        gc_pause.resume()
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


CODE = """
import gc, sys, time
from psftp_shell.frontend import cli, gc_pause
seen = []
real = gc_pause.settled
def settled():
    seen.append(("settled", gc.isenabled()))
    real()
    seen.append(("after", gc.isenabled(), gc.get_freeze_count() > 1000))
gc_pause.settled = settled
rc = cli.main(sys.argv[1:])
print(seen, gc.isenabled(), gc.get_freeze_count(), rc, file=sys.stderr)
"""


def test_main_collects_nothing_until_the_session_is_up(
        tmp_path: Path, sftp_server_bin: str) -> None:
    batch = tmp_path / "batch"
    batch.write_text("pwd\n")
    done = subprocess.run(
        [sys.executable, "-c", CODE, "psftp-shell", "-b", str(batch), "-D",
         sftp_server_bin], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == \
        "[('settled', False), ('after', True, True)] True 0 0"
    assert "Remote working directory:" in done.stdout


def test_main_gives_the_collector_back_on_errors() -> None:
    from psftp_shell.frontend import cli
    assert cli.main(["psftp-shell", "-X", "addresses=some", "host"]) == 255
    assert gc.isenabled() and gc.get_freeze_count() == 0
