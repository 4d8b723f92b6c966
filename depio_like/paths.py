"""How paths are normalised for identity and shown to the user.

A path's identity is absolute, with its *directory* resolved as the OS would (symlinks
followed, ``..`` taken after them), and its last component as written: ``data/x.csv``
reached through a symlinked ``data`` and through the directory it points to is one
path, while a product that is itself a symlink stays that symlink (what it points to may
change from one run to the next). Directories that do not exist yet resolve as far as
they exist, so a product in a directory a run will create keeps the same identity once
the directory is there.

Resolving costs one ``lstat`` per directory not seen before: results are cached for the
declarations of a pipeline (10,000 tasks into a few directories cost a few syscalls),
and the cache is dropped when a pipeline checks its graph, so a later declaration sees
symlinks changed since.
"""

from __future__ import annotations

import os
import stat as _stat

NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, tmpfs, NFS)
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included

_ROOT = {"": "/"}
_real: dict[str, str] = dict(_ROOT)
_CACHE_LIMIT = 200_000


class BadPath(ValueError):
    """A path that no filesystem call can take (a component over NAME_MAX bytes, ...)."""


def forget_dirs() -> None:
    """Drop the cache of resolved directories (a symlink may have changed since)."""
    _real.clear()
    _real.update(_ROOT)
    _shared.clear()


# Paths many declarations give again (a sweep's config file, read by every task), by the
# path as written (with the working directory when relative): the path, its identity and
# a tuple of it, the same objects for every task, resolved once. Dropped with _real,
# whose resolutions they hold.
_shared: dict[str | tuple[str, str], tuple[str, str, tuple[str]]] = {}
_SHARED_LIMIT = 1024


def normalise_shared(path: str, cwd: str) -> tuple[str, str, tuple[str]]:
    """``(path, normalise(path, cwd), (that,))``, objects shared by every call with an
    equal path (and working directory, for a relative one); raises ``BadPath``."""
    key: str | tuple[str, str] = path if path[:1] == "/" else (cwd, path)
    hit = _shared.get(key)
    if hit is None:
        norm = normalise(path, cwd)
        if norm == path:
            norm = path
        if len(_shared) >= _SHARED_LIMIT:  # a path per task: no sharing to keep
            _shared.clear()
        hit = _shared[key] = (path, norm, (norm,))
    return hit


def _check_name(name: str, path: str) -> None:
    # Only long names can be too long: a character is at most 4 bytes in UTF-8.
    if len(name) > NAME_MAX // 4 and len(os.fsencode(name)) > NAME_MAX:
        raise BadPath(
            f"{show_path(path)}: a path component of {len(os.fsencode(name))} "
            f"bytes, over the limit of {NAME_MAX} ({name[:40]}...)"
        )


def real_dir(d: str) -> str:
    """``d`` (absolute) with every symlink and ``..`` resolved; a part that does not
    exist is kept as written (like ``os.path.realpath`` without ``strict``)."""
    r = _real.get(d)
    if r is not None:
        return r
    pending: list[tuple[str, str]] = []
    cur = d
    while True:  # climb to the nearest directory already resolved ("" is the root)
        r = _real.get(cur)
        if r is not None:
            break
        parent, _, name = cur.rpartition("/")
        pending.append((cur, name))
        cur = parent
    for cur, name in reversed(pending):
        if name == "..":
            r = r.rpartition("/")[0] or "/"
        elif name and name != ".":
            _check_name(name, d)
            cand = f"{r}/{name}" if r != "/" else f"/{name}"
            try:
                link = _stat.S_ISLNK(os.lstat(cand).st_mode)
            except OSError:  # not there (yet), or not ours to look at: kept as written
                link = False
            r = os.path.realpath(cand) if link else cand
        _real[cur] = r
    if len(_real) > _CACHE_LIMIT:
        forget_dirs()
    return r


def normalise(path: str, cwd: str) -> str:
    """The identity of ``path`` (absolute or relative to ``cwd``); raises ``BadPath``."""
    if "\x00" in path:  # every system call refuses it (ValueError): said when declared
        raise BadPath(f"{show_path(path)!r}: a path with a NUL byte, which no file name holds")
    p = path if path[:1] == "/" else f"{cwd}/{path}"
    while True:
        head, _, name = p.rpartition("/")
        if name == "." or (not name and head):  # "out/" and "out/." are "out"
            p = head
            continue
        break
    if name == ".." or not head and not name:  # ends in "..", or is the root
        return real_dir(p)
    _check_name(name, path)
    d = real_dir(head)
    out = f"{d}/{name}" if d != "/" else f"/{name}"
    if len(out) >= PATH_MAX // 4 and len(os.fsencode(out)) >= PATH_MAX:
        raise BadPath(
            f"{show_path(out)[:60]}...: a path of {len(os.fsencode(out))} bytes, "
            f"over the limit of {PATH_MAX - 1}"
        )
    return out


def is_within(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it (both normalised)."""
    return path == directory or path.startswith(directory + "/") or directory == "/"


def show_path(path: str) -> str:
    """``path`` as a user would write it: relative to the working directory when inside it,
    and printable (bytes that are not UTF-8 in a file name show as U+FFFD)."""
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        path = path[len(cwd) + 1 :]
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return path
