"""The record of past runs: an append-only JSON-lines log under the state directory.

Each line is one self-contained record: ``{"r": key, ...}`` for a task that succeeded,
``{"x": key}`` for a task that started (its products are incomplete until its next
``"r"`` line), ``["f", path, size, mtime_ns, inode, digest, ctime_ns]`` for a file's content
digest (an older line without ctime is not trusted: the file is read again). On load, the
last line for a key wins; a line cut short by a crash (no newline, or not JSON) is ignored,
so a crash leaves the old record or the new one, never a torn one. When the log has grown
to several times what it holds, it is rewritten to a temporary file and renamed over the
old one (atomic). A file lock keeps two runs from using the same directory at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat as _stat
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import StateError
from .fingerprint import FileEntry
from .fs import atomic_write, write_atomic

LOG_NAME = "state.jsonl"
LAST_RUN_NAME = "last_run.json"  # the table of the last run, for `depio-like status`
LOCK_NAME = "lock"
OWNER_NAME = "lock.owner"
_HEADER = {"depio_like_state": 1}



@dataclass(slots=True)
class Record:
    """What a task's last successful run left, compared with the task now to decide whether
    it is up to date. Only this class knows the record's form on disk (the short keys).
    Read-only by convention (``dataclasses.replace`` makes a changed copy): a frozen
    dataclass costs twice as much to build, and 100,000 are built per run."""

    key: str                     # the task's record key (its first product, or its call)
    name: str = ""
    code: str | None = None      # digest of the function's code
    args: str | None = None      # digest of its tracked arguments
    products: Mapping[str, str | None] = field(default_factory=dict)  # path -> digest after the run
    inputs: Mapping[str, str | None] = field(default_factory=dict)    # dependency -> digest before
    upstream: Mapping[str, str] = field(default_factory=dict)         # depends_on key -> its stamp
    arg_reprs: Mapping[str, str] = field(default_factory=dict)        # to say which argument changed
    duration: float | None = None
    stamp: str = ""              # changes when anything above changes: read downstream
    incomplete: bool = False     # it started again and has not finished: products may be partial
    failed: Mapping[str, str] = field(default_factory=dict)  # run_if="all_done": dependencies
    # that had failed when it ran (record key -> label): it runs again next time

    def to_json(self) -> str:
        # Kept small: 10,000 of these are read at the start of every run; empty parts are
        # left out.
        d: dict[str, Any] = {"r": self.key, "n": self.name, "c": self.code, "a": self.args,
                             "p": dict(self.products), "t": self.duration, "s": self.stamp}
        for k, v in (("av", self.arg_reprs), ("d", self.inputs), ("u", self.upstream),
                     ("fl", self.failed)):
            if v:
                d[k] = dict(v)
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        """The record a parsed line holds; ValueError if it is not one (a damaged line
        must not crash every later run)."""
        get = d.get
        key, name, code, args, stamp = get("r"), get("n"), get("c"), get("a"), get("s")
        p, i, u, av, fl = get("p") or {}, get("d") or {}, get("u") or {}, get("av") or {}, \
            get("fl") or {}
        t = get("t")
        # Straight-line checks: 100,000 records are read at the start of a run.
        if (type(key) is not str or type(p) is not dict or type(i) is not dict
                or type(u) is not dict or type(av) is not dict or type(fl) is not dict
                or (name is not None and type(name) is not str)
                or (code is not None and type(code) is not str)
                or (args is not None and type(args) is not str)
                or (stamp is not None and type(stamp) is not str)):
            raise ValueError("record with fields of the wrong type")
        if type(t) is not float and type(t) is not int:
            t = None
        return cls(key, name or "", code, args, p, i, u, av, t, stamp or "",
                   bool(get("incomplete")), fl)


def recorded_durations(keys: Sequence[str], records: Mapping[str, Record]) -> list[float]:
    """How long each task (by record key) took when it last ran; one never timed counts as
    the mean of the others (1 s when none was)."""
    got = []
    for key in keys:
        r = records.get(key)
        got.append(r.duration if r is not None else None)
    known = [d for d in got if d is not None]
    mean = sum(known) / len(known) if known else 1.0
    return [mean if d is None else d for d in got]


def last_run_summary(code: int, statuses: Sequence[Any], max_rows: int,
                     table: Callable[[Sequence[int]], tuple[list[str], list[list[str]]]],
                     log_of: Callable[[int], str]) -> dict[str, Any]:
    """The final table, for ``depio-like status`` to show without running anything:
    every row for a small pipeline, for a large one the counts and the rows that did not
    end well (writing 10,000 rows would cost more than a no-op run)."""
    n = len(statuses)
    keep = range(n) if n <= max_rows else \
        [i for i, st in enumerate(statuses) if not st.ok][:max_rows]
    headers, rows = table(keep)
    counts: dict[str, int] = {}
    for st in statuses:
        counts[st.value] = counts.get(st.value, 0) + 1
    return {"finished": time.strftime("%Y-%m-%d %H:%M:%S"), "exit_code": code,
            "cwd": os.getcwd(), "tasks": n, "counts": counts, "headers": headers,
            "rows": rows, "logs": [log_of(i) for i in keep]}


class State:
    """Task records and file digests loaded from, and appended to, ``state_dir``."""

    def __init__(self, state_dir: str, *, wait: bool = True,
                 notify: Callable[[str], None] | None = None) -> None:
        self.dir = os.path.abspath(state_dir)
        self.wait = wait
        self._notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.records: dict[str, Record] = {}
        self.files: dict[str, FileEntry] = {}
        self.warnings: list[str] = []
        self._lines_on_disk = 0
        self._torn_bytes = 0   # length of a half-written last line left by a crash
        self._bad_lines = 0
        self._rewrite = False  # rewrite the log at close (records forgotten)
        self._pending: list[str] = []
        self._log: int | None = None  # the log's file descriptor, appended to
        self._size = 0  # bytes of whole lines in the log
        #: Why writing to the state directory failed (a full disk), if it did.
        self.write_error: str | None = None
        self._lock: Any = None

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> State:
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)  # records are the user's alone
        except OSError as e:
            raise StateError(f"cannot create the state directory {self.dir}: {e}") from e
        check_private(self.dir)  # before anything in it is read
        self._acquire()
        try:
            self._load()
            try:
                self._log = os.open(os.path.join(self.dir, LOG_NAME),
                                    os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as e:
                raise StateError(f"cannot write the state directory {self.dir}: {e.strerror} "
                                 f"({e.filename}); it must be writable by you") from None
            self._size = os.fstat(self._log).st_size
            if self._torn_bytes:  # cut a crash's half line off, so the next record stands alone
                self._size -= self._torn_bytes
                os.ftruncate(self._log, self._size)
            if self._lines_on_disk == 0:
                self._pending.append(json.dumps(_HEADER))
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
                live = len(self.records) + len(self.files)
                if self.write_error is None and (self._rewrite or self._bad_lines
                                                 or self._lines_on_disk > 2 * live + 1000):
                    try:
                        self._compact()
                    except OSError as e:  # the old log stays: it is still whole
                        self._failed(e)
        finally:
            self._release()

    def __enter__(self) -> State:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------
    def put_record(self, record: Record) -> None:
        self.records[record.key] = record
        self._pending.append(record.to_json())

    def forget(self, keys: Iterable[str], paths: Iterable[str] = ()) -> None:
        """Drop the records ``keys`` and the file digests of ``paths`` (rewritten at close)."""
        for k in keys:
            self.records.pop(k, None)
        for p in paths:
            self.files.pop(p, None)
        self._rewrite = True

    def mark_started(self, key: str) -> None:
        """Task ``key`` is about to run: until a new record comes, its old one is incomplete."""
        old = self.records.get(key)
        if old is not None:
            self.records[key] = replace(old, incomplete=True)
        self._pending.append(json.dumps({"x": key}, ensure_ascii=False))

    def put_files(self, entries: dict[str, FileEntry]) -> None:
        for path, e in entries.items():
            self.files[path] = e
            self._pending.append(json.dumps(["f", path, *e], separators=(",", ":"),
                                            ensure_ascii=False))
        entries.clear()

    def flush(self) -> None:
        """Append pending lines to the log in one write."""
        if not self._pending or self._log is None:
            return
        if self.write_error is not None:  # the disk refused a write: keep the log whole
            self._pending.clear()
            return
        # surrogateescape: file names that are not UTF-8 round-trip byte for byte.
        data = ("\n".join(self._pending) + "\n").encode("utf-8", "surrogateescape")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._log, view):]
        except OSError as e:
            self._failed(e)
            with contextlib.suppress(OSError):  # no half line: the log ends where it did
                os.ftruncate(self._log, self._size)
            self._pending.clear()
            return
        self._size += len(data)
        self._lines_on_disk += len(self._pending)
        self._pending.clear()

    def _failed(self, e: OSError) -> None:
        """A write to the state directory failed (a full disk): the run goes on, records
        of what finishes from now on are not kept (those tasks run again next time), and
        the run ends as failed, saying why."""
        if self.write_error is None:
            self.write_error = (f"cannot write to the state directory {self.dir}: "
                                f"{e.strerror or e}; what finished after this is not "
                                "recorded and will run again")

    def write_last_run(self, data: dict[str, Any]) -> None:
        """Replace the summary of the last run (atomically)."""
        try:
            write_atomic(os.path.join(self.dir, LAST_RUN_NAME), json.dumps(data, ensure_ascii=False))
        except OSError as e:  # nothing half written is left: atomic_write removed it
            self._failed(e)

    # -- reading ---------------------------------------------------------------------
    def _load(self) -> None:
        path = os.path.join(self.dir, LOG_NAME)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise StateError(f"cannot read {path}: {e.strerror}") from None
        text = data.decode("utf-8", errors="surrogateescape")
        lines = text.split("\n")
        torn = lines.pop()  # text after the last newline: empty, or a line cut short
        lines = [ln for ln in lines if ln]
        bad = 1 if torn else 0
        self._torn_bytes = len(torn.encode("utf-8", "surrogateescape"))
        try:
            items = json.loads("[" + ",".join(lines) + "]")
        except ValueError:
            items = []
            for ln in lines:
                try:
                    items.append(json.loads(ln))
                except ValueError:
                    bad += 1
        for item in items:
            try:
                if isinstance(item, list) and item and item[0] == "f":
                    if len(item) == 6:  # written before ctime was kept: not trusted
                        continue
                    _, p, size, mtime, ino, digest, ctime = item
                    self.files[p] = FileEntry(int(size), int(mtime), int(ino), str(digest),
                                              int(ctime))
                elif isinstance(item, dict) and "r" in item:
                    rec = Record.from_json(item)
                    self.records[rec.key] = rec
                elif isinstance(item, dict) and "x" in item:
                    old = self.records.get(item["x"])
                    if old is not None:
                        self.records[item["x"]] = replace(old, incomplete=True)
                elif isinstance(item, dict) and "depio_like_state" in item:
                    pass
                else:
                    bad += 1
            except (TypeError, ValueError):
                bad += 1
        self._lines_on_disk = len(lines)
        self._bad_lines = bad
        if bad:
            msg = (f"warning: {bad} unreadable line(s) in {path} were ignored (a crash or an "
                   "edit cut them); the tasks they described will rerun.")
            self.warnings.append(msg)
            self._notify(msg)

    def _compact(self) -> None:
        with atomic_write(os.path.join(self.dir, LOG_NAME), fsync=True) as f:
            f.write(json.dumps(_HEADER) + "\n")
            for p, e in self.files.items():
                f.write(json.dumps(["f", p, *e], separators=(",", ":"), ensure_ascii=False) + "\n")
            for rec in self.records.values():
                f.write(rec.to_json() + "\n")
                if rec.incomplete:  # still true after the rewrite
                    f.write(json.dumps({"x": rec.key}, ensure_ascii=False) + "\n")
        self._lines_on_disk = 1 + len(self.files) + len(self.records)

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
        raise StateError(f"the state directory {directory} exists but is not a directory; "
                         "remove it or choose another state_dir")
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
            f"`chown -R {_user(me)} {directory}`")
    if st.st_mode & 0o022 and not _stat.S_ISLNK(st.st_mode):
        raise StateError(
            f"the state directory {directory} can be written by other users: {path} has mode "
            f"{_stat.filemode(st.st_mode)}. What is in it (saved values, Slurm results) is "
            "loaded as Python code, so it must be written by you alone. Fix it with "
            f"`chmod -R go-w {directory}`")


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"
