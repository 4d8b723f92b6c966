"""Where each task's output goes, and reading it back."""

from __future__ import annotations

import os
import re
from typing import Any

import xxhash

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
