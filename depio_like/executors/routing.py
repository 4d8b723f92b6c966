"""Each task's own output where tasks share one process's streams (threads).

While routed, ``sys.stdout`` / ``sys.stderr`` are routers: what a thread running a task
prints goes to that task's log files (created on the first write), what any other thread
prints goes where it went before. Used by ``ThreadExecutor`` and by Dask workers that run
several tasks at once in threads.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import Any, TextIO

from .base import LogPath, log_path

_thread = threading.local()  # .files: the running task's (out, err) log files, in its thread


class LazyLog:
    """A task's ``.out`` or ``.err`` file, created on the first write (a silent task costs
    no file)."""

    __slots__ = ("path", "file")

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: TextIO | None = None

    def write(self, text: str) -> None:
        if self.file is None:
            # Kept open across writes, closed by close(): no context manager fits.
            self.file = open(self.path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.file.write(text)

    def close(self, old_log: bool) -> bool:
        if self.file is not None:
            self.file.close()
            return True
        if old_log:
            try:
                os.unlink(self.path)  # what an earlier run of it printed is stale now
            except FileNotFoundError:
                pass
        return False


class Router(io.TextIOBase):
    """Stands for ``sys.stdout`` (or ``sys.stderr``) while tasks run in threads: a write
    goes to the log of the task running in the writing thread, or else where it went."""

    def __init__(self, stream: Any, which: int) -> None:
        self.stream, self.which = stream, which

    def write(self, text: str) -> int:
        files = getattr(_thread, "files", None)
        if files is not None:
            files[self.which].write(text)
        else:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_thread, "files", None) is None:
            self.stream.flush()

    def isatty(self) -> bool:
        return getattr(_thread, "files", None) is None and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, ...
        return getattr(self.stream, name)


class ThreadCapture:
    """``run_steps``'s capture for a task run in this thread (see ``base.Capture``)."""

    def begin(self, log: LogPath) -> None:
        log = log_path(log)
        _thread.files = (LazyLog(log + ".out"), LazyLog(log + ".err"))

    def end(self, log: LogPath, old_log: bool = True) -> bool:
        out, err = _thread.files
        _thread.files = None
        printed = out.close(old_log)
        return err.close(old_log) or printed


def route() -> tuple[TextIO, TextIO] | None:
    """Make ``sys.stdout`` / ``sys.stderr`` routers; returns what they were, for
    ``unroute``, or None when they already were routers (whoever routed them undoes it)."""
    if isinstance(sys.stdout, Router) or isinstance(sys.stderr, Router):
        return None
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Router(sys.stdout, 0), Router(sys.stderr, 1)
    return saved


def unroute(saved: tuple[TextIO, TextIO] | None) -> None:
    """Give back the streams ``route`` replaced (unless something replaced ours since)."""
    if saved is None:
        return
    if isinstance(sys.stdout, Router):
        sys.stdout = saved[0]
    if isinstance(sys.stderr, Router):
        sys.stderr = saved[1]


def forget_task() -> None:
    """The calling thread runs no task (any more): its prints go where they went before."""
    _thread.files = None
