"""File attributes as SFTP version 3 carries them (a pure leaf module)."""

from __future__ import annotations

import os
import stat as _stat
from dataclasses import dataclass


@dataclass(slots=True)
class Attrs:
    """SFTP v3 attributes; a field is ``None`` when it was not sent.

    The same record describes local files (:meth:`from_stat`), so that
    listing and transfer code can treat both sides alike.
    """

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    atime: int | None = None
    mtime: int | None = None

    @classmethod
    def from_stat(cls, st: os.stat_result) -> Attrs:
        """Build attributes from a local :func:`os.stat` result."""
        return cls(size=st.st_size, uid=st.st_uid, gid=st.st_gid,
                   permissions=st.st_mode, atime=int(st.st_atime),
                   mtime=int(st.st_mtime))

    def _fmt(self) -> int | None:
        if self.permissions is None:
            return None
        return _stat.S_IFMT(self.permissions)

    def is_dir(self) -> bool:
        """Return whether the permissions say directory."""
        return self._fmt() == _stat.S_IFDIR

    def is_reg(self) -> bool:
        """Return whether the permissions say regular file."""
        return self._fmt() == _stat.S_IFREG

    def is_link(self) -> bool:
        """Return whether the permissions say symbolic link."""
        return self._fmt() == _stat.S_IFLNK
