"""The one seam to the filesystem for the up-to-date logic.

Everything that decides "is this file there, did it change" goes through a ``Disk``.
``RealDisk`` talks to the OS; tests may pass their own implementation (an in-memory one)
to check decisions without real files or sleeping for mtimes.
"""

from __future__ import annotations

import contextlib
import os
import stat as _stat
import tempfile
import time
from typing import IO, Any, Iterator, NamedTuple, Protocol


class FileStat(NamedTuple):
    size: int
    mtime_ns: int
    ino: int
    is_dir: bool


class Disk(Protocol):
    def stat(self, path: str) -> FileStat | None:
        """Stat ``path`` following symlinks; None when it does not exist."""

    def chunks(self, path: str, size_hint: int) -> Iterator[bytes | memoryview]:
        """Yield the bytes of a regular file, in order."""

    def listdir(self, path: str) -> list[str]:
        """Names in a directory."""

    def now_ns(self) -> int:
        """Wall clock in ns, on the same scale as ``mtime_ns``."""

    def remove(self, path: str) -> None:
        """Delete a file."""

    def makedirs(self, path: str) -> None:
        """Create a directory and its parents, if missing."""


_CHUNK = 1 << 20


class RealDisk:
    """The operating system's filesystem."""

    def stat(self, path: str) -> FileStat | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStat(st.st_size, st.st_mtime_ns, st.st_ino, _stat.S_ISDIR(st.st_mode))

    def chunks(self, path: str, size_hint: int) -> Iterator[bytes | memoryview]:
        if size_hint <= _CHUNK:
            # Small files (most products): plain syscalls, no file object to build.
            fd = os.open(path, os.O_RDONLY)
            try:
                parts = []
                while True:
                    data = os.read(fd, max(size_hint + 1, 4096))
                    if not data:
                        break
                    parts.append(data)
                    if len(data) <= size_hint:
                        size_hint -= len(data)
                yield b"".join(parts) if len(parts) != 1 else parts[0]
            finally:
                os.close(fd)
            return
        with open(path, "rb", buffering=0) as f:
            # One reused buffer: no allocation per chunk on big files.
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    return
                yield view[:n]

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def now_ns(self) -> int:
        return time.time_ns()

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, text: bool = True,
                 fsync: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` all or nothing: the block writes to a temporary file in the same
    directory, renamed over ``path`` when the block ends without error and removed when it
    raises (a full disk leaves neither half a file nor a temporary one). ``fsync``: make the
    content durable before the rename (state a crash must not lose)."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=os.path.dirname(path) or ".")
    try:
        # surrogateescape: file names that are not UTF-8 round-trip byte for byte.
        with (os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") if text
              else os.fdopen(fd, "wb")) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = False) -> None:
    """``atomic_write`` of one string or bytes object."""
    with atomic_write(path, text=isinstance(data, str), fsync=fsync) as f:
        f.write(data)
