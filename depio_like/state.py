"""The record of past runs: an append-only JSON-lines log under the state directory.

Each line is one self-contained record: ``{"r": key, ...}`` for a task that succeeded,
``{"x": key}`` for a task that started (its products are incomplete until its next
``"r"`` line), ``["f", path, size, mtime_ns, inode, digest]`` for a file's content digest. On load, the
last line for a key wins; a line cut short by a crash (no newline, or not JSON) is ignored,
so a crash leaves the old record or the new one, never a torn one. When the log has grown
to several times what it holds, it is rewritten to a temporary file and renamed over the
old one (atomic). A file lock keeps two runs from using the same directory at once.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any, Callable, TextIO

from .errors import StateError, StateLockedError
from .fingerprint import FileEntry
from .fs import atomic_write, write_atomic

LOG_NAME = "state.jsonl"
LAST_RUN_NAME = "last_run.json"  # the table of the last run, for `depio-like status`
LOCK_NAME = "lock"
OWNER_NAME = "lock.owner"
_HEADER = {"depio_like_state": 1}


class State:
    """Task records and file digests loaded from, and appended to, ``state_dir``."""

    def __init__(self, state_dir: str, *, wait: bool = True,
                 notify: Callable[[str], None] | None = None) -> None:
        self.dir = os.path.abspath(state_dir)
        self.wait = wait
        self._notify = notify or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.records: dict[str, dict[str, Any]] = {}
        self.files: dict[str, FileEntry] = {}
        self.warnings: list[str] = []
        self._lines_on_disk = 0
        self._torn_bytes = 0   # length of a half-written last line left by a crash
        self._bad_lines = 0
        self._rewrite = False  # rewrite the log at close (records forgotten)
        self._pending: list[str] = []
        self._log: TextIO | None = None
        self._lock: Any = None

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> "State":
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)  # records are the user's alone
        except OSError as e:
            raise StateError(f"cannot create the state directory {self.dir}: {e}") from e
        self._acquire()
        try:
            self._load()
            # surrogateescape: file names that are not UTF-8 round-trip byte for byte.
            self._log = open(os.path.join(self.dir, LOG_NAME), "a", encoding="utf-8",
                             errors="surrogateescape")
            if self._torn_bytes:  # cut a crash's half line off, so the next record stands alone
                self._log.truncate(self._log.tell() - self._torn_bytes)
            if self._lines_on_disk == 0:
                self._log.write(json.dumps(_HEADER) + "\n")
                self._log.flush()
                self._lines_on_disk = 1
        except BaseException:
            self._release()
            raise
        return self

    def read_only(self) -> "State":
        """Load the records without locking or writing anything (for a dry run)."""
        self._load()
        return self

    def close(self) -> None:
        """Write what is pending, compact the log when worthwhile, release the lock."""
        try:
            if self._log is not None:
                self.flush()
                os.fsync(self._log.fileno())
                self._log.close()
                self._log = None
                live = len(self.records) + len(self.files)
                if self._rewrite or self._bad_lines or self._lines_on_disk > 2 * live + 1000:
                    self._compact()
        finally:
            self._release()

    def __enter__(self) -> "State":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------
    def put_record(self, key: str, record: dict[str, Any]) -> None:
        record = {"r": key, **record}
        self.records[key] = record
        self._pending.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))

    def forget(self, keys: list[str], paths: list[str] = ()) -> None:
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
            self.records[key] = {**old, "incomplete": True}
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
        self._log.write("\n".join(self._pending) + "\n")
        self._log.flush()
        self._lines_on_disk += len(self._pending)
        self._pending.clear()

    def write_last_run(self, data: dict[str, Any]) -> None:
        """Replace the summary of the last run (atomically)."""
        write_atomic(os.path.join(self.dir, LAST_RUN_NAME), json.dumps(data, ensure_ascii=False))

    # -- reading ---------------------------------------------------------------------
    def _load(self) -> None:
        path = os.path.join(self.dir, LOG_NAME)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
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
                    _, p, size, mtime, ino, digest = item
                    self.files[p] = FileEntry(int(size), int(mtime), int(ino), str(digest))
                elif isinstance(item, dict) and "r" in item:
                    if not _well_formed(item):
                        raise ValueError("record with fields of the wrong type")
                    self.records[item["r"]] = item
                elif isinstance(item, dict) and "x" in item:
                    old = self.records.get(item["x"])
                    if old is not None:
                        self.records[item["x"]] = {**old, "incomplete": True}
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
                f.write(json.dumps(rec, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._lines_on_disk = 1 + len(self.files) + len(self.records)

    # -- locking ---------------------------------------------------------------------
    def _acquire(self) -> None:
        from filelock import FileLock, Timeout

        self._lock = FileLock(os.path.join(self.dir, LOCK_NAME))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            owner = self._owner()
            if not self.wait:
                raise StateLockedError(
                    f"the state directory {self.dir} is in use by another run ({owner}); "
                    "wait for it to finish, or run with waiting allowed"
                ) from None
            self._notify(f"waiting for another run to release {self.dir} ({owner}) ...")
            self._lock.acquire()
        with open(os.path.join(self.dir, OWNER_NAME), "w", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")

    def _owner(self) -> str:
        try:
            with open(os.path.join(self.dir, OWNER_NAME), encoding="utf-8") as f:
                return f.read().strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


_DICTS = ("d", "p", "u", "av")
_STRS = ("c", "a", "s", "n")


def _well_formed(rec: dict[str, Any]) -> bool:
    """A record the planner can read: trusting a malformed one would crash every run."""
    if not isinstance(rec["r"], str):
        return False
    for k in _DICTS:
        if k in rec and not isinstance(rec[k], dict):
            return False
    for k in _STRS:
        if k in rec and rec[k] is not None and not isinstance(rec[k], str):
            return False
    return True
