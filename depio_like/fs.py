"""The one seam to the filesystem for the up-to-date logic.

Everything that decides "is this file there, did it change" goes through a ``Disk``.
``RealDisk`` talks to the OS; tests may pass their own implementation (an in-memory one)
to check decisions without real files or sleeping for mtimes.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import re
import stat as _stat
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple, Protocol


class FileStat(NamedTuple):
    size: int
    mtime_ns: int
    ino: int
    is_dir: bool
    ctime_ns: int = 0  # changes with any write, chmod or rename, and cannot be set back
    dev: int = 0
    mode: int = 0  # st_mode; 0 from fakes that only say file or directory

    @property
    def special(self) -> str:
        """What the path is when it is neither a regular file nor a directory ("a FIFO",
        "a socket", ...); "" otherwise. Such a path is never opened: a FIFO would block."""
        fmt = _stat.S_IFMT(self.mode)
        if not fmt or fmt == _stat.S_IFREG or fmt == _stat.S_IFDIR:
            return ""
        return _KINDS.get(fmt, "not a regular file")


_KINDS = {
    _stat.S_IFIFO: "a FIFO (named pipe)",
    _stat.S_IFSOCK: "a socket",
    _stat.S_IFCHR: "a character device",
    _stat.S_IFBLK: "a block device",
}


class PathProblem(Exception):
    """A path that is there but cannot be used (permission denied, a symlink loop, a name
    too long, ...). ``reason`` is worded for the user; callers add the task."""

    def __init__(self, path: str, reason: str, errno: int | None = None) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason
        self.errno = errno

    def __str__(self) -> str:
        from .paths import show_path

        return f"{show_path(self.path)}: {self.reason}"


def problem(path: str, e: OSError) -> PathProblem:
    """The user's words for an ``OSError`` met while looking at ``path``."""
    reasons = {
        _errno.EACCES: "permission denied (a directory on the way lacks x permission, or "
        "the file lacks r permission, for this user)",
        _errno.EPERM: "operation not permitted",
        _errno.ELOOP: "a symlink loop (too many levels of symbolic links)",
        _errno.ENAMETOOLONG: "name too long (a path component over 255 bytes, or the "
        "whole path over 4096)",
    }
    reason = reasons.get(e.errno, "") if e.errno is not None else ""
    return PathProblem(path, reason or e.strerror or str(e), e.errno)


class Disk(Protocol):
    def stat(self, path: str) -> FileStat | None:
        """Stat ``path`` following symlinks; None when it does not exist (a dangling
        symlink included); ``PathProblem`` when it cannot be looked at."""

    def chunks(self, path: str, size_hint: int) -> Iterator[bytes | memoryview]:
        """Yield the bytes of a regular file, in order."""

    def listdir(self, path: str) -> list[str]:
        """Names in a directory. (A disk may also offer ``scandir(path)``: (name,
        is_symlink) pairs; symlinks to directories above are then never followed.)"""

    def now_ns(self) -> int:
        """Wall clock in ns, on the same scale as ``mtime_ns``."""

    def remove(self, path: str) -> None:
        """Delete a file."""

    def makedirs(self, path: str) -> None:
        """Create a directory and its parents, if missing."""


def remove_files(disk: Disk, paths: Iterable[str]) -> None:
    """Remove those of ``paths`` that are files (a directory is left whole); one that
    cannot be looked at is left as it is."""
    for p in paths:
        try:
            st = disk.stat(p)
            if st is not None and not st.is_dir:
                disk.remove(p)
        except (OSError, PathProblem):
            pass


_CHUNK = 1 << 20


def file_stat(st: os.stat_result) -> FileStat:
    """``RealDisk.stat``'s answer for what ``os.stat`` returned."""
    return FileStat(
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        _stat.S_ISDIR(st.st_mode),
        st.st_ctime_ns,
        st.st_dev,
        st.st_mode,
    )


class RealDisk:
    """The operating system's filesystem."""

    def stat(self, path: str) -> FileStat | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            raise problem(path, e) from None
        return file_stat(st)

    def readlink(self, path: str) -> str | None:
        """The target of a symlink, None if ``path`` is not one."""
        try:
            return os.readlink(path)
        except OSError:
            return None

    def realpath(self, path: str) -> str:
        """``path`` with every symlink resolved, its last component included."""
        return os.path.realpath(path)

    def readable(self, path: str, is_dir: bool) -> bool:
        """Whether this process may read the file (list and enter the directory)."""
        mode = os.R_OK | os.X_OK if is_dir else os.R_OK
        if os.access in os.supports_effective_ids:
            return os.access(path, mode, effective_ids=True)
        return os.access(path, mode)

    def chunks(self, path: str, size_hint: int) -> Iterator[bytes | memoryview]:
        try:
            # O_NONBLOCK: if a FIFO took the file's place since it was stat'ed, the open
            # returns at once instead of waiting for a writer (it is a no-op on files).
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            raise problem(path, e) from None
        if size_hint <= _CHUNK:
            # Small files (most products): plain syscalls, no file object to build.
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
        with open(fd, "rb", buffering=0) as f:
            # One reused buffer: no allocation per chunk on big files.
            buf = bytearray(_CHUNK)
            view = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    return
                yield view[:n]

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except OSError as e:
            raise problem(path, e) from None

    def scandir(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_symlink) for each entry of a directory (no stat: from the listing)."""
        try:
            with os.scandir(path) as it:
                return [(e.name, e.is_symlink()) for e in it]
        except OSError as e:
            raise problem(path, e) from None

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
def atomic_write(
    path: str | os.PathLike[str], *, text: bool = True, fsync: bool = False
) -> Iterator[IO[Any]]:
    """Write ``path`` all or nothing: the block writes to a temporary file in the same
    directory, renamed over ``path`` when the block ends without error and removed when it
    raises (a full disk leaves neither half a file nor a temporary one). ``fsync``: make the
    content durable before the rename (state a crash must not lose)."""
    path = os.fspath(path)
    fd, tmp = _temp_beside(path)
    try:
        # surrogateescape: file names that are not UTF-8 round-trip byte for byte.
        with (
            os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")
            if text
            else os.fdopen(fd, "wb")
        ) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _temp_beside(path: str) -> tuple[int, str]:
    """A new file ``.<name>.<8 random characters>.tmp`` in ``path``'s directory, opened
    for writing, only for us (what ``tempfile.mkstemp`` does, without importing it and
    ``random``: a no-op run writes one such file)."""
    head, name = os.path.split(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tag = "".join(_TEMP_CHARS[b % len(_TEMP_CHARS)] for b in os.urandom(8))
        tmp = os.path.join(head or ".", f".{name}.{tag}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(_errno.EEXIST, "no free temporary name", path)


# What ``atomic_write``'s temporary files are called: ``.<name>.<8 random characters>.tmp``.
_TEMP = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temps(
    directory: str, names: Iterable[str] | None = None, entries: Iterable[str] | None = None
) -> int:
    """Remove the temporary files ``atomic_write`` left in ``directory`` (those of
    ``names`` only, if given) when its process was killed while writing; one that lives
    through an error removes its own. Only where no one else may be writing now (the
    state lock held). ``entries``: the directory's listing, if just made. Returns how
    many went."""
    if entries is None:
        try:
            entries = os.listdir(directory)
        except OSError:
            return 0
    wanted = None if names is None else set(names)
    gone = 0
    for entry in entries:
        m = _TEMP.fullmatch(entry)
        if m is None or (wanted is not None and m.group(1) not in wanted):
            continue
        try:
            os.unlink(os.path.join(directory, entry))
            gone += 1
        except OSError:
            pass  # not ours to remove after all, or gone already
    return gone


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = False) -> None:
    """``atomic_write`` of one string or bytes object."""
    with atomic_write(path, text=isinstance(data, str), fsync=fsync) as f:
        f.write(data)
