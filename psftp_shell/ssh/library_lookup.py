"""asyncssh's shared-library look-ups without a compiler run.

At import, asyncssh asks :func:`ctypes.util.find_library` for nettle
(UMAC) and liboqs (post-quantum key exchange).  On Linux, a name that
``ldconfig -p`` does not list then costs a ``gcc`` and an ``ld`` run
(about 20 ms of CPU at every start, where liboqs is not installed).

While asyncssh is imported, its calls get only the ``ldconfig`` answer
when that answer cannot differ from the full one: the library is
listed, or no ``libNAME.*`` lies in the linker's usual directories and
no ``LIBRARY_PATH``/``LD_LIBRARY_PATH`` adds others.  Otherwise, for
every other caller, and when the standard library's ``find_library``
is not the one this was written against, the original runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

# What CPython 3.8-3.13's Linux find_library() calls, in order.
KNOWN_NAMES = ("_findSoname_ldconfig", "_get_soname", "_findLib_gcc",
               "_findLib_ld")


def _library_dirs() -> list[str]:
    arch = getattr(sys.implementation, "_multiarch", "")
    dirs = ["/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64",
            "/lib", "/lib64"]
    if arch:
        dirs += [f"/usr/local/lib/{arch}", f"/usr/lib/{arch}",
                 f"/lib/{arch}"]
    return dirs


def _listing(dirs: Sequence[str]) -> str:
    """The names in *dirs*, each after a newline."""
    names = [""]
    for folder in dirs:
        try:
            names += os.listdir(folder)
        except OSError:
            continue
    return "\n".join(names)


def _may_link(name: str, listing: str) -> bool:
    """Whether gcc or ld might find ``libNAME`` that ldconfig did not."""
    if os.environ.get("LIBRARY_PATH") or os.environ.get("LD_LIBRARY_PATH"):
        return True
    # ld also names libNAME.a when asked for -lNAME if NAME is libX
    return f"\nlib{name}." in listing or f"\n{name}." in listing


def quick_find_library(util: ModuleType) -> Callable[[str], str | None]:
    """*util*'s find_library, sparing asyncssh's calls the compiler."""
    original = util.find_library
    ldconfig = util._findSoname_ldconfig
    listing: list[str] = []

    def find_library(name: str) -> str | None:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if not str(caller).startswith("asyncssh."):
            return original(name)
        found = ldconfig(name)
        if found:
            return found
        if not listing:
            listing.append(_listing(_library_dirs()))
        if not _may_link(name, listing[0]):
            return None
        return original(name)

    find_library.original = original  # type: ignore[attr-defined]
    return find_library


def applies(util: ModuleType) -> bool:
    """Whether *util* is the Linux ctypes.util this was written for."""
    code = getattr(util.find_library, "__code__", None)
    return sys.platform.startswith("linux") and code is not None and \
        code.co_names == KNOWN_NAMES and \
        all(callable(getattr(util, name, None)) for name in KNOWN_NAMES)


def install() -> None:
    """Patch ctypes.util.find_library (once, if it applies)."""
    import ctypes.util as util
    if applies(util):
        util.find_library = quick_find_library(util)  # type: ignore


class _FirstImport:
    """Calls :func:`install` when asyncssh is about to be imported."""

    def find_spec(self, fullname: str, path: object,
                  target: object = None) -> None:
        if fullname == "asyncssh":
            with_hook_removed()
            install()
        return None


_hook = _FirstImport()


def with_hook_removed() -> None:
    """Take the import hook out of sys.meta_path."""
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)


def watch() -> None:
    """Install the patch at asyncssh's first import (if still to come)."""
    if "asyncssh" in sys.modules:
        return
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
