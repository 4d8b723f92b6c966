"""Where each task's output goes, and reading it back."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import xxhash

from .fs import remove_stale_temps
from .paths import show_path
from .task import disk_key

SHOWN_LINES = 200  # of a task's output shown when it ends; all of it is in its log
SHOWN_BYTES = 256 * 1024  # read from the end of a log to find those lines
RESULT_BYTES = 1 << 20  # of each of a task's logs handed to hooks (TaskResult.stdout/.stderr)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def task_log(log_dir: str, task: Any) -> str:
    """The base path of a task's log files: its name and a hash of its identity."""
    name = task.name
    safe = _SAFE.get(name)
    if safe is None:
        safe = _UNSAFE.sub("_", name)[:40] or "task"
        if len(_SAFE) < 1000:  # the same few names over and over (one per function)
            _SAFE[name] = safe
    key = xxhash.xxh3_64_hexdigest(disk_key(task.record_key).encode("utf-8", "surrogateescape"))
    if log_dir[-1:] not in ("/", ""):  # what os.path.join does then, without its cost
        return f"{log_dir}/{safe}-{key[:10]}"
    return os.path.join(log_dir, f"{safe}-{key[:10]}")


_SAFE: dict[str, str] = {}
_xxh3_64 = xxhash.xxh3_64_hexdigest


def read_all(path: str, limit: int = RESULT_BYTES) -> str:
    """A log file's text ("" if there is none); of a log larger than ``limit`` bytes, its
    last ``limit`` bytes after a line saying how much was left out and where it all is.
    Memory stays bounded however much a task printed (hooks get this text)."""
    data, size = _tail_bytes(path, limit)
    text = data.decode("utf-8", "replace")
    if size > len(data):
        text = (
            f"[... {size - len(data)} earlier bytes not shown; all {size} bytes are in {path}]\n"
        ) + text
    return text


def read_tail(path: str, max_lines: int, max_bytes: int = SHOWN_BYTES) -> str:
    """The last ``max_lines`` lines of a log file (at most its last ``max_bytes`` bytes
    are read), saying that earlier output was left out and where it is."""
    data, size = _tail_bytes(path, max_bytes)
    if not data:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    cut = size > len(data)
    if cut and len(lines) > 1:
        lines = lines[1:]  # the first line read is only the end of a longer one
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        cut = True
    if cut:
        lines = [f"... (earlier lines in {path}, {size} bytes in all)"] + lines
    return "\n".join(lines)


class TaskLogs:
    """Where each task of one run writes its output (``<base>.out`` / ``.err``), and
    whether a file of an earlier run may be there (a task that prints nothing removes its
    stale ones). Paths are made on first use: 10,000 silent tasks cost no work here."""

    def __init__(self, log_dir: str, tasks: Sequence[Any]) -> None:
        self.dir = log_dir
        self._tasks = tasks
        # The last path made: asked for again at once (base, then may_exist). Not one kept
        # per task: 100,000 paths would stay for the run's length.
        self._last: tuple[int, str] = (-1, "")
        # What task_log puts before a task's own part, when it is a plain join.
        self._prefix = log_dir + "/" if log_dir[-1:] not in ("/", "") else None
        self._existing: set[str] = set()  # basenames of log files that may exist

    def open(self) -> None:
        """The run starts: note the log files earlier runs left."""
        os.makedirs(self.dir, exist_ok=True)
        names = os.listdir(self.dir)
        # Progress files of tasks killed while writing them (one listing for both).
        if remove_stale_temps(self.dir, entries=names):
            names = os.listdir(self.dir)
        self._existing = {name.rsplit(".", 1)[0] for name in names}

    def base(self, i: int) -> str:
        """The base path of task ``i``'s log files (stable across runs): ``task_log``."""
        last = self._last
        if last[0] == i:
            return last[1]
        # task_log, inlined (every task that runs comes here): the directory's part made
        # once, disk_key spelt out.
        task = self._tasks[i]
        safe = _SAFE.get(task.name)
        key = task.record_key
        if safe is None or self._prefix is None:
            b = task_log(self.dir, task)
        else:
            if key[:1] == "/":
                key = "p:" + key
            b = f"{self._prefix}{safe}-{_xxh3_64(key.encode('utf-8', 'surrogateescape'))[:10]}"
        self._last = (i, b)
        return b

    def may_exist(self, i: int) -> bool:
        if not self._existing:  # a first run: no log of any task yet
            return False
        return os.path.basename(self.base(i)) in self._existing

    def wrote(self, i: int) -> None:
        """Task ``i`` printed something: its log files exist now."""
        self._existing.add(os.path.basename(self.base(i)))

    def tail(self, i: int) -> str:
        """What task ``i`` printed (its last lines), stdout then stderr."""
        parts = [
            text for ext in (".out", ".err") if (text := read_tail(self.base(i) + ext, SHOWN_LINES))
        ]
        return "\n".join(parts).rstrip("\n")

    def output(self, i: int) -> tuple[str, str]:
        base = self.base(i)
        return read_all(base + ".out"), read_all(base + ".err")

    def where(self, i: int) -> str:
        """Where to look for the whole output, if the task left any."""
        base = self.base(i)
        if not os.path.exists(base + ".err"):
            return ""
        return f"\n(output: {show_path(base)}.out, {show_path(base)}.err)"


def _tail_bytes(path: str, limit: int) -> tuple[bytes, int]:
    """The last ``limit`` bytes of a file, and its size ((b"", 0) if unreadable)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                f.seek(size - limit)
            return f.read(limit), size
    except OSError:
        return b"", 0
