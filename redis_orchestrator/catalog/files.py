"""Reading a file the config names (the config itself, each script, a password file): regular files
only, never blocking, never more than a limit; and what each read saw, for the file watch.

- Regular files only. Reading a FIFO blocks until someone writes to it (a probe froze the daemon's
  event loop for 37 s with one as a catalog file), a device may never end (/dev/zero). The file is
  opened with O_NONBLOCK (opening a FIFO for reading blocks too), then refused unless fstat says
  it is a regular file.
- A limit per kind of file, checked on the size before reading and again on what was read (a
  file growing meanwhile): one careless 5 MB script cost the analysis 1.75 GB.
- The stamp of the bytes read (`FileSeen`): taken from the open file *before* reading it, with the
  SHA1 of what was read. An edit landing after that stamp changes it, so the watch sees it, however
  long the rest of the reload takes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

_KIB = 1024

# A stamp whose ctime is this recent may hide an edit made in the same tick of the file system's
# clock (coarse: a few ms on ext4, 2 s on FAT) with the same size: such a file is compared by content.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileStamp:
    """What stat says of a file, enough to tell it changed: a rename over it changes the inode, any
    write the ctime (which nobody can set back, unlike the mtime: `touch -d`, `cp -p`, rsync)."""

    kind: int  # stat.S_IFMT of st_mode; 0 when there is no file
    inode: int = 0
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    taken_ns: int = field(default=0, compare=False)  # wall clock when stat ran

    @classmethod
    def of(cls, result: os.stat_result) -> FileStamp:
        return cls(
            kind=stat.S_IFMT(result.st_mode),
            inode=result.st_ino,
            size=result.st_size,
            mtime_ns=result.st_mtime_ns,
            ctime_ns=result.st_ctime_ns,
            taken_ns=time.time_ns(),
        )

    @property
    def regular(self) -> bool:
        return self.kind == stat.S_IFREG

    @property
    def racy(self) -> bool:
        return self.kind != 0 and self.ctime_ns >= self.taken_ns - RACY_NS


ABSENT = FileStamp(kind=0)


def stamp_of(path: str | os.PathLike[str]) -> FileStamp:
    try:
        return FileStamp.of(os.stat(path))
    except OSError:
        return ABSENT


@dataclass(frozen=True)
class FileSeen:
    """One file as a load saw it: its stamp before the read, and the SHA1 of the bytes read (None
    when nothing could be read: missing, not a regular file, over its limit)."""

    stamp: FileStamp
    sha: str | None


class FileRefused(Exception):
    """Why a file was not read, as a phrase that follows its name (`is a FIFO, not a regular file`),
    and its stamp as far as it was seen (ABSENT when there was no file to open)."""

    def __init__(self, reason: str, stamp: FileStamp) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stamp = stamp


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def describe_size(size: int) -> str:
    """`512 KiB`, `16 MiB`, `5.2 MiB`."""
    if size < _KIB * _KIB:
        return f"{size / _KIB:.3g} KiB"
    return f"{size / (_KIB * _KIB):.3g} MiB"


def read_file(path: str | os.PathLike[str], limit: int, what: str) -> tuple[FileStamp, bytes]:
    """The stamp and bytes of a regular file of at most `limit` bytes; FileRefused otherwise.
    `what` names the kind of file in the message (`script`, `config file`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefused("does not exist", ABSENT) from None
    except OSError as exc:
        raise FileRefused(f"cannot be opened: {exc.strerror}", stamp_of(path)) from None
    stamp = ABSENT
    try:
        stamp = FileStamp.of(os.fstat(fd))
        if not stamp.regular:
            kind = _KINDS.get(stamp.kind, "not a regular file")
            raise FileRefused(f"is {kind}, not a regular file (reading it could block for ever)", stamp)
        refusal = f"over the {describe_size(limit)} limit for a {what}"
        if stamp.size > limit:
            raise FileRefused(f"is {describe_size(stamp.size)}: {refusal}", stamp)
        chunks = []
        size = 0
        while chunk := os.read(fd, min(limit + 1 - size, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileRefused(f"grew while it was read: {refusal}", stamp)
        return stamp, b"".join(chunks)
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc.strerror}", stamp) from None
    finally:
        os.close(fd)


class FileReads:
    """Every file one load read (the config and its script files), as it saw each: what the watch
    compares the files with afterwards. Secrets are read with `read_file` and never recorded here."""

    def __init__(self) -> None:
        self.seen: dict[str, FileSeen] = {}

    def read(self, path: Path, limit: int, what: str) -> tuple[bytes, str]:
        """The bytes and their SHA1; FileRefused as `read_file`, the refusal recorded too (a file
        that appears, or stops being a FIFO, is then an edit)."""
        try:
            stamp, data = read_file(path, limit, what)
        except FileRefused as exc:
            self.seen[str(path)] = FileSeen(exc.stamp, None)
            raise
        sha = hashlib.sha1(data).hexdigest()
        self.seen[str(path)] = FileSeen(stamp, sha)
        return data, sha
