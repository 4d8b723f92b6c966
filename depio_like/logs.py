"""Where each task's output goes, and reading it back."""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

import xxhash

from .paths import show_path

SHOWN_LINES = 200  # of a task's output shown when it ends; all of it is in its log
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def task_log(log_dir: str, task: Any) -> str:
    """The base path of a task's log files: its name and a hash of its identity."""
    safe = _UNSAFE.sub("_", task.name)[:40] or "task"
    key = xxhash.xxh3_64_hexdigest(task.record_key.encode("utf-8", "surrogateescape"))
    return os.path.join(log_dir, f"{safe}-{key[:10]}")


def read_all(path: str) -> str:
    """A log file's text ("" if there is none)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_tail(path: str, max_lines: int) -> str:
    """The last ``max_lines`` lines of a log file, saying how many were left out."""
    try:
        if os.path.getsize(path) == 0:
            return ""
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    if len(lines) > max_lines:
        lines = [f"... ({len(lines) - max_lines} earlier lines in {path})"] + lines[-max_lines:]
    return "\n".join(lines)


class TaskLogs:
    """Where each task of one run writes its output (``<base>.out`` / ``.err``), and
    whether a file of an earlier run may be there (a task that prints nothing removes its
    stale ones). Paths are made on first use: 10,000 silent tasks cost no work here."""

    def __init__(self, log_dir: str, tasks: Sequence[Any]) -> None:
        self.dir = log_dir
        self._tasks = tasks
        self._bases: list[str | None] = [None] * len(tasks)
        self._existing: set[str] = set()  # basenames of log files that may exist

    def open(self) -> None:
        """The run starts: note the log files earlier runs left."""
        os.makedirs(self.dir, exist_ok=True)
        self._existing = {name.rsplit(".", 1)[0] for name in os.listdir(self.dir)}

    def base(self, i: int) -> str:
        """The base path of task ``i``'s log files (stable across runs)."""
        b = self._bases[i]
        if b is None:
            b = self._bases[i] = task_log(self.dir, self._tasks[i])
        return b

    def may_exist(self, i: int) -> bool:
        return os.path.basename(self.base(i)) in self._existing

    def wrote(self, i: int) -> None:
        """Task ``i`` printed something: its log files exist now."""
        self._existing.add(os.path.basename(self.base(i)))

    def tail(self, i: int) -> str:
        """What task ``i`` printed (its last lines), stdout then stderr."""
        parts = [text for ext in (".out", ".err")
                 if (text := read_tail(self.base(i) + ext, SHOWN_LINES))]
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
