"""The record of past runs: an append-only JSON-lines log under the state directory.

Format 2 (written since depio_like 0.x; format 1 is still read, and rewritten as format 2
the first time a run opens it). The first line is ``{"depio_like_state": 2, "t0": T}``
(``T``: a time in ns that the modification times inside records count from; 0 when
absent); each other line is one self-contained JSON array:

- ``["c", n, digest]``: code digest number ``n`` (a record's ``code`` may be its number:
  the same few digests are not repeated on each of 100,000 lines);
- ``["r", key, name, code, args, duration, stamp, products, arg_reprs, inputs, upstream,
  failed]``
  for a task that succeeded (trailing empty parts left out; ``args``, a 128-bit digest, in
  22 characters of base64 rather than 32 of hex). ``products`` is a list of
  ``[path, digest]``, or ``[path, digest, size, mtime_ns - T, inode]`` (``ctime_ns -
  mtime_ns`` as a sixth element when not 0) when the product's stat signature is known
  (no separate file line is needed then); a key ``""`` stands for ``"p:"`` + its first
  product (sorted), the usual key. (In memory, such a key is the product's path itself:
  the task's str, not one more per task; ``"p:"`` is added and taken off at the disk.)
- ``["x", key]`` for a task that started (its products are incomplete until its next
  ``"r"`` line);
- ``["f", path, size, mtime_ns, inode, digest, ctime_ns]`` for a file's content digest (an
  older line without ctime is not trusted: the file is read again).

Paths below the project (the directory holding the state directory) are stored relative
to it, so a project moved or renamed keeps its records. On load, the last line for a key
wins; a line cut short by a crash (no newline, or not JSON) is ignored, so a crash leaves
the old record or the new one, never a torn one. When the log has grown to several times
what it holds, it is rewritten to a temporary file and renamed over the old one (atomic).
A file lock keeps two runs from using the same directory at once. Lines are appended in
batches (see ``State.flush``), always before a task that had a record starts.
"""

from __future__ import annotations

import binascii
import contextlib
import gc
import json
import os
import stat as _stat
import sys
import time
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .errors import StateError
from .fingerprint import FileEntry
from .fs import atomic_write, remove_stale_temps, write_atomic
from .paths import normalise
from .status import count, not_ok

LOG_NAME = "state.jsonl"
LAST_RUN_NAME = "last_run.json"  # the table of the last run, for `depio-like status`
LOCK_NAME = "lock"
OWNER_NAME = "lock.owner"
FORMAT = 2
_HEADER = {"depio_like_state": FORMAT}
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # shared by the records that have none
# One encoder for every line (json.dumps builds one per call when given options).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _line_encoder() -> Callable[[Any], str]:
    """``_encode`` without its per-call cost (``JSONEncoder.encode`` builds a new C encoder
    for every line): the C encoder, made once, for the lines written per task. The same
    text; no circularity check (a line holds strings, numbers and flat containers)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python without the C accelerator
        return _encode
    enc = make(
        None,
        json.JSONEncoder().default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    join = "".join
    return lambda item: join(enc(item, 0))


_encode_line = _line_encoder()
# A str as JSON, as ``_encode_line`` writes it (quoted, escaped, not ASCII-only).
_encode_str = json.encoder.encode_basestring
# Lines are appended at least this often, and whenever this many are pending.
FLUSH_SECONDS = 0.1
FLUSH_LINES = 2000
_WRITE_CHUNK = 10_000  # lines joined and written at once: bounds a burst's memory
_LOAD_CHUNK = 5000  # lines parsed at once when loading
_LOAD_BLOCK = 1 << 20  # bytes read at once when loading
_new_tuple = tuple.__new__


def compact_mapping(m: Mapping[str, Any], copy: bool = False) -> Mapping[str, Any]:
    """``m`` as a record keeps it for the run: one shared empty mapping, the usual one entry
    as a 48-byte ``One`` (a dict takes 184), or the dict (a copy of it with ``copy``)."""
    if type(m) is One:  # read-only: shared as it is (a sweep's tasks, one config file)
        return m
    n = len(m)
    if n == 1:
        for k, v in m.items():
            return One(k, v)
    return (dict(m) if copy else m) if n else _EMPTY


class One(Mapping[str, Any]):
    """A read-only mapping of one entry: what a loaded record holds for its one product and
    its one described argument (the usual task), in 48 bytes where a dict takes 184.
    Equal to a dict of the same entry, and shown as one."""

    __slots__ = ("_k", "_v")

    def __init__(self, key: str, value: Any) -> None:
        self._k = key
        self._v = value

    def __getitem__(self, key: str) -> Any:
        if key == self._k:
            return self._v
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._v if key == self._k else default

    def __contains__(self, key: object) -> bool:
        return key == self._k

    def __iter__(self) -> Iterator[str]:
        return iter((self._k,))

    def __len__(self) -> int:
        return 1

    # The views of a dict of the entry: iterated in C, as a dict's are.
    def keys(self) -> KeysView[str]:
        return {self._k: self._v}.keys()

    def values(self) -> ValuesView[Any]:
        return {self._k: self._v}.values()

    def items(self) -> ItemsView[str, Any]:
        return {self._k: self._v}.items()

    def __eq__(self, other: object) -> bool:
        if type(other) is One:
            return self._k == other._k and self._v == other._v
        if isinstance(other, Mapping):
            return len(other) == 1 and self._k in other and other[self._k] == self._v
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to dicts, which are unhashable

    def __repr__(self) -> str:
        return f"{{{self._k!r}: {self._v!r}}}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (One, (self._k, self._v))


@dataclass(slots=True)
class Record:
    """What a task's last successful run left, compared with the task now to decide whether
    it is up to date. Only this class knows the record's form on disk (the short keys).
    Read-only by convention (``dataclasses.replace`` makes a changed copy): a frozen
    dataclass costs twice as much to build, and 100,000 are built per run."""

    key: str  # the task's record key (its first product, or its call)
    name: str = ""
    code: str | None = None  # digest of the function's code
    args: str | None = None  # digest of its tracked arguments
    products: Mapping[str, str | None] = field(default_factory=dict)  # path -> digest after the run
    inputs: Mapping[str, str | None] = field(default_factory=dict)  # dependency -> digest before
    upstream: Mapping[str, str] = field(default_factory=dict)  # depends_on key -> its stamp
    arg_reprs: Mapping[str, str] = field(default_factory=dict)  # to say which argument changed
    duration: float | None = None
    stamp: str = ""  # changes when anything above changes: read downstream
    incomplete: bool = False  # it started again and has not finished: products may be partial
    failed: Mapping[str, str] = field(default_factory=dict)  # run_if="all_done": dependencies
    # that had failed when it ran (record key -> label): it runs again next time

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        """The record a parsed line of format 1 holds; ValueError if it is not one (a damaged line
        must not crash every later run)."""
        get = d.get
        key, name, code, args, stamp = get("r"), get("n"), get("c"), get("a"), get("s")
        p, i, u, av, fl = (
            get("p") or {},
            get("d") or {},
            get("u") or {},
            get("av") or {},
            get("fl") or {},
        )
        t = get("t")
        # Straight-line checks: 100,000 records are read at the start of a run.
        if (
            type(key) is not str
            or type(p) is not dict
            or type(i) is not dict
            or type(u) is not dict
            or type(av) is not dict
            or type(fl) is not dict
            or (name is not None and type(name) is not str)
            or (code is not None and type(code) is not str)
            or (args is not None and type(args) is not str)
            or (stamp is not None and type(stamp) is not str)
        ):
            raise ValueError("record with fields of the wrong type")
        if type(t) is not float and type(t) is not int:
            t = None
        return cls(
            key, name or "", code, args, p, i, u, av, t, stamp or "", bool(get("incomplete")), fl
        )


def last_durations(keys: Sequence[str], records: Mapping[str, Record]) -> list[float | None]:
    """How long each task (by record key) took when it last ran (None: never)."""
    return [r.duration if (r := records.get(key)) is not None else None for key in keys]


def recorded_durations(keys: Sequence[str], records: Mapping[str, Record]) -> list[float]:
    """How long each task (by record key) took when it last ran; one never timed counts as
    the mean of the others (1 s when none was)."""
    got = last_durations(keys, records)
    known = [d for d in got if d is not None]
    mean = sum(known) / len(known) if known else 1.0
    return [mean if d is None else d for d in got]


def last_run_summary(
    code: int,
    statuses: Sequence[Any],
    max_rows: int,
    table: Callable[[Sequence[int]], tuple[list[str], list[list[str]]]],
    log_of: Callable[[int], str],
) -> dict[str, Any]:
    """The final table, for ``depio-like status`` to show without running anything:
    every row for a small pipeline, for a large one the counts and the rows that did not
    end well (writing 10,000 rows would cost more than a no-op run)."""
    n = len(statuses)
    every = list(statuses)
    keep = range(n) if n <= max_rows else not_ok(every)[:max_rows]
    headers, rows = table(keep)
    got = count(every)
    # In the order each status first appears, as they were counted before.
    counts = {st.value: got[st] for st in sorted(got, key=every.index)}
    return {
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "exit_code": code,
        "cwd": os.getcwd(),
        "tasks": n,
        "counts": counts,
        "headers": headers,
        "rows": rows,
        "logs": [log_of(i) for i in keep],
    }


class State:
    """Task records and file digests loaded from, and appended to, ``state_dir``."""

    def __init__(
        self, state_dir: str, *, wait: bool = True, notify: Callable[[str], None] | None = None
    ) -> None:
        self.dir = os.path.abspath(state_dir)
        self.wait = wait
        self._notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.records: dict[str, Record] = {}
        self.files: dict[str, FileEntry] = {}
        self.warnings: list[str] = []
        self._lines_on_disk = 0
        self._torn_bytes = 0  # length of a half-written last line left by a crash
        self._bad_lines = 0
        self._rewrite = False  # rewrite the log at close (records forgotten)
        self._format = FORMAT  # of the log on disk (an older one is rewritten)
        self._pending: list[str] = []
        self._must_flush = False  # a started-task line is pending: write before it runs
        self._flushed_at = 0.0
        self._log: int | None = None  # the log's file descriptor, appended to
        self._size = 0  # bytes of whole lines in the log
        # Paths under the project (the state directory's parent) are stored relative to it.
        root = normalise(os.path.dirname(self.dir), "/")
        self._root = root
        self._prefix = root if root.endswith("/") else root + "/"
        self._interned: dict[str, str] = {}
        self._durations: dict[float, float] = {}
        self._shared_inputs: dict[str, One] = {}  # see _quick_inputs
        self._duration_text: dict[float, str] = {}  # a duration as a line spells it
        # The declared tasks by product path (``share``): their strings are reused.
        self._producers: Mapping[str, int] = _EMPTY
        self._declared: Sequence[Any] = ()
        self._next = 0  # the declared task the next record is likely to be of
        self._t0 = 0  # the log's base for modification times (its header's "t0")
        self._codes: dict[str, int] = {}  # code digest -> its number in the log
        self._code_list: dict[int, str] = {}  # number -> digest, as read
        self._next_code = 0
        #: Why writing to the state directory failed (a full disk), if it did.
        self.write_error: str | None = None
        self._lock: Any = None

    def share(self, producers: Mapping[str, int], tasks: Sequence[Any]) -> State:
        """Before loading: the declared ``tasks`` (``producers``: product path -> index),
        whose product paths, record keys and argument digests a loaded record reuses
        where equal, instead of holding copies of them (a third of a record's size)."""
        self._producers, self._declared = producers, tasks
        return self

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> State:
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)  # records are the user's alone
        except OSError as e:
            raise StateError(f"cannot create the state directory {self.dir}: {e}") from e
        check_private(self.dir)  # before anything in it is read
        self._acquire()
        try:
            # A run killed while it rewrote the log or the last-run summary left a
            # temporary file (kept: nothing reads it; the lock says no one writes now).
            remove_stale_temps(self.dir, (LOG_NAME, LAST_RUN_NAME))
            self._load()
            if self._format != FORMAT and self._lines_on_disk:
                # An older format: rewritten now, before anything is appended to it.
                try:
                    self._compact()
                except OSError as e:
                    raise StateError(
                        f"cannot rewrite {self._path()} in the current format: {e.strerror or e}"
                    ) from None
                self._torn_bytes = 0
            try:
                self._log = os.open(self._path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as e:
                raise StateError(
                    f"cannot write the state directory {self.dir}: {e.strerror} "
                    f"({e.filename}); it must be writable by you"
                ) from None
            self._size = os.fstat(self._log).st_size
            if self._torn_bytes:  # cut a crash's half line off, so the next record stands alone
                self._size -= self._torn_bytes
                os.ftruncate(self._log, self._size)
            if self._lines_on_disk == 0:
                self._pending.append(self._header())
                self.flush()
        except BaseException:
            self._release()
            raise
        return self

    def read_only(self) -> State:
        """Load the records without locking or writing anything (for a dry run)."""
        check_private(self.dir)
        self._load()
        return self

    def close(self) -> None:
        """Write what is pending, compact the log when worthwhile, release the lock."""
        try:
            if self._log is not None:
                self.flush()
                try:
                    if self.write_error is None:
                        os.fsync(self._log)
                except OSError as e:
                    self._failed(e)
                os.close(self._log)
                self._log = None
                lines = self._lines_on_disk
                if self.write_error is None and (
                    self._rewrite
                    or self._bad_lines
                    or (
                        lines > (len(self.records) + 1) * 3 // 2 + 1000  # cheap bound
                        and lines > self._live_lines() * 3 // 2 + 1000
                    )
                ):
                    try:
                        self._compact()
                    except OSError as e:  # the old log stays: it is still whole
                        self._failed(e)
        finally:
            self._release()

    def _live_lines(self) -> int:
        """Lines the log would have once compacted: a file whose signature a record holds
        takes no line of its own."""
        inline = 0
        files = self.files
        for rec in self.records.values():
            for p, d in rec.products.items():
                e = files.get(p)
                if e is not None and e.digest == d:
                    inline += 1
        return 1 + len(self.records) + len(self.files) - inline

    def __enter__(self) -> State:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------
    def put_record(self, record: Record, files: dict[str, FileEntry] | None = None) -> None:
        """Record a task that succeeded. The signatures of its products found in ``files``
        (the hasher's fresh entries) are taken out of it and written inside the record."""
        self.records[record.key] = record
        entries = None
        if files:
            for p in record.products:
                e = files.pop(p, None)
                if e is not None:
                    self.files[p] = e
                    if entries is None:
                        entries = {}
                    entries[p] = e
        # _record_line, without its call: the usual line, or any.
        line = self._usual_line(record, entries)
        self._pending.append(line if line is not None else self._any_line(record, entries))

    def forget(self, keys: Iterable[str], paths: Iterable[str] = ()) -> None:
        """Drop the records ``keys`` and the file digests of ``paths`` (rewritten at close)."""
        for k in keys:
            self.records.pop(k, None)
        for p in paths:
            self.files.pop(p, None)
        self._rewrite = True

    def mark_started(self, key: str) -> None:
        """Task ``key`` is about to run: until a new record comes, its old one is incomplete.
        The line is written by the next ``flush``, which must come before the task runs."""
        old = self.records.get(key)
        if old is not None:
            self.records[key] = replace(old, incomplete=True)
        self._pending.append(_encode(["x", self._rel_key(key)]))
        self._must_flush = True

    def put_files(self, entries: dict[str, FileEntry]) -> None:
        rel, files, pending = self._rel, self.files, self._pending
        for path, e in entries.items():
            files[path] = e
            pending.append(_encode_line(["f", rel(path), *e]))
            if len(pending) >= _WRITE_CHUNK:
                # A burst (the rerun after a build hashes every product again) is written
                # as it is made: 100,000 lines held at once were that run's peak of memory.
                self.flush()
        entries.clear()

    def flush(self, force: bool = True) -> None:
        """Append pending lines to the log in one write. ``force=False``: only if a line
        must be on disk now (a task that had a record starts), or lines have waited
        ``FLUSH_SECONDS``, or ``FLUSH_LINES`` are pending: a killed run loses at most
        that much, and a run of short tasks does not pay a write for each."""
        if not self._pending or self._log is None:
            return
        if not force and not self._must_flush and len(self._pending) < FLUSH_LINES:
            now = time.monotonic()
            if now - self._flushed_at < FLUSH_SECONDS:
                return
        self._flushed_at = time.monotonic()
        self._must_flush = False
        if self.write_error is not None:  # the disk refused a write: keep the log whole
            self._pending.clear()
            return
        # surrogateescape: file names that are not UTF-8 round-trip byte for byte.
        pending = self._pending
        try:
            if len(pending) <= _WRITE_CHUNK:  # the usual: one write
                text = pending[0] + "\n" if len(pending) == 1 else "\n".join(pending) + "\n"
                written = self._write(text.encode("utf-8", "surrogateescape"))
            else:  # a burst: joined a chunk at a time
                written = 0
                for start in range(0, len(pending), _WRITE_CHUNK):
                    text = "\n".join(pending[start : start + _WRITE_CHUNK]) + "\n"
                    written += self._write(text.encode("utf-8", "surrogateescape"))
        except OSError as e:
            self._failed(e)
            with contextlib.suppress(OSError):  # no half line: the log ends where it did
                os.ftruncate(self._log, self._size)
            self._pending.clear()
            return
        self._size += written
        self._lines_on_disk += len(pending)
        pending.clear()

    def _write(self, data: bytes) -> int:
        done = os.write(self._log, data)  # type: ignore[arg-type]
        if done < len(data):  # a short write is not an error: write the rest
            view = memoryview(data)[done:]
            while view:
                view = view[os.write(self._log, view) :]  # type: ignore[arg-type]
        return len(data)

    def flush_due(self) -> float | None:
        """Seconds until ``flush(force=False)`` writes what is pending; None: nothing is."""
        if not self._pending or self._log is None:
            return None
        return max(0.0, self._flushed_at + FLUSH_SECONDS - time.monotonic())

    def _failed(self, e: OSError) -> None:
        """A write to the state directory failed (a full disk): the run goes on, records
        of what finishes from now on are not kept (those tasks run again next time), and
        the run ends as failed, saying why."""
        if self.write_error is None:
            self.write_error = (
                f"cannot write to the state directory {self.dir}: "
                f"{e.strerror or e}; what finished after this is not "
                "recorded and will run again"
            )

    def write_last_run(self, data: dict[str, Any]) -> None:
        """Replace the summary of the last run (atomically)."""
        try:
            write_atomic(
                os.path.join(self.dir, LAST_RUN_NAME), json.dumps(data, ensure_ascii=False)
            )
        except OSError as e:  # nothing half written is left: atomic_write removed it
            self._failed(e)

    # -- the lines -------------------------------------------------------------------
    def _path(self) -> str:
        return os.path.join(self.dir, LOG_NAME)

    def _rel(self, path: str) -> str:
        prefix = self._prefix
        if path.startswith(prefix):
            return path[len(prefix) :]
        return "." if path == self._root else path

    def _abs(self, path: str) -> str:
        if path[:1] == "/":
            return path
        return self._root if path == "." else self._prefix + path

    def _rel_key(self, key: str) -> str:
        return "p:" + self._rel(key) if key[:1] == "/" else key

    def _abs_key(self, key: str) -> str:
        return self._abs(key[2:]) if key[:2] == "p:" else key

    def _header(self) -> str:
        """The first line of a new log; the modification times it holds count from now."""
        self._t0 = time.time_ns() // 10**9 * 10**9
        self._codes, self._next_code = {}, 0
        return _encode({**_HEADER, "t0": self._t0})

    def _record_line(self, r: Record, entries: Mapping[str, FileEntry] | None) -> str:
        """The line of a record (after the line numbering its code digest, the first time
        the log holds that digest)."""
        line = self._usual_line(r, entries)
        return line if line is not None else self._any_line(r, entries)

    def _usual_line(self, r: Record, entries: Mapping[str, FileEntry] | None) -> str | None:
        """``_any_line`` for the usual record (one product, keyed by it, its arguments a
        128-bit digest, maybe inputs, no upstream or failed dependencies), written as text:
        the same line without the lists and dicts built to be encoded (one per task of a
        run, and per record when the log is rewritten). None for any other record."""
        products, key = r.products, r.key
        if type(products) is One:  # its fields, not its Python-level methods
            d = products._v if products._k == key else None
        elif len(products) == 1:
            d = products.get(key)
        else:
            return None
        code, args, t = r.code, r.args, r.duration
        if (
            r.upstream
            or r.failed
            or type(code) is not str
            or type(args) is not str
            or len(args) != 32
        ):
            return None
        if type(t) is float:
            if t - t != 0.0:  # NaN or infinite: JSON's own spelling (_any_line)
                return None
            # Rounded durations recur: their text is kept (not 0.0, equal to -0.0).
            duration = self._duration_text.get(t) if t else None
            if duration is None:
                duration = repr(t)
                if t and len(self._duration_text) < 10000:
                    self._duration_text[t] = duration
        elif t is None:
            duration = "null"
        elif type(t) is int:
            duration = repr(t)
        else:
            return None
        prefix = self._prefix
        if key.startswith(prefix):  # self._rel, inlined
            p = key[len(prefix) :]
        else:
            p = "." if key == self._root else key
        e = entries.get(key) if entries else None
        enc = _encode_str
        av = r.arg_reprs
        # enc takes a str alone: TypeError for anything else (then _any_line, which
        # writes it as it is).
        try:
            ins = r.inputs
            if type(av) is One:
                tail = f",{{{enc(av._k)}:{enc(av._v)}}}"
            elif not av:
                tail = ",{}" if ins else ""
            else:
                tail = ",{" + ",".join([f"{enc(k)}:{enc(v)}" for k, v in av.items()]) + "}"
            if ins:
                rel = self._rel
                # A digest of None (an input gone): TypeError, so _any_line writes it.
                pairs = [f"{enc(rel(q))}:{enc(v)}" for q, v in ins.items()]  # type: ignore[arg-type]
                tail += ",{" + ",".join(pairs) + "}]"
            else:
                tail += "]"
            if e is not None and e.digest == d:
                mtime, ctime = e.mtime_ns, e.ctime_ns
                sig = f"[[{enc(p)},{enc(d)},{e.size},{mtime - self._t0},{e.ino}" + (
                    f",{ctime - mtime}]]" if ctime != mtime else "]]"
                )
            else:
                sig = f"[[{enc(p)},{enc(d)}]]"  # type: ignore[arg-type]  # None: TypeError
            # 22 characters in base64, not 32 in hex; unhexlify: bytes.fromhex without its
            # cost (or its allowance of spaces, which _any_line takes).
            args = binascii.b2a_base64(binascii.unhexlify(args), newline=False)[:-2].decode()
            name = enc(r.name)
            rest = f'"{args}",{duration},{enc(r.stamp)},{sig}{tail}'
        except (TypeError, ValueError):  # binascii.Error too
            return None
        # Past this point the line is written: the code's number may be taken.
        head = ""
        n = self._codes.get(code)
        if n is None:
            n = self._codes[code] = self._next_code
            self._next_code += 1
            head = _encode_line(["c", n, code]) + "\n"
        return f'{head}["r","",{name},{n},{rest}'

    def _any_line(self, r: Record, entries: Mapping[str, FileEntry] | None) -> str:
        """The line of any record (see ``_record_line``)."""
        rel, t0 = self._rel, self._t0
        code: str | int | None = r.code
        head = ""
        if r.code is not None:
            n = self._codes.get(r.code)
            if n is None:
                # Past every number the log holds (a damaged "c" line's number included):
                # a number never names two digests, so a record never reads another's code.
                n = self._codes[r.code] = self._next_code
                self._next_code += 1
                head = _encode_line(["c", n, r.code]) + "\n"
            code = n
        products = []
        for p, d in r.products.items():
            e = entries.get(p) if entries else None
            if e is not None and e.digest == d:
                sig = [rel(p), d, e.size, e.mtime_ns - t0, e.ino]
                if e.ctime_ns != e.mtime_ns:
                    sig.append(e.ctime_ns - e.mtime_ns)
                products.append(sig)
            else:
                products.append([rel(p), d])
        key = r.key
        if r.products and key == min(r.products):
            key = ""
        else:
            key = self._rel_key(key)
        args = r.args
        if args is not None and len(args) == 32:  # 22 characters in base64, not 32 in hex
            try:
                args = binascii.b2a_base64(bytes.fromhex(args), newline=False)[:-2].decode()
            except ValueError:
                args = r.args
        item: list[Any] = ["r", key, r.name, code, args, r.duration, r.stamp, products]
        # Trailing empty parts are left out (most records have no inputs, upstream or
        # failed dependencies: nothing is built for them).
        av, ins, ups, fl = r.arg_reprs, r.inputs, r.upstream, r.failed
        if av or ins or ups or fl:
            item.append(av if type(av) is dict else dict(av))
            if ins or ups or fl:
                item.append({rel(p): d for p, d in ins.items()})
                if ups or fl:
                    item.append({self._rel_key(k): v for k, v in ups.items()})
                    if fl:
                        item.append({self._rel_key(k): v for k, v in fl.items()})
        return head + _encode_line(item)

    def _quick_record(self, item: list[Any]) -> Record | None:
        """The record of the usual line (a task of one file, keyed by it, its code by
        number, its arguments described or not), as ``_parse_record`` makes it without
        its generality (100,000 lines are read at the start of a run); None for any other
        line (``_parse_record`` takes it). KeyError or ValueError as there."""
        n = len(item)
        av: Any
        ins: Any = _EMPTY
        if n == 9:
            _, key, name, code, args, t, stamp, plist, av = item
        elif n == 8:
            _, key, name, code, args, t, stamp, plist = item
            av = _EMPTY
        elif n == 10:  # and the inputs it read (a sweep's tasks reading a config file)
            _, key, name, code, args, t, stamp, plist, av, ins = item
            if type(ins) is not dict:
                return None
        else:
            return None
        if not (
            key == ""
            and type(name) is str
            and type(code) is int
            and type(args) is str
            and len(args) == 22
            and (type(t) is float or type(t) is int)
            and type(stamp) is str
            and type(plist) is list
            and len(plist) == 1
            and (n == 8 or type(av) is dict)
        ):
            return None
        e = plist[0]
        if type(e) is not list:
            return None
        if len(e) == 5:
            p, d, size, mtime, ino = e
            if not (type(size) is int and type(mtime) is int and type(ino) is int):
                return None
        elif len(e) == 2:  # no stat signature (hashed as it was written: racy), so no entry
            p, d = e
            size = None
        else:
            return None
        if not (type(p) is str and type(d) is str and p[:1] != "/" and p != "."):
            return None
        code = self._code_list[code]  # KeyError: its "c" line is gone, the record too
        args = binascii.a2b_base64(args + "==").hex()  # before the file entry is kept
        p = self._prefix + p
        declared = self._declared
        if declared:
            # The task declared for this product holds the same strings: kept once. The
            # records are usually in the order the tasks are declared: the next task is
            # tried first (no lookup).
            c = self._next
            task = declared[c] if c < len(declared) else None
            own: Sequence[str] = task.products if task is not None else ()
            if len(own) != 1 or own[0] != p:
                c = self._producers.get(p, -1)
                task = declared[c] if c >= 0 else None
                own = task.products if task is not None else ()
            if task is not None:
                self._next = c + 1
                if len(own) == 1:
                    p = own[0]  # its record key too
                if args == task.args_digest:
                    args = task.args_digest
        if size is not None:
            mtime += self._t0
            self.files[p] = _new_tuple(FileEntry, (size, mtime, ino, d, mtime))
        intern = self._interned
        got = intern.get(name)
        if got is not None:
            name = got
        elif len(intern) < 1000:
            intern[name] = name
        if av and len(av) == 1:  # (more entries: the dict as parsed)
            for k, v in av.items():
                av = One(k, v)
        # Durations are rounded: the same few thousand values recur.
        if type(t) is float and len(self._durations) < 10000:
            t = self._durations.setdefault(t, t)
        if ins:
            ins = self._quick_inputs(ins)
        # The key is the product's path (the code's digest is the one str of its number).
        return Record(
            p,
            name,
            code,
            args,
            One(p, d),
            ins or _EMPTY,
            _EMPTY,
            av or _EMPTY,
            t,
            stamp,
            False,
            _EMPTY,
        )

    def _quick_inputs(self, ins: dict[str, Any]) -> Mapping[str, Any]:
        """A record's inputs as ``_parse_record`` makes them (absolute paths, ``One`` for
        one). An input many records read is kept once: a sweep's 100,000 records of one
        config file hold one ``One`` of its path and digest, not 100,000 of each (a
        record that read another version of it has its own)."""
        shared = self._shared_inputs
        if len(ins) == 1:
            for p, d in ins.items():
                got = shared.get(p)
                if got is not None:
                    return got if got._v == d else One(got._k, d)
                one = One(self._abs(p), d)
                if len(shared) < 10000:
                    shared[p] = one
                return one
        out = {}
        for p, d in ins.items():
            got = shared.get(p)
            out[got._k if got is not None else self._abs(p)] = d
        return compact_mapping(out)

    def _parse_record(self, item: list[Any]) -> Record:
        """The record of a format-2 line; ValueError if it is not one."""
        n = len(item)
        if n < 8 or n > 12:
            raise ValueError("record of the wrong length")
        _, key, name, code, args, t, stamp, plist = item[:8]
        av = item[8] if n > 8 else _EMPTY
        ins = item[9] if n > 9 else _EMPTY
        ups = item[10] if n > 10 else _EMPTY
        fl = item[11] if n > 11 else _EMPTY
        if type(args) is str and len(args) == 22:
            args = binascii.a2b_base64(args + "==").hex()
        if type(code) is int:
            code = self._code_list[code]  # KeyError: its "c" line is gone, the record too
        if (
            type(key) is not str
            or type(name) is not str
            or type(stamp) is not str
            or type(plist) is not list
            or (code is not None and type(code) is not str)
            or (args is not None and type(args) is not str)
            or (av is not _EMPTY and type(av) is not dict)
            or (ins is not _EMPTY and type(ins) is not dict)
            or (ups is not _EMPTY and type(ups) is not dict)
            or (fl is not _EMPTY and type(fl) is not dict)
        ):
            raise ValueError("record with fields of the wrong type")
        if type(t) is not float and type(t) is not int:
            t = None
        files = self.files
        # A line of a log without "t0" (written before it was kept) has absolute times,
        # and always the sixth element.
        t0 = self._t0
        prefix = self._prefix
        products: dict[str, str | None] = {}
        producers, declared = self._producers, self._declared
        for e in plist:
            if type(e) is not list or type(p := e[0]) is not str:
                raise ValueError("product entry of the wrong type")
            if p[:1] != "/":  # self._abs, inlined: once per product of 100,000 records
                p = self._root if p == "." else prefix + p
            i = producers.get(p)
            if i is not None:  # the declared task's equal string, kept once
                for q in declared[i].products:
                    if q == p:
                        p = q
                        break
            d = e[1]
            if d is not None and type(d) is not str:
                raise ValueError("product digest of the wrong type")
            products[p] = d
            n_sig = len(e)
            if n_sig == 5 and d is not None:
                size, mtime, ino = e[2], e[3], e[4]
                if type(size) is int and type(mtime) is int and type(ino) is int:
                    mtime += t0
                    # FileEntry(...) without its Python-level __new__ (a third of the cost)
                    files[p] = _new_tuple(FileEntry, (size, mtime, ino, d, mtime))
                    continue
            if (n_sig == 5 or n_sig == 6) and d is not None:
                mtime = int(e[3]) + t0
                files[p] = FileEntry(
                    int(e[2]), mtime, int(e[4]), d, mtime + int(e[5]) if n_sig == 6 else mtime
                )
        if key == "":
            if not products:
                raise ValueError("record without a key")
            first = p if len(products) == 1 else min(products)
            i = producers.get(first)
            task = declared[i] if i is not None else None
            if task is not None and len(task.products) == 1:
                key = task.record_key  # first, the same string
            else:
                key = first
            if task is not None and args == task.args_digest:
                args = task.args_digest
        else:
            key = self._abs_key(key)
        if ins:
            abs_ = self._abs
            ins = {abs_(p): d for p, d in ins.items()}
        if ups:
            ups = {self._abs_key(k): v for k, v in ups.items()}
        # The same few names and code digests on every line: kept once, not once a record.
        intern = self._interned
        got = intern.get(name)
        if got is not None:
            name = got
        elif len(intern) < 1000:  # names may be one a task: then keeping them costs more
            intern[name] = name
        if code is not None:
            code = intern.setdefault(code, code)
        if fl:
            fl = {self._abs_key(k): v for k, v in fl.items()}
        return Record(
            key,
            name,
            code,
            args,
            compact_mapping(products),
            compact_mapping(ins),
            compact_mapping(ups),
            compact_mapping(av),
            t,
            stamp,
            failed=compact_mapping(fl),
        )

    # -- reading ---------------------------------------------------------------------
    def _load(self) -> None:
        # Parsing makes a few objects per line and no cycles: the collector would only
        # walk them again and again (a fifth of the load at 100,000 records).
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._load_lines()
        finally:
            if enabled:
                gc.enable()

    def _load_lines(self) -> None:
        path = self._path()
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        except OSError as e:
            raise StateError(f"cannot read {path}: {e.strerror}") from None
        # A block at a time: the whole log, its text and its lines at once would be the
        # run's peak of memory (16 MB over it at 100,000 records).
        bad = n_lines = 0
        carry = b""
        first = True
        with f:
            while True:
                try:
                    block = f.read(_LOAD_BLOCK)
                except OSError as e:
                    raise StateError(f"cannot read {path}: {e.strerror}") from None
                if not block:
                    break
                lines = (carry + block).decode("utf-8", errors="surrogateescape").split("\n")
                # After the last newline: the start of the next block's first line, or at
                # the end of the log, a line cut short by a crash (or nothing).
                carry = lines.pop().encode("utf-8", "surrogateescape")
                if "" in lines:
                    lines = [ln for ln in lines if ln]
                if first and lines:
                    first = False
                    self._read_header(lines[0], path)
                n_lines += len(lines)
                for start in range(0, len(lines), _LOAD_CHUNK):
                    bad += self._load_items(lines[start : start + _LOAD_CHUNK])
        if carry:
            bad += 1
        self._torn_bytes = len(carry)
        if first:
            self._format = FORMAT  # no line yet: the log is started in this format
        self._lines_on_disk = n_lines
        self._bad_lines = bad
        if bad:
            msg = (
                f"warning: {bad} unreadable line(s) in {path} were ignored (a crash or an "
                "edit cut them); the tasks they described will rerun."
            )
            self.warnings.append(msg)
            self._notify(msg)

    def _read_header(self, line: str, path: str) -> None:
        """The log's format, from its first line (a log of format 1 has no header)."""
        self._format = 1
        if not line.startswith("{"):
            return
        try:
            head = json.loads(line)
        except ValueError:
            return
        if isinstance(head, dict) and "depio_like_state" in head:
            version = head["depio_like_state"]
            if type(version) is not int or version > FORMAT:
                raise StateError(
                    f"{path} was written by a newer depio_like (state format {version!r}; "
                    f"this one reads formats 1 and {FORMAT}): upgrade depio_like, or "
                    f"remove {path} to start afresh (every task then runs again)"
                )
            self._format = version
            t0 = head.get("t0", 0)
            self._t0 = t0 if type(t0) is int else 0

    def _load_items(self, lines: list[str]) -> int:
        """Take in these lines (parsed at once: one parse per line costs twice as much, and
        the whole log at once holds a second copy of it); returns how many were unreadable."""
        bad = 0
        try:
            items = json.loads("[" + ",".join(lines) + "]")
        except ValueError:
            items = []
            for ln in lines:
                try:
                    items.append(json.loads(ln))
                except ValueError:
                    bad += 1
        records, files = self.records, self.files
        abs_, abs_key = self._abs, self._abs_key
        quick = self._quick_record
        for item in items:
            try:
                if type(item) is list and item:
                    tag = item[0]
                    if tag == "r":
                        rec = quick(item)
                        if rec is not None:
                            records[rec.key] = rec
                            continue
                        rec = self._parse_record(item)
                        records[rec.key] = rec
                    elif tag == "f":
                        if len(item) == 6:  # written before ctime was kept: not trusted
                            continue
                        _, p, size, mtime, ino, digest, ctime = item
                        files[abs_(p)] = FileEntry(
                            int(size), int(mtime), int(ino), str(digest), int(ctime)
                        )
                    elif (
                        tag == "c"
                        and len(item) == 3
                        and type(item[1]) is int
                        and type(item[2]) is str
                    ):
                        self._code_list[item[1]] = item[2]
                        self._codes[item[2]] = item[1]
                        self._next_code = max(self._next_code, item[1] + 1)
                    elif tag == "x" and len(item) == 2 and type(item[1]) is str:
                        key = abs_key(item[1])
                        old = records.get(key)
                        if old is not None:
                            records[key] = replace(old, incomplete=True)
                    else:
                        bad += 1
                elif isinstance(item, dict) and "r" in item:  # format 1
                    rec = Record.from_json(item)
                    rec = replace(
                        rec,
                        key=abs_key(rec.key),
                        upstream={abs_key(k): v for k, v in rec.upstream.items()},
                        failed={abs_key(k): v for k, v in rec.failed.items()},
                    )
                    records[rec.key] = rec
                elif isinstance(item, dict) and "x" in item:
                    key = abs_key(item["x"])
                    old = records.get(key)
                    if old is not None:
                        records[key] = replace(old, incomplete=True)
                elif isinstance(item, dict) and "depio_like_state" in item:
                    pass
                else:
                    bad += 1
            except (TypeError, ValueError, IndexError, AttributeError, KeyError):
                bad += 1
        return bad

    def _compact(self) -> None:
        files = self.files
        inline: dict[str, FileEntry] = {}
        lines = 1
        with atomic_write(self._path(), fsync=True) as f:
            f.write(self._header() + "\n")
            chunk: list[str] = []
            for rec in self.records.values():
                entries = None
                for p, d in rec.products.items():
                    e = files.get(p)
                    if e is not None and e.digest == d:
                        inline[p] = e
                        entries = inline
                chunk.append(self._record_line(rec, entries))
                if rec.incomplete:  # still true after the rewrite
                    chunk.append(_encode(["x", self._rel_key(rec.key)]))
                if len(chunk) >= 10000:
                    lines += len(chunk)
                    f.write("\n".join(chunk) + "\n")
                    chunk.clear()
            rel = self._rel
            for p, e in files.items():
                if inline.get(p) is not e:
                    chunk.append(_encode(["f", rel(p), *e]))
            if chunk:
                lines += len(chunk)
                f.write("\n".join(chunk) + "\n")
        self._lines_on_disk = lines
        self._format = FORMAT
        self._rewrite = False
        self._bad_lines = 0

    # -- locking ---------------------------------------------------------------------
    def _acquire(self) -> None:
        from .locking import StateLock

        self._lock = StateLock(self.dir, LOCK_NAME)
        self._lock.acquire(self.wait, self._notify)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def check_private(directory: str) -> None:
    """Refuse a state directory another user could have written to: what is in it (pickled
    values, Slurm results) is loaded as code this process runs. Owned by someone else or
    writable by group or others: a ``StateError`` saying how to fix it. Directories inside
    are checked too when others can reach them (the directory is group/other searchable)."""
    if not hasattr(os, "geteuid"):  # pragma: no cover - no POSIX owners
        return
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return
    except OSError as e:
        raise StateError(f"cannot use the state directory {directory}: {e.strerror}") from None
    if not _stat.S_ISDIR(st.st_mode):
        raise StateError(
            f"the state directory {directory} exists but is not a directory; "
            "remove it or choose another state_dir"
        )
    _check_entry(directory, st, directory)
    if st.st_mode & 0o011:  # others can reach what is inside: check where pickles live
        for sub in ("values", "slurm"):
            top = os.path.join(directory, sub)
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    path = os.path.join(root, name)
                    try:
                        _check_entry(path, os.lstat(path), directory)
                    except FileNotFoundError:
                        pass
            if os.path.isdir(top):
                _check_entry(top, os.lstat(top), directory)


def _check_entry(path: str, st: os.stat_result, directory: str) -> None:
    me = os.geteuid()
    if st.st_uid != me:
        raise StateError(
            f"the state directory {directory} is not yours: {path} belongs to "
            f"{_user(st.st_uid)}, and you are {_user(me)}. What is in it (saved values, "
            "Slurm results) is loaded as Python code, so it must be written by you alone. "
            f"Use your own state_dir=..., or, if you trust its content, take it over with "
            f"`chown -R {_user(me)} {directory}`"
        )
    if st.st_mode & 0o022 and not _stat.S_ISLNK(st.st_mode):
        raise StateError(
            f"the state directory {directory} can be written by other users: {path} has mode "
            f"{_stat.filemode(st.st_mode)}. What is in it (saved values, Slurm results) is "
            "loaded as Python code, so it must be written by you alone. Fix it with "
            f"`chmod -R go-w {directory}`"
        )


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"
