"""The one seam to the filesystem for the up-to-date logic.

Everything that decides "is this file there, did it change" goes through a ``Disk``.
``RealDisk`` talks to the OS; tests may pass their own implementation (an in-memory one)
to check decisions without real files or sleeping for mtimes.
"""

from __future__ import annotations

import os
import stat as _stat
import time
from typing import Iterator, NamedTuple, Protocol


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
