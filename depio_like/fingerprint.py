"""Fingerprints: file contents (stat first, xxhash only what changed), code, and arguments."""

from __future__ import annotations

import dataclasses
import enum
import functools
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import PurePath
from collections.abc import Mapping, Sequence
from typing import Any, Callable, NamedTuple

import xxhash

from .fs import Disk, FileStat

# A file whose mtime is this close to the moment we hashed it may still be written to
# within the same filesystem clock tick without its mtime changing ("racy" in git's words);
# such a hash is used for this run but its stat signature is not trusted next time.
RACY_NS = 100_000_000


class FileEntry(NamedTuple):
    """What we know of a file's content, keyed by its stat signature."""

    size: int
    mtime_ns: int
    ino: int
    digest: str


class FileHasher:
    """Content digests of files, reading a file only when its stat signature changed.

    ``known`` holds the entries loaded from the state; entries worth saving for the next
    run collect in ``fresh``.
    """

    def __init__(self, disk: Disk, known: dict[str, FileEntry]) -> None:
        self._disk = disk
        self._known = known
        self._memo: dict[str, tuple[FileStat, str]] = {}
        self.fresh: dict[str, FileEntry] = {}
        self.bytes_hashed = 0

    def digest(self, path: str) -> str | None:
        """The content digest of ``path``, or None if it does not exist."""
        st = self._disk.stat(path)
        if st is None:
            return None
        if st.is_dir:
            return self._dir_digest(path)
        memo = self._memo.get(path)
        if memo is not None and memo[0] == st:
            return memo[1]
        known = self._known.get(path)
        if known is not None and known[:3] == (st.size, st.mtime_ns, st.ino):
            digest = known.digest
        else:
            digest = self._hash_file(path, st.size)
            if self._disk.now_ns() - st.mtime_ns > RACY_NS:
                entry = FileEntry(st.size, st.mtime_ns, st.ino, digest)
                self._known[path] = entry
                self.fresh[path] = entry
        self._memo[path] = (st, digest)
        return digest

    def remember(self, path: str, size: int, mtime_ns: int, ino: int, digest: str) -> None:
        """Take a digest computed elsewhere (a worker that just wrote the file) for this run."""
        self._memo[path] = (FileStat(size, mtime_ns, ino, False), digest)

    def forget(self, path: str) -> None:
        """Drop what this run remembers of ``path`` (a task is about to rewrite it)."""
        self._memo.pop(path, None)

    def _hash_file(self, path: str, size: int) -> str:
        h = xxhash.xxh3_64()
        for chunk in self._disk.chunks(path, size):
            h.update(chunk)
        self.bytes_hashed += size
        return h.hexdigest()

    def _dir_digest(self, root: str) -> str:
        # A directory's content is the names and contents of everything under it.
        h = xxhash.xxh3_64(b"dir")
        stack = [root]
        while stack:
            d = stack.pop()
            for name in sorted(self._disk.listdir(d)):
                p = f"{d}/{name}"
                st = self._disk.stat(p)
                if st is None:
                    continue
                rel = p[len(root) + 1:]
                if st.is_dir:
                    h.update(f"D{rel}\0".encode("utf-8", "surrogateescape"))
                    stack.append(p)
                else:
                    h.update(f"F{rel}\0{self.digest(p)}\0".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def digest_now(path: str) -> tuple[str, int, int, int] | None:
    """(digest, size, mtime_ns, inode) of a regular file as it is now; None if missing.
    Used where a file was just written (in a worker, in a Slurm job) to spare the driver
    reading it again."""
    from .fs import RealDisk

    disk = RealDisk()
    st = disk.stat(path)
    if st is None or st.is_dir:
        return None
    h = xxhash.xxh3_64()
    for chunk in disk.chunks(path, st.size):
        h.update(chunk)
    return h.hexdigest(), st.size, st.mtime_ns, st.ino


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
        return f"F{_qualname(v)}:{code_digest(v)}"
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
    try:
        data = pickle.dumps(v, protocol=4)
    except Exception as e:
        raise Unfingerprintable(f"{t.__qualname__} cannot be pickled: {e}") from e
    return f"K{t.__module__}.{t.__qualname__}:{xxhash.xxh3_128_hexdigest(data)}"


def _plain_state(v: Any) -> dict[str, Any] | None:
    """The attributes of an instance of a plain class (no custom pickling), else None."""
    t = type(v)
    if t.__reduce_ex__ is not object.__reduce_ex__ or t.__reduce__ is not object.__reduce__:
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


_code_cache: dict[Any, str] = {}
_in_progress: set[int] = set()


def code_digest(func: Callable[..., Any]) -> str:
    """A digest of what ``func`` does: its bytecode and constants, not its line numbers.

    Editing the body changes it; moving the function or editing comments does not.
    """
    try:
        return _code_cache[func]
    except (KeyError, TypeError):
        pass
    if id(func) in _in_progress:  # a closure that refers to itself (a recursive helper)
        return f"<recursive {_qualname(func)}>"
    _in_progress.add(id(func))
    try:
        h = xxhash.xxh3_64()
        _feed_callable(func, h)
    finally:
        _in_progress.discard(id(func))
    digest = h.hexdigest()
    try:
        _code_cache[func] = digest
    except TypeError:  # unhashable callable object
        pass
    return digest


def _feed_callable(func: Any, h: "xxhash.xxh3_64") -> None:
    if isinstance(func, functools.partial):
        _feed_callable(func.func, h)
        h.update(_safe_canon((func.args, func.keywords)).encode())
        return
    code = getattr(func, "__code__", None)
    if code is None and not isinstance(func, type) and hasattr(type(func), "__call__"):
        code = getattr(getattr(type(func), "__call__", None), "__code__", None)
    if code is None:
        h.update(_qualname(func).encode())
        return
    _feed_code(code, h, skip_first=_first_const_is_doc(code))
    for cell in getattr(func, "__closure__", None) or ():
        try:
            h.update(_safe_canon(cell.cell_contents).encode())
        except ValueError:  # empty cell
            h.update(b"<empty>")


_CO_HAS_DOCSTRING = 0x4000000  # Python 3.14+


def _first_const_is_doc(code: types.CodeType) -> bool:
    """Whether co_consts[0] of a function's code is its docstring slot.

    Up to 3.13 the compiler reserves it for every function and lambda (None when there is
    no docstring); from 3.14 a flag says whether there is one.
    """
    if sys.version_info >= (3, 14):
        return bool(code.co_flags & _CO_HAS_DOCSTRING)
    return bool(code.co_consts)


def _feed_code(code: types.CodeType, h: "xxhash.xxh3_64", skip_first: bool = False) -> None:
    stack: list[tuple[types.CodeType, bool]] = [(code, skip_first)]
    while stack:
        c, skip = stack.pop()
        h.update(c.co_code)
        h.update(repr((c.co_names, c.co_varnames, c.co_freevars, c.co_argcount,
                       c.co_kwonlyargcount)).encode())
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
