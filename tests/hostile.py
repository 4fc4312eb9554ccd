"""A misbehaving SFTP v3 server on stdin/stdout, for ``-D`` tests.

Run as ``python3 hostile.py MODE`` (what ``sftp -D`` and ``psftp-shell
-D`` start): it serves the file system from its working directory like
``sftp-server``, honestly, except for what *MODE* asks for:

``honest``
    nothing wrong (the control).
``names``
    every directory listing also holds entries whose names contain ``/``
    (``/etc/passwd``, ``../escape``, ``a/b``), plus ``.`` and ``..``
    claiming to be regular files, before the real entries.
``follow``
    directory listings describe what symbolic links point to, so a link
    to ``.`` looks like a subdirectory (a loop, as ``ls -L`` would see).
``shortread``
    READ replies carry at most 1000 bytes, wherever they are in the file.
``longread``
    READ replies carry 100 bytes more than asked for.
``swap``
    replies to two consecutive requests go out in the opposite order.
``unknownid``
    the reply to the first READ carries an id nobody asked for.
``endless``
    READDIR never says end of file: it sends the same batch again.
``fresh``
    READDIR never says end of file: every batch has new names.
``toolong``
    the reply to the first READDIR announces a 300000-byte packet.
``truncated``
    the reply to the first READDIR is cut short, then the server exits.
``hugestatus``
    error statuses carry a message of 200000 bytes.
``zeroread``
    READ replies carry no data at all (DATA of length 0), never EOF.
``emptyname``
    REALPATH replies are NAME packets holding no name (count 0).
``writefail``
    the third WRITE on each handle fails; the others succeed.

A mode may end in ``+rename``: the server then also offers
``posix-rename@openssh.com`` (which psftp-shell's uploads finish with).

Only the standard library is used; nothing here is imported by the
tests, which run it as a program.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import struct
import sys
from typing import BinaryIO

INIT, VERSION, OPEN, CLOSE, READ, WRITE = 1, 2, 3, 4, 5, 6
LSTAT, FSTAT, SETSTAT, FSETSTAT, OPENDIR, READDIR = 7, 8, 9, 10, 11, 12
REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME = 13, 14, 15, 16, 17, 18
READLINK, SYMLINK = 19, 20
EXTENDED = 200
POSIX_RENAME = b"posix-rename@openssh.com"
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE = 0, 1, 2, 3, 4
OP_UNSUPPORTED = 8

SUSPECT = (b"/etc/passwd", b"../escape", b"a/b")
ERRNO_STATUS = {errno.ENOENT: NO_SUCH_FILE, errno.EACCES: PERMISSION_DENIED,
                errno.EPERM: PERMISSION_DENIED}
U32 = struct.Struct(">I")


def string(data: bytes) -> bytes:
    """An SFTP string."""
    return U32.pack(len(data)) + data


def attrs_of(st: os.stat_result) -> bytes:
    """The v3 ATTRS of *st* (size, ids, mode, times)."""
    return struct.pack(">IQIIIII", 0x0F, st.st_size, st.st_uid, st.st_gid,
                       st.st_mode, int(st.st_atime), int(st.st_mtime))


def longname(name: bytes, st: os.stat_result) -> bytes:
    """A plain ``ls -l`` style line for *name*."""
    return (stat.filemode(st.st_mode).encode() + b"    1 0        0        "
            + str(st.st_size).encode().rjust(8) + b" Jan  1  2020 " + name)


class Reader:
    """Reads requests: a string cursor over one packet body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def u32(self) -> int:
        """A uint32."""
        (value,) = U32.unpack_from(self.body, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        """A uint64."""
        (value,) = struct.unpack_from(">Q", self.body, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        """An SFTP string."""
        n = self.u32()
        self.pos += n
        return self.body[self.pos - n:self.pos]

    def attrs(self) -> dict[str, int]:
        """The fields of an ATTRS that this server applies."""
        flags = self.u32()
        out: dict[str, int] = {}
        if flags & 1:
            out["size"] = self.u64()
        if flags & 2:
            out["uid"], out["gid"] = self.u32(), self.u32()
        if flags & 4:
            out["perm"] = self.u32()
        if flags & 8:
            out["atime"], out["mtime"] = self.u32(), self.u32()
        return out


class Server:
    """One session: requests in, replies out, faults as *mode* says."""

    def __init__(self, mode: str, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.mode, _, extra = mode.partition("+")
        self.rename = extra == "rename"
        self.rfile = rfile
        self.wfile = wfile
        self.handles: dict[bytes, object] = {}
        self.next_handle = 0
        self.reads = 0
        self.writes: dict[bytes, int] = {}
        self.readdirs = 0
        self.endless_batch = 0
        self.held: bytes | None = None

    # ---- transport

    def read(self, n: int) -> bytes:
        """Read *n* bytes (fewer at end of file) from the raw stream."""
        data = b""
        while len(data) < n:
            try:
                more = self.rfile.read(n - len(data))
            except OSError:     # the client went away
                break
            if not more:
                break
            data += more
        return data

    def packet(self) -> bytes | None:
        """The next request's body, or None at end of input."""
        head = self.read(4)
        if len(head) < 4:
            return None
        (length,) = U32.unpack(head)
        body = self.read(length)
        return body if len(body) == length else None

    def send(self, ptype: int, rid: int, payload: bytes) -> None:
        """Send one reply (or hold it, in ``swap`` mode)."""
        data = U32.pack(5 + len(payload)) + bytes([ptype]) \
            + U32.pack(rid) + payload
        if self.mode == "swap":
            self.swap_send(data)
            return
        self.wfile.write(data)
        self.wfile.flush()

    def swap_send(self, data: bytes) -> None:
        """Hold a reply until the next one, then send both reversed."""
        if self.held is None:
            self.held = data
            return
        self.wfile.write(data + self.held)
        self.wfile.flush()
        self.held = None

    def flush_held(self) -> None:
        """Send a held reply when no further request is coming soon."""
        if self.held is not None:
            self.wfile.write(self.held)
            self.wfile.flush()
            self.held = None

    def status(self, rid: int, code: int, message: str = "") -> None:
        """Send a STATUS reply."""
        if code != OK and self.mode == "hugestatus":
            message = "x" * 200000
        self.send(STATUS, rid, U32.pack(code) + string(message.encode())
                  + string(b""))

    def error(self, rid: int, exc: OSError) -> None:
        """Send the STATUS for a failed system call."""
        self.status(rid, ERRNO_STATUS.get(exc.errno or 0, FAILURE),
                    exc.strerror or "Failure")

    # ---- main loop

    def run(self) -> None:
        """Serve requests until the client goes away."""
        while True:
            if self.held is not None:
                ready, _, _ = select.select([self.rfile], [], [], 0.02)
                if not ready:
                    self.flush_held()
            body = self.packet()
            if body is None:
                return
            if body[0] == INIT:
                ext = string(POSIX_RENAME) + string(b"1") \
                    if self.rename else b""
                self.wfile.write(U32.pack(5 + len(ext)) + bytes([VERSION])
                                 + U32.pack(3) + ext)
                self.wfile.flush()
                continue
            rid = U32.unpack_from(body, 1)[0]
            try:
                self.dispatch(body[0], rid, Reader(body[5:]))
            except OSError as exc:
                self.error(rid, exc)
            except SystemExit:
                return

    def dispatch(self, ptype: int, rid: int, req: Reader) -> None:
        """Answer one request."""
        handler = {
            OPEN: self.do_open, CLOSE: self.do_close, READ: self.do_read,
            WRITE: self.do_write, LSTAT: self.do_lstat,
            FSTAT: self.do_fstat, SETSTAT: self.do_setstat,
            FSETSTAT: self.do_fsetstat, OPENDIR: self.do_opendir,
            READDIR: self.do_readdir, REMOVE: self.do_remove,
            MKDIR: self.do_mkdir, RMDIR: self.do_rmdir,
            REALPATH: self.do_realpath, STAT: self.do_stat,
            RENAME: self.do_rename, READLINK: self.do_readlink,
            EXTENDED: self.do_extended,
        }.get(ptype)
        if handler is None:
            self.status(rid, OP_UNSUPPORTED, "Operation unsupported")
        else:
            handler(rid, req)

    def new_handle(self, obj: object) -> bytes:
        """A handle for an open file descriptor or directory listing."""
        self.next_handle += 1
        handle = str(self.next_handle).encode()
        self.handles[handle] = obj
        return handle

    # ---- requests: one method each, named after the request

    def do_realpath(self, rid: int, req: Reader) -> None:
        if self.mode == "emptyname":
            self.send(NAME, rid, U32.pack(0))
            return
        path = os.path.realpath(req.string() or b".")
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file")
        self.send(NAME, rid, U32.pack(1) + string(path) + string(path)
                  + U32.pack(0))

    def do_stat(self, rid: int, req: Reader) -> None:
        self.send(ATTRS, rid, attrs_of(os.stat(req.string())))

    def do_lstat(self, rid: int, req: Reader) -> None:
        self.send(ATTRS, rid, attrs_of(os.lstat(req.string())))

    def do_fstat(self, rid: int, req: Reader) -> None:
        fd = self.handles[req.string()]
        assert isinstance(fd, int)
        self.send(ATTRS, rid, attrs_of(os.fstat(fd)))

    def apply(self, path: bytes | int, attrs: dict[str, int]) -> None:
        """SETSTAT / FSETSTAT: mode and times."""
        if "perm" in attrs:
            os.chmod(path, attrs["perm"] & 0o7777)
        if "mtime" in attrs:
            os.utime(path, (attrs["atime"], attrs["mtime"]))

    def do_setstat(self, rid: int, req: Reader) -> None:
        self.apply(req.string(), req.attrs())
        self.status(rid, OK, "Success")

    def do_fsetstat(self, rid: int, req: Reader) -> None:
        fd = self.handles[req.string()]
        assert isinstance(fd, int)
        self.apply(fd, req.attrs())
        self.status(rid, OK, "Success")

    def do_open(self, rid: int, req: Reader) -> None:
        path, pflags = req.string(), req.u32()
        perm = req.attrs().get("perm", 0o666) & 0o7777
        flags = {1: os.O_RDONLY, 2: os.O_WRONLY}.get(pflags & 3, os.O_RDWR)
        for bit, extra in ((4, os.O_APPEND), (8, os.O_CREAT),
                           (0x10, os.O_TRUNC), (0x20, os.O_EXCL)):
            if pflags & bit:
                flags |= extra
        fd = os.open(path, flags, perm)
        self.send(HANDLE, rid, string(self.new_handle(fd)))

    def do_close(self, rid: int, req: Reader) -> None:
        obj = self.handles.pop(req.string())
        if isinstance(obj, int):
            os.close(obj)
        self.status(rid, OK, "Success")

    def do_read(self, rid: int, req: Reader) -> None:
        fd = self.handles[req.string()]
        assert isinstance(fd, int)
        offset, length = req.u64(), req.u32()
        self.reads += 1
        if self.mode == "shortread":
            length = min(length, 1000)
        elif self.mode == "longread":
            length += 100
        data = os.pread(fd, length, offset)
        if self.mode == "zeroread":
            data = b""      # an empty DATA, as if never at EOF
        elif not data:
            self.status(rid, EOF, "End of file")
            return
        if self.mode == "unknownid" and self.reads == 1:
            rid += 1000
        self.send(DATA, rid, string(data))

    def do_write(self, rid: int, req: Reader) -> None:
        handle = req.string()
        fd = self.handles[handle]
        assert isinstance(fd, int)
        offset, data = req.u64(), req.string()
        self.writes[handle] = self.writes.get(handle, 0) + 1
        if self.mode == "writefail" and self.writes[handle] == 3:
            self.status(rid, FAILURE, "Failure")
            return
        os.pwrite(fd, data, offset)
        self.status(rid, OK, "Success")

    def do_opendir(self, rid: int, req: Reader) -> None:
        path = req.string()
        names = os.listdir(path)
        if self.mode == "names":
            names = [b".", b"..", *SUSPECT, *names]
        self.send(HANDLE, rid, string(self.new_handle((path, names))))

    def do_readdir(self, rid: int, req: Reader) -> None:
        entry = self.handles[req.string()]
        assert isinstance(entry, tuple)
        path, names = entry
        self.readdirs += 1
        if self.mode == "toolong" and self.readdirs == 1:
            self.wfile.write(U32.pack(300000) + bytes([NAME]))
            self.wfile.flush()
            return
        if self.mode == "truncated" and self.readdirs == 1:
            self.wfile.write(U32.pack(100) + bytes([NAME]) + U32.pack(rid))
            self.wfile.flush()
            raise SystemExit
        if self.mode == "endless":
            names = [f"e{i}".encode() for i in range(100)]
        elif self.mode == "fresh":
            self.endless_batch += 1
            names = [f"e{self.endless_batch}-{i}".encode()
                     for i in range(1000)]
        elif not names:
            self.status(rid, EOF, "End of file")
            return
        self.send_names(rid, path, names)
        names.clear()

    def send_names(self, rid: int, path: bytes, names: list[bytes]) -> None:
        """A NAME reply for *names* in *path* (made-up ones as files)."""
        parts = [U32.pack(len(names))]
        here = os.stat(path)
        for name in names:
            fake = name in SUSPECT or name in (b".", b"..") \
                or self.mode in ("endless", "fresh")
            look = os.stat if self.mode == "follow" else os.lstat
            st = here if fake else look(os.path.join(path, name))
            if fake:
                st = os.stat_result((stat.S_IFREG | 0o644,) + tuple(st)[1:])
            parts += [string(name), string(longname(name, st)),
                      attrs_of(st)]
        self.send(NAME, rid, b"".join(parts))

    def do_remove(self, rid: int, req: Reader) -> None:
        os.remove(req.string())
        self.status(rid, OK, "Success")

    def do_mkdir(self, rid: int, req: Reader) -> None:
        path = req.string()
        os.mkdir(path, req.attrs().get("perm", 0o777) & 0o7777)
        self.status(rid, OK, "Success")

    def do_rmdir(self, rid: int, req: Reader) -> None:
        os.rmdir(req.string())
        self.status(rid, OK, "Success")

    def do_rename(self, rid: int, req: Reader) -> None:
        old, new = req.string(), req.string()
        if os.path.lexists(new):
            self.status(rid, FAILURE, "Failure")
            return
        os.rename(old, new)
        self.status(rid, OK, "Success")

    def do_extended(self, rid: int, req: Reader) -> None:
        if req.string() != POSIX_RENAME or not self.rename:
            self.status(rid, OP_UNSUPPORTED, "Operation unsupported")
            return
        old, new = req.string(), req.string()
        os.rename(old, new)
        self.status(rid, OK, "Success")

    def do_readlink(self, rid: int, req: Reader) -> None:
        target = os.readlink(req.string())
        self.send(NAME, rid, U32.pack(1) + string(target) + string(target)
                  + U32.pack(0))


def main() -> None:
    """Serve one session on stdin/stdout."""
    rfile = os.fdopen(0, "rb", buffering=0)   # select() must be exact
    Server(sys.argv[1], rfile, sys.stdout.buffer).run()


if __name__ == "__main__":
    main()
