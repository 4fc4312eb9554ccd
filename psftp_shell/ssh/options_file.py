"""The command line's ssh options as a config file that is never on disk.

asyncssh reads ssh_config from paths, and the ``-o`` options must be
read first, as ssh reads them.  :class:`OptionsFile` holds them in an
anonymous memory file (``memfd_create``) opened by its ``/proc/self/fd``
path, which reads from the start each time and vanishes with the
process however it ends (SIGTERM, SIGHUP, SIGPIPE, SIGKILL).  Where
there is no such file (not Linux), a private temporary file is used
and removed on close and at exit.
"""

from __future__ import annotations

import atexit
import os
import tempfile

_PREFIX = "psftp-shell-"


def _memory_file(data: bytes) -> tuple[int, str] | None:
    """An anonymous memory file holding *data*, and its path; or None."""
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = create(_PREFIX + "options", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    os.write(fd, data)
    path = f"/proc/self/fd/{fd}"
    try:
        with open(path, "rb") as stream:
            if stream.read() == data:
                return fd, path
    except OSError:
        pass
    os.close(fd)
    return None


class OptionsFile:
    """Config lines readable at :attr:`path` until :meth:`close`."""

    def __init__(self, lines: list[str], *, memory: bool = True) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        found = _memory_file(data) if memory else None
        self._fd: int | None = None
        self._temp: str | None = None
        if found is not None:
            self._fd, self.path = found
        else:
            fd, self._temp = tempfile.mkstemp(prefix=_PREFIX,
                                              suffix=".conf")
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            self.path = self._temp
            atexit.register(self.close)

    @property
    def in_memory(self) -> bool:
        """Whether nothing of it is on disk."""
        return self._fd is not None

    def close(self) -> None:
        """Release the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except OSError:
                pass
            atexit.unregister(self.close)
            self._temp = None
