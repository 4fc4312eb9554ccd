"""No cyclic garbage collection while the program starts.

Start-up imports asyncssh, cryptography and the engine: a hundred
thousand long-lived objects, over which the collector would run about a
hundred times (10-15 ms of CPU) and find next to nothing.  :func:`pause`
stops it; :func:`settled`, once the session is up, moves what start-up
made out of the collector's sight (``gc.freeze``) and lets it run again;
:func:`freeze_more` does the same for the line editor once its first
line is read (its layout, key bindings and caches: thirty thousand
objects more); :func:`resume` undoes both (idempotent), for callers of
``main()`` that live on.
"""

from __future__ import annotations

import gc

_state = {"paused": False, "was_enabled": False, "frozen": False,
          "more": False}


def pause() -> None:
    """Stop the collector until :func:`settled` or :func:`resume`."""
    if _state["paused"]:
        return
    _state.update(paused=True, was_enabled=gc.isenabled(), frozen=False,
                  more=False)
    gc.disable()


def settled() -> None:
    """Start-up is over: freeze its objects, collect from here on."""
    if not _state["paused"] or _state["frozen"]:
        return
    gc.freeze()
    _state["frozen"] = True
    if _state["was_enabled"]:
        gc.enable()


def freeze_more() -> None:
    """Long-lived objects made since :func:`settled` (the line editor's):
    out of the collector's sight too, once."""
    if _state["frozen"] and not _state["more"]:
        gc.freeze()
        _state["more"] = True


def resume() -> None:
    """Back to the collector as it was before :func:`pause`."""
    if not _state["paused"]:
        return
    if _state["frozen"]:
        gc.unfreeze()
    if _state["was_enabled"]:
        gc.enable()
    _state.update(paused=False, frozen=False, more=False)
