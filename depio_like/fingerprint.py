"""Fingerprints: file contents (stat first, xxhash only what changed), code, and arguments."""

from __future__ import annotations

import dataclasses
import enum
import errno as _errno
import functools
import os
import sys
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from stat import S_ISREG as _S_ISREG
from typing import Any, NamedTuple

import xxhash

from .fs import Disk, FileStat, PathProblem, RealDisk, file_stat, problem
from .paths import normalise

# A file whose mtime is this close to the moment we hashed it may still be written to
# within the same filesystem clock tick without its mtime changing ("racy" in git's words);
# such a hash is used for this run but its stat signature is not trusted next time.
RACY_NS = 100_000_000
SPILL_AT = 10_000  # fresh entries handed on before the run's end (see FileHasher)


_S_IFMT, _S_IFREG, _S_IFDIR = 0o170000, 0o100000, 0o040000
# Files up to this size (most products) are hashed from one read, without ``Disk.chunks``.
_SMALL = 1 << 16


def _hash_small(path: str, size: int) -> str:
    """The digest of a file of about ``size`` bytes on the real disk, read as
    ``RealDisk.chunks`` reads it (to the end, whatever its size now) and hashed at once (the
    same digest as a streaming hash of its chunks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: see RealDisk.chunks
    except OSError as e:
        raise problem(path, e) from None
    try:
        data = os.read(fd, max(size + 1, 4096))
        # Asked for more than its size and given exactly its size: that is its end, no
        # second read to find it (one system call a product fewer). Else (it grew, or a
        # short read) read on to the end.
        if data and len(data) != size:
            parts = [data]
            left = size - len(data) if len(data) <= size else size
            while more := os.read(fd, max(left + 1, 4096)):
                parts.append(more)
                if len(more) <= left:
                    left -= len(more)
            if len(parts) > 1:
                data = b"".join(parts)
    except OSError as e:
        raise problem(path, e) from None
    finally:
        os.close(fd)
    return xxhash.xxh3_64_hexdigest(data)


class FileEntry(NamedTuple):
    """What we know of a file's content, keyed by its stat signature."""

    size: int
    mtime_ns: int
    ino: int
    digest: str
    # Part of the signature: unlike mtime it cannot be set back, so a file rewritten with
    # the same size, its mtime restored and its inode number reused is still read again.
    ctime_ns: int


# FileEntry(...) without its Python-level __new__.
_new_tuple = tuple.__new__


def _signature(st: FileStat) -> tuple[int, int, int, int]:
    return (st.size, st.mtime_ns, st.ino, st.ctime_ns)


class FileHasher:
    """Content digests of files, reading a file only when its stat signature changed.

    ``known`` holds the entries loaded from the state; entries worth saving for the next
    run collect in ``fresh``. Within one run a path is looked at once: its digest is kept
    until ``forget`` (a task is about to write it) or ``remember`` (a worker reports what
    it wrote). ``stats``: stat results already taken this run (the graph checked the
    dependencies no task produces), used instead of a second ``stat``. ``skip``:
    directories that are never part of a directory's content (the state directory).

    A directory's digest covers the names and kinds of everything under it and the
    content of its regular files, symlinks followed. A FIFO, socket or device counts by
    its name and kind (never opened: a FIFO would block); a dangling symlink, a symlink
    loop, and a symlink back to a directory above it count by their link text (never
    followed). ``PathProblem`` is raised for what cannot be read (permissions, ...).
    """

    def __init__(
        self,
        disk: Disk,
        known: dict[str, FileEntry],
        *,
        stats: dict[str, FileStat] | None = None,
        skip: Sequence[str] = (),
        spill: Callable[[dict[str, FileEntry]], None] | None = None,
    ) -> None:
        self._disk = disk
        self._spill = spill
        self._known = known
        self._stats = dict(stats) if stats else {}
        self._skip = frozenset(normalise(d, "/") for d in skip)
        self._memo: dict[str, str] = {}
        self._dirs: dict[str, tuple[str, tuple[str, ...]]] = {}  # digest, paths under it
        # Directory -> the paths one level under it that this run knows something of
        # (directly or deeper): ``forget`` of a directory reaches everything under it,
        # whichever way it was looked at (a file inside a product directory is often a
        # dependency on its own).
        self._kids: dict[str, set[str]] = {}
        # Paths looked at and not yet in ``_kids``: indexed when a ``forget`` first needs
        # it (a run that rewrites nothing, as a no-op rerun, never pays for the index).
        self._unindexed: list[str] = []
        self.fresh: dict[str, FileEntry] = {}
        self.bytes_hashed = 0
        # The real disk: os.stat straight away, and a file whose signature is known
        # answered without making a FileStat (what a no-op run does for every product).
        self._real = type(disk) is RealDisk

    def digest(self, path: str, st: FileStat | None = None) -> str | None:
        """The content digest of ``path``, or None if it does not exist; ``st``: its stat
        as just taken (not taken again)."""
        d = self._memo.get(path)
        if d is not None:
            return d
        got = self._dirs.get(path)
        if got is not None:
            return got[0]
        if st is None and self._stats:
            st = self._stats.pop(path, None)
        if st is None and self._real:
            try:
                s = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as e:
                raise problem(path, e) from None
            if _S_ISREG(s.st_mode):  # as _file_digest does, for a regular file
                known = self._known.get(path)
                if (
                    known is not None
                    and known.size == s.st_size
                    and known.mtime_ns == s.st_mtime_ns
                    and known.ino == s.st_ino
                    and known.ctime_ns == s.st_ctime_ns
                ):
                    d = self._memo[path] = known.digest
                    self._unindexed.append(path)  # _known_under, inlined: once per file
                    return d
            st = file_stat(s)
        if st is None:
            st = self._disk.stat(path)
            if st is None:
                return None
        if st.is_dir:
            d, under = self._dir_digest(path, st)
            self._dirs[path] = (d, under)
            self._known_under(path)
            return d
        return self._file_digest(path, st)

    def written(self, path: str, s: os.stat_result) -> str:
        """``forget(path)`` then ``digest(path, st)`` for a regular file of the real disk
        just written and stat'ed (``s``, as ``os.stat`` returned it): the same digest, and
        entry kept, without making its ``FileStat`` or forgetting what was not known."""
        if (
            self._unindexed
            or self._dirs
            or path in self._memo
            or path in self._kids
            or path in self._stats
        ):  # else forget would do nothing
            self.forget(path)
        size, mtime, ino, ctime = s.st_size, s.st_mtime_ns, s.st_ino, s.st_ctime_ns
        known = self._known.get(path)
        if (
            known is not None
            and known.size == size
            and known.mtime_ns == mtime
            and known.ino == ino
            and known.ctime_ns == ctime
        ):
            d = known.digest
        else:
            if size <= _SMALL:  # _hash_file, without its call (the real disk)
                d = _hash_small(path, size)
                self.bytes_hashed += size
            else:
                d = self._hash_file(path, size)
            if time.time_ns() - (mtime if mtime > ctime else ctime) > RACY_NS:
                entry = _new_tuple(FileEntry, (size, mtime, ino, d, ctime))
                self._known[path] = entry
                self.fresh[path] = entry
        # Not noted in _unindexed (what a forget of a directory above it needs): the
        # product of a task of one product, which no other product contains (the graph
        # refuses that), and only products are forgotten.
        self._memo[path] = d
        return d

    def unchanged(self, path: str, digest: str) -> bool | None:
        """For a file nothing else this run reads (a product no task depends on): True when
        its stat matches the signature recorded with ``digest``, or, with no signature (the
        rerun after a build: each product was hashed in the tick of its write), when its
        content hashes to ``digest``; False when it is gone; None when that cannot be told
        so (``digest`` then decides). Only a new signature is kept (with ``digest`` itself,
        not an equal copy): a no-op rerun of 100,000 tasks would keep 100,000 digests it
        never looks at again."""
        if not self._real or path in self._memo or path in self._stats:
            # (The graph's stats are of inputs no task makes, seldom a product: a pipeline
            # with such inputs keeps this path for its products.)
            return None
        try:
            s = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:
            return None
        if not _S_ISREG(s.st_mode):
            return None
        known = self._known.get(path)
        if known is not None and known.digest == digest:
            if (
                known.size == s.st_size
                and known.mtime_ns == s.st_mtime_ns
                and known.ino == s.st_ino
                and known.ctime_ns == s.st_ctime_ns
            ):
                return True
        elif known is not None:
            return None
        try:
            if self._hash_file(path, s.st_size) != digest:
                return None  # changed: digest() says so, and keeps what it finds
        except PathProblem:
            return None
        mtime, ctime = s.st_mtime_ns, s.st_ctime_ns
        if time.time_ns() - (mtime if mtime > ctime else ctime) > RACY_NS:
            self._keep(path, FileEntry(s.st_size, mtime, s.st_ino, digest, ctime))
        return True

    def _keep(self, path: str, entry: FileEntry) -> None:
        """A new signature found while deciding: kept for this run and the next. ``fresh``
        is handed on before the run's end when it grows large (the rerun after a build
        finds one for every product): it is then not held all at once."""
        self._known[path] = self.fresh[path] = entry
        if len(self.fresh) >= SPILL_AT and self._spill is not None:
            self._spill(self.fresh)

    def _known_under(self, path: str) -> None:
        """Note that this run knows something of ``path`` (see ``_kids``)."""
        self._unindexed.append(path)

    def _index_known(self) -> None:
        """Put the paths looked at since the last time into ``_kids``."""
        all_kids = self._kids
        for path in self._unindexed:
            while True:
                parent = path.rpartition("/")[0]
                if not parent:
                    break
                kids = all_kids.get(parent)
                if kids is not None:  # the parent is noted already, and those above it
                    kids.add(path)
                    break
                all_kids[parent] = {path}
                path = parent
        self._unindexed.clear()

    def _file_digest(self, path: str, st: FileStat) -> str:
        fmt = st.mode & _S_IFMT  # st.special, without its cost for the usual file
        kind = st.special if fmt and fmt != _S_IFREG and fmt != _S_IFDIR else ""
        if kind:
            d = f"special:{kind}"
        else:
            known = self._known.get(path)
            if known is not None and (
                known.size,
                known.mtime_ns,
                known.ino,
                known.ctime_ns,
            ) == _signature(st):
                d = known.digest
            else:
                d = self._hash_file(path, st.size)
                now = time.time_ns() if self._real else self._disk.now_ns()
                if now - max(st.mtime_ns, st.ctime_ns) > RACY_NS:
                    self._keep(path, FileEntry(st.size, st.mtime_ns, st.ino, d, st.ctime_ns))
        self._memo[path] = d
        self._known_under(path)
        return d

    def remember(
        self, path: str, size: int, mtime_ns: int, ino: int, digest: str, ctime_ns: int = 0
    ) -> None:
        """Take a digest computed elsewhere (a worker that just wrote the file) for this run."""
        self.forget(path)
        self._memo[path] = digest
        self._known_under(path)

    def forget(self, path: str) -> None:
        """Drop what this run knows of ``path``, of what is under it, and of the digests of
        the directories above it (a task is about to rewrite it)."""
        if self._unindexed:
            self._index_known()
        elif not (self._dirs or path in self._memo or path in self._kids or path in self._stats):
            # Nothing known of it (most products, before their task runs). The graph's
            # stats are of inputs no task makes: none is under a product.
            return
        self._memo.pop(path, None)
        if self._stats:
            self._stats.pop(path, None)
        dirs = self._dirs
        if dirs:
            dirs.pop(path, None)
        kids = self._kids.pop(path, None)
        if kids:  # a directory: what is under it goes too
            stack = list(kids)
            while stack:
                p = stack.pop()
                self._memo.pop(p, None)
                dirs.pop(p, None)
                self._stats.pop(p, None)
                stack.extend(self._kids.pop(p, ()))
        if not dirs:
            return
        d = path
        while True:
            d = d.rpartition("/")[0]
            if not d:
                break
            self._dirs.pop(d, None)

    def _hash_file(self, path: str, size: int) -> str:
        if self._real and size <= _SMALL:
            d = _hash_small(path, size)
            self.bytes_hashed += size
            return d
        h = xxhash.xxh3_64()
        try:
            for chunk in self._disk.chunks(path, size):
                h.update(chunk)
        except OSError as e:
            raise problem(path, e) from None
        self.bytes_hashed += size
        return h.hexdigest()

    def _dir_digest(self, root: str, root_st: FileStat) -> tuple[str, tuple[str, ...]]:
        # A directory's content is the names and contents of everything under it.
        h = xxhash.xxh3_64(b"dir")
        under: list[str] = []
        # Each directory to visit with the (device, inode) of the directories above it: a
        # symlink back to one of them would make the walk endless.
        stack: list[tuple[str, frozenset[tuple[int, int]]]] = [
            (root, frozenset({(root_st.dev, root_st.ino)}))
        ]
        scandir = getattr(self._disk, "scandir", None)
        real_root = None
        while stack:
            d, above = stack.pop()
            if scandir is not None:
                entries = sorted(scandir(d))
            else:
                entries = [(name, False) for name in sorted(self._disk.listdir(d))]
            for name, link in entries:
                p = f"{d}/{name}"
                if p in self._skip:
                    continue
                rel = p[len(root) + 1 :]
                memo = self._memo.get(p)
                if memo is not None:
                    h.update(f"F{rel}\0{memo}\0".encode("utf-8", "surrogateescape"))
                    under.append(p)
                    continue
                try:
                    st = self._disk.stat(p)
                except PathProblem as e:
                    if e.errno != _errno.ELOOP:
                        raise
                    st = None
                if st is None:  # a dangling symlink or a loop (or gone since listed)
                    target = self._readlink(p)
                    if target is not None:
                        h.update(f"L{rel}\0{target}\0".encode("utf-8", "surrogateescape"))
                    continue
                if st.is_dir:
                    key = (st.dev, st.ino)
                    loop = key in above
                    if link and not loop:
                        # A link to the root or a directory above it would take the walk
                        # out and back in (and over what is beside the root).
                        if real_root is None:
                            real_root = os.path.realpath(root)
                        target = os.path.realpath(p)
                        loop = (
                            target == "/"
                            or real_root == target
                            or real_root.startswith(target + "/")
                        )
                    if loop:
                        target = self._readlink(p) or ""
                        h.update(f"L{rel}\0{target}\0".encode("utf-8", "surrogateescape"))
                        continue
                    h.update(f"D{rel}\0".encode("utf-8", "surrogateescape"))
                    under.append(p)
                    stack.append((p, above | {key}))
                elif st.special:
                    h.update(f"S{rel}\0{st.special}\0".encode("utf-8", "surrogateescape"))
                else:
                    h.update(
                        f"F{rel}\0{self._file_digest(p, st)}\0".encode("utf-8", "surrogateescape")
                    )
                    under.append(p)
        return h.hexdigest(), tuple(under)

    def _readlink(self, path: str) -> str | None:
        readlink = getattr(self._disk, "readlink", None)
        return readlink(path) if readlink is not None else None


def digest_now(path: str) -> tuple[str, int, int, int, int] | None:
    """(digest, size, mtime_ns, inode, ctime_ns) of a regular file as it is now; None if
    missing or not a regular file. Used where a file was just written (in a worker, in a
    Slurm job) to spare the driver reading it again."""
    disk = RealDisk()
    try:
        st = disk.stat(path)
        if st is None or st.is_dir or st.special:
            return None
        if st.size <= _SMALL:
            d = _hash_small(path, st.size)
        else:
            h = xxhash.xxh3_64()
            for chunk in disk.chunks(path, st.size):
                h.update(chunk)
            d = h.hexdigest()
    except (OSError, PathProblem):  # the driver will look, and say what is wrong
        return None
    return d, st.size, st.mtime_ns, st.ino, st.ctime_ns


class Unfingerprintable(Exception):
    """A value has no stable fingerprint (it cannot be encoded or pickled)."""


def canonical(value: Any) -> str:
    """A text encoding of ``value`` that is equal for equal values across processes.

    Raises ``Unfingerprintable`` when there is none.
    """
    try:
        return _canon(value)
    except RecursionError as e:
        raise Unfingerprintable(f"{type(value).__name__} is nested too deeply or cyclic") from e


def _canon(v: Any) -> str:
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None or t is bytes:
        return repr(v)
    if isinstance(v, PurePath):
        return "P" + repr(str(v))
    if t is list:
        return "[" + ",".join([_canon(x) for x in v]) + "]"
    if t is tuple:
        return "(" + ",".join([_canon(x) for x in v]) + ")"
    if t is dict:
        return "{" + ",".join(sorted([_canon(k) + ":" + _canon(x) for k, x in v.items()])) + "}"
    if t is set or t is frozenset:
        return "s{" + ",".join(sorted([_canon(x) for x in v])) + "}"
    key = getattr(v, "__depio_canonical__", None)
    if key is not None and not isinstance(v, type):
        return key()
    if isinstance(v, enum.Enum):
        return f"E{t.__module__}.{t.__qualname__}.{v.name}"
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, functools.partial, type)):
        return _function_text(v)
    if dataclasses.is_dataclass(v):
        fields = {f.name: getattr(v, f.name) for f in dataclasses.fields(v)}
        return f"D{t.__module__}.{t.__qualname__}" + _canon(fields)
    name = f"{t.__module__}.{t.__qualname__}"
    if isinstance(v, (str, int, float, bytes)):  # subclasses of the plain types
        return f"{name}({v!r})"
    if isinstance(v, (list, tuple)):
        return name + _canon(list(v))
    if isinstance(v, dict):
        if isinstance(v, OrderedDict):  # its order is part of its value
            return name + "[" + ",".join([_canon(k) + ":" + _canon(x) for k, x in v.items()]) + "]"
        return name + _canon(dict(v))
    if isinstance(v, (set, frozenset)):
        return name + _canon(set(v))
    if isinstance(v, Mapping):  # e.g. an OmegaConf DictConfig: by its items, not its parent
        return name + _canon(dict(v.items()))
    if isinstance(v, Sequence) and not isinstance(v, (str, bytes)):
        return name + _canon(list(v))
    state = _plain_state(v)
    if state is not None:
        # By attributes, not by pickle: a pickle keeps a set's hash order, which changes
        # with every process's hash seed.
        return f"O{name}" + _canon(state)
    import pickle  # the rare value with no other encoding: not every run pays the import

    try:
        data = pickle.dumps(v, protocol=4)
    except Exception as e:
        raise Unfingerprintable(f"{t.__qualname__} cannot be pickled: {e}") from e
    return f"K{t.__module__}.{t.__qualname__}:{xxhash.xxh3_128_hexdigest(data)}"


def _plain_state(v: Any) -> dict[str, Any] | None:
    """The attributes of an instance of a plain class (no custom pickling), else None."""
    t = type(v)
    # The functions themselves are compared: a class that overrides either pickles its own way.
    if t.__reduce_ex__ is not object.__reduce_ex__ or t.__reduce__ is not object.__reduce__:  # type: ignore[comparison-overlap]
        return None
    if getattr(t, "__getstate__", _NO_GETSTATE) is not _NO_GETSTATE:
        return None
    state: dict[str, Any] = {}
    for klass in t.__mro__:
        for slot in klass.__dict__.get("__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(v, slot):
                state[slot] = getattr(v, slot)
    d = getattr(v, "__dict__", None)
    if d is None and not state:
        return None
    state.update(d or {})
    return state


_NO_GETSTATE = getattr(object, "__getstate__", None)


def _qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or "?"
    return f"{mod}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


# Per function: (its code object, the digest of that code). A plain function's code digest
# is all there is to it; a closure's captured values are read again each time (they may have
# changed since: no stale digest).
_fn_code: dict[types.FunctionType, tuple[types.CodeType, str]] = {}
_in_progress: set[int] = set()
_FunctionType = types.FunctionType
_MethodType = types.MethodType


def code_digest(func: Callable[..., Any], memo: dict[Any, str] | None = None) -> str:
    """A digest of what calling ``func`` does.

    Its bytecode and constants (not line numbers, comments or the docstring), followed
    through the layers a call goes through: a bound method's function and the state of its
    instance, a callable object's ``__call__`` and state, a ``functools.partial``'s function
    and arguments, whatever a decorator exposes as ``__wrapped__`` (``functools.wraps``,
    ``lru_cache``, ``cache``), and the values closures captured (functions among them by their
    own code digest). Module globals are not part of it.

    A plain function's digest is cached; anything carrying state is digested afresh, so a
    captured value or an attribute changed since is seen. ``memo`` (one run's) shares that
    work among the tasks of one run that call the same objects.
    """
    if type(func) is _FunctionType and func.__closure__ is None:
        cached = _fn_code.get(func)
        if cached is not None and cached[0] is func.__code__:
            return cached[1]
        if "__wrapped__" not in func.__dict__:
            return _function_code(func)
    if id(func) in _in_progress:  # a closure that refers to itself (a recursive helper)
        return f"<recursive {_qualname(func)}>"
    key = None
    if memo is not None:
        layers = list(_layers(func))
        # The objects themselves are alive while the run holds its tasks: ids are safe here.
        key = tuple((kind, id(obj)) for kind, obj in layers)
        hit = memo.get(key)
        if hit is not None:
            return hit
    _in_progress.add(id(func))
    try:
        h = xxhash.xxh3_64()
        _feed_callable(func, h)
    finally:
        _in_progress.discard(id(func))
    digest = h.hexdigest()
    if memo is not None and key is not None:
        memo[key] = digest
    return digest


def _function_code(func: types.FunctionType) -> str:
    """The digest of a function's own code (not what it captured), cached per function."""
    code = func.__code__
    cached = _fn_code.get(func)
    if cached is not None and cached[0] is code:
        return cached[1]
    h = xxhash.xxh3_64()
    _feed_code(code, h, skip_first=_first_const_is_doc(code))
    digest = h.hexdigest()
    _fn_code[func] = (code, digest)
    return digest


def _layers(func: Any) -> Any:
    """The objects a call of ``func`` goes through, outermost first, as (kind, object):
    "self" (a bound method's instance), "partial", "function", "object" (an instance with
    ``__call__``) or "other" (a class, a builtin)."""
    seen: set[int] = set()
    while func is not None and id(func) not in seen:
        seen.add(id(func))
        t = type(func)
        if t is _MethodType:
            yield "self", func.__self__
            func = func.__func__
            continue
        if isinstance(func, functools.partial):
            yield "partial", func
            func = func.func
            continue
        if t is _FunctionType:
            yield "function", func
        elif isinstance(
            func,
            (
                type,
                types.BuiltinFunctionType,
                types.MethodWrapperType,
                types.WrapperDescriptorType,
                types.MethodDescriptorType,
            ),
        ) or not callable(func):
            yield "other", func
        else:
            yield "object", func
        func = getattr(func, "__wrapped__", None)


def _carried(kind: str, obj: Any) -> list[str]:
    """The state one layer carries, as texts: a closure's captured values, an instance's
    attributes (those a decorator copies, ``__wrapped__``, ``__name__``, ..., left out), a
    partial's arguments. A part without a stable encoding (a lock, an open file) counts by
    its type alone."""
    if kind == "function":
        out = []
        for cell in obj.__closure__ or ():
            try:
                v = cell.cell_contents
            except ValueError:  # an empty cell
                out.append("<empty>")
                continue
            out.append(_safe_canon(v))
        return out
    if kind == "partial":
        return ["partial=" + _safe_canon(obj.args) + _safe_canon(obj.keywords)]
    if kind in ("self", "object"):
        return [f"{kind}=" + _state_text(obj)]
    return []


def _state_text(obj: Any) -> str:
    if isinstance(obj, type) or obj is None:
        return _safe_canon(obj)
    state = _plain_state(obj)
    if state is not None:
        t = type(obj)
        return (
            f"O{t.__module__}.{t.__qualname__}{{"
            + ",".join(
                sorted(
                    f"{k}:{_safe_canon(v)}"
                    for k, v in state.items()
                    if not (k[:2] == "__" and k[-2:] == "__")
                )
            )
            + "}"
        )
    if getattr(obj, "__wrapped__", None) is not None:
        # A wrapper made in C (lru_cache, cache): what it calls is followed through
        # __wrapped__; its own state (the cache) is not what it does.
        return _qualname(type(obj))
    return _safe_canon(obj)


def _feed_callable(func: Any, h: xxhash.xxh3_64) -> None:
    for kind, obj in _layers(func):
        if kind == "function":
            h.update(_function_code(obj).encode())
        elif kind == "object":
            call = getattr(type(obj), "__call__", None)  # noqa: B004 - the function, not callable()
            if type(call) is _FunctionType:
                h.update(_function_code(call).encode())
            else:
                h.update(_qualname(type(obj)).encode())
        elif kind == "other":
            h.update(_qualname(obj).encode())
        for part in _carried(kind, obj):
            h.update(part.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        h.update(b"\1")


# While ``call_identity`` runs: functions met inside values are named (with what they
# carry), not digested, so that editing a function's body does not change the identity
# (the code digest covers that).
_naming = False
# The last answer of call_identity per outermost function, with the objects it read:
# declaring 10,000 tasks of one closure or one instance's method reads its state once.
_identity_memo: dict[Any, tuple[list[Any], tuple[Any, str]]] = {}


def forget_carried_state() -> None:
    """Read the state callables carry afresh from now on. The memo spares reading a closure
    shared by 10,000 declarations 10,000 times, but a dict it captured may be changed in
    place between two pipelines (or two runs) of one process."""
    _identity_memo.clear()


def call_identity(func: Callable[..., Any]) -> tuple[Any, str]:
    """What makes two callables the same task function: (a hashable key of the code they
    run, a text of the state they carry: a bound instance's attributes, a callable object's
    attributes, a partial's arguments, the values closures captured).

    Functions inside that state are named, not digested: the text does not change when a
    body is edited. Raises ``Unfingerprintable`` only for state nested too deeply.
    """
    global _naming
    if id(func) in _in_progress:
        return ("<recursive>",), f"<recursive {_qualname(func)}>"
    layers = list(_layers(func))
    objs = [obj for _, obj in layers]
    for kind, obj in layers:
        if kind == "function" and obj.__closure__:
            for cell in obj.__closure__:
                try:
                    objs.append(cell.cell_contents)
                except ValueError:
                    objs.append(None)
    top = (
        layers[0][1]
        if layers[0][0] == "function"
        else next((o for k, o in layers if k == "function"), None)
    )
    memo = _identity_memo.get(top) if top is not None else None
    if (
        memo is not None
        and len(memo[0]) == len(objs)
        and all(a is b for a, b in zip(memo[0], objs, strict=True))
        and not _naming
    ):
        return memo[1]
    previous, _naming = _naming, True
    _in_progress.add(id(func))
    try:
        key: list[Any] = []
        parts: list[str] = []
        for kind, obj in layers:
            if kind == "function":
                key.append(obj.__code__)
            elif kind == "object":
                key.append(type(obj))
            elif kind == "other":
                key.append(obj)
            else:
                key.append(kind)
            parts.extend(_carried(kind, obj))
        answer = tuple(key), ";".join(parts)
    except RecursionError as e:
        raise Unfingerprintable("the state it carries is nested too deeply or cyclic") from e
    finally:
        _in_progress.discard(id(func))
        _naming = previous
    if top is not None and not previous:
        _identity_memo[top] = (objs, answer)
    return answer


def _function_text(v: Any) -> str:
    if _naming:
        _, state = call_identity(v)
        return f"F{_qualname(v)}{{{state}}}"
    return f"F{_qualname(v)}:{code_digest(v)}"


_CO_HAS_DOCSTRING = 0x4000000  # Python 3.14+


def _first_const_is_doc(code: types.CodeType) -> bool:
    """Whether co_consts[0] of a function's code is its docstring slot.

    Up to 3.13 the compiler reserves it for every function and lambda (None when there is
    no docstring); from 3.14 a flag says whether there is one.
    """
    if sys.version_info >= (3, 14):
        return bool(code.co_flags & _CO_HAS_DOCSTRING)
    return bool(code.co_consts)


def _feed_code(code: types.CodeType, h: xxhash.xxh3_64, skip_first: bool = False) -> None:
    stack: list[tuple[types.CodeType, bool]] = [(code, skip_first)]
    while stack:
        c, skip = stack.pop()
        h.update(c.co_code)
        h.update(
            repr(
                (c.co_names, c.co_varnames, c.co_freevars, c.co_argcount, c.co_kwonlyargcount)
            ).encode()
        )
        # The docstring is documentation, not behaviour.
        consts = c.co_consts[1:] if skip else c.co_consts
        for k in consts:
            if isinstance(k, types.CodeType):
                stack.append((k, False))
            else:
                h.update(_const_repr(k).encode())
                h.update(b"\0")


def _const_repr(k: Any) -> str:
    if isinstance(k, frozenset):  # iteration order of a frozenset varies with the hash seed
        return "f{" + ",".join(sorted(_const_repr(x) for x in k)) + "}"
    if isinstance(k, tuple):
        return "(" + ",".join(_const_repr(x) for x in k) + ")"
    return repr(k)


def _safe_canon(v: Any) -> str:
    try:
        return canonical(v)
    except Unfingerprintable:
        return f"<{type(v).__qualname__}>"
