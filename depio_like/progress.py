"""Progress reported from inside a running task: ``current_progress().advance()``.

In the driver's own process (SequentialExecutor) an update reaches the live table directly;
in worker processes and Slurm jobs it is written to a small file next to the task's logs
(compute nodes often cannot open a connection back to the submitting host, but they share
its filesystem). Either way at most a few times a second: a tight loop calling ``advance()``
costs a counter increment and a clock read.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .fs import write_atomic

_INTERVAL = 0.2  # seconds between two publications of the same task's progress
SUFFIX = ".progress"  # of a task's progress file, beside its logs

# A task being run: [key, log, sink, its Progress or None] (a list costs no call to make).
_Slot = list
# The task running in this process; its Progress is made only when the task asks for it
# (most never do: a task that runs costs no object here).
_current: _Slot | None = None
# Set by the driver for tasks it runs in its own process; workers reset it.
_local_sink: Callable[[int, dict[str, Any]], None] | None = None
# A process that runs several tasks at once in threads (a Dask worker) keeps each task's
# progress, and where it goes, per thread; the globals above serve threads a task starts.


class _PerThread(threading.local):
    # Class-level defaults: a thread that set neither reads None without an
    # AttributeError raised and caught inside getattr (twice per task otherwise).
    current: _Slot | None = None
    sink: Callable[[int, dict[str, Any]], None] | None = None


_thread = _PerThread()


class Progress:
    """How far the running task is. Outside a task, ``current_progress()`` is None."""

    __slots__ = (
        "current",
        "total",
        "message",
        "phase",
        "_key",
        "_path",
        "_sink",
        "_last",
        "_wrote",
    )

    def __init__(
        self, key: int, path: str | None, sink: Callable[[int, dict[str, Any]], None] | None
    ) -> None:
        self._key = key
        self.current: float = 0
        self.total: float | None = None
        self.message: str = ""
        self.phase: str = ""
        self._path = path
        self._sink = sink
        self._last = 0.0
        self._wrote = False

    def update(
        self,
        current: float | None = None,
        total: float | None = None,
        message: str | None = None,
        phase: str | None = None,
    ) -> None:
        """Set any of: how far (``current`` of ``total``), a short ``message``, a ``phase``."""
        if current is not None:
            self.current = current
        if total is not None:
            self.total = total
        if message is not None:
            self.message = str(message)
        if phase is not None:
            self.phase = str(phase)
        self.advance(0)

    def advance(self, n: float = 1) -> None:
        """``current += n``; published at most every 0.2 s."""
        self.current += n
        now = time.monotonic()
        if now - self._last >= _INTERVAL:
            self._publish(now)

    def snapshot(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "total": self.total,
            "message": self.message,
            "phase": self.phase,
        }

    def _publish(self, now: float) -> None:
        self._last = now
        snap = self.snapshot()
        if self._sink is not None:
            self._sink(self._key, snap)
        elif self._path:
            try:
                write_atomic(self._path, json.dumps(snap))
                self._wrote = True
            except OSError:  # progress is a courtesy: never fail a task for it
                pass

    def close(self) -> None:
        """The task is over: its progress file goes (a later run must not show it)."""
        if self._wrote and self._path:
            try:
                os.remove(self._path)
            except OSError:
                pass


def current_progress() -> Progress | None:
    """The progress of the task running in this process, or None outside a task."""
    slot = _thread.current or _current
    if slot is None:
        return None
    p = slot[3]
    if p is None:  # the task's first ask: made now, once (the task's threads may ask too)
        with _making:
            p = slot[3]
            if p is None:
                log = slot[1]
                if log and not isinstance(log, str):  # a function making it (see begin)
                    log = log()
                p = slot[3] = Progress(slot[0], log + SUFFIX if log else None, slot[2])
    return p


_making = threading.Lock()


def begin(key: int, log: str | Callable[[], str] | None) -> None:
    """Start reporting for task ``key`` (called by the executor around each task), to
    ``log + SUFFIX`` if there is no sink (``log``: the base path of its log files, or a
    function making it, called only then)."""
    global _current
    here = _thread
    _current = here.current = [key, log, here.sink or _local_sink, None]


def end() -> None:
    global _current
    here = _thread
    slot = here.current or _current
    if slot is not None:
        p = slot[3]
        if p is not None and p._wrote:  # else close() has nothing to remove
            p.close()
    here.current = None
    if _current is slot:
        _current = None


def set_local_sink(sink: Callable[[int, dict[str, Any]], None] | None) -> None:
    global _local_sink
    _local_sink = sink


def set_thread_sink(sink: Callable[[int, dict[str, Any]], None] | None) -> None:
    """Where progress of tasks begun in this thread goes (before the process's sink)."""
    _thread.sink = sink


def deliver(key: int, snapshot: dict[str, Any]) -> None:
    """Hand a snapshot that came from elsewhere (a Dask worker) to this process's sink."""
    if _local_sink is not None:
        _local_sink(key, snapshot)


def read(path: str) -> dict[str, Any] | None:
    """The last progress a task published to ``path``, if any."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def describe(snap: dict[str, Any], width: int = 24) -> str:
    """A compact cell: ``45% phase: message`` or ``12 phase: message``."""
    cur, total = snap.get("current") or 0, snap.get("total")
    if total:
        head = f"{100.0 * cur / total:3.0f}%"
    else:
        head = f"{cur:g}" if isinstance(cur, (int, float)) else str(cur)
    tail = ": ".join(x for x in (snap.get("phase"), snap.get("message")) if x)
    text = f"{head} {tail}".strip()
    return text if len(text) <= width else text[: width - 1] + "…"


class Watch:
    """The driver's side: progress of running tasks handed to ``show(i, snapshot)``.

    A task run in the driver's own process reports at once (between ``listen()`` and
    ``stop()``); tasks in other processes write files, which ``poll`` reads when asked,
    at most every 0.2 s, and only when ``polling`` (a terminal shows it; a log would not).
    """

    def __init__(
        self,
        show: Callable[[int, dict[str, Any]], None],
        redraw: Callable[[], None],
        log_of: Callable[[int], str],
        *,
        polling: bool,
    ) -> None:
        self._show, self._redraw, self._log_of = show, redraw, log_of
        self._polling = polling
        self._next = 0.0

    @property
    def polling(self) -> bool:
        """Whether ``poll`` reads anything (on a terminal only)."""
        return self._polling

    def listen(self) -> None:
        set_local_sink(self._here)

    def stop(self) -> None:
        set_local_sink(None)

    def _here(self, i: int, snapshot: dict[str, Any]) -> None:
        self._show(i, snapshot)
        self._redraw()

    def poll(self, running: Iterable[int]) -> None:
        """Show what the tasks ``running`` last wrote to their progress files."""
        if not self._polling:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + _INTERVAL
        for i in running:
            snap = read(self._log_of(i) + SUFFIX)
            if snap is not None:
                self._show(i, snap)
