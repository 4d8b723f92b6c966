"""``ThreadExecutor``: tasks in threads of the driver's own process.

For I/O-bound tasks and code that releases the GIL (NumPy, compression, network calls; all
of Python on a free-threaded build). Return values stay objects: nothing is pickled.

What threads share, and what that means:

* ``sys.stdout`` / ``sys.stderr`` are the process's: while tasks run they are replaced by
  a router that sends what each thread prints to its own task's log files (and what the
  driver prints to where it went before). Output written below Python (C code writing to
  file descriptor 1, a subprocess inheriting it) cannot be told apart by thread: it goes
  to the terminal, not to the task's log; so does what threads a task starts print.
* The working directory and ``os.environ`` are the process's too, so the isolation the
  process executors give (each task's changes undone before the next) cannot hold. A task
  that changes the working directory fails (the change is undone), since every relative
  path of the tasks running beside it would silently move; a task that changes the
  environment is named in a warning, and the change stays.
* Ctrl-C stops running tasks by raising ``KeyboardInterrupt`` in their threads, which
  Python delivers only between bytecodes: a task blocked in C code stops once it returns.
  Processes a task starts are the driver's children, as with ``SequentialExecutor``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from .base import Executor, Job, Outcome, RunContext, run_steps
from .local import default_workers
from .routing import ThreadCapture, forget_task, route, unroute


class ThreadExecutor(Executor):
    """Runs ready tasks at the same time in threads of the driver's process (see the
    module's notes on output, the working directory and the environment).

    ``max_workers``: threads at once (default: the CPUs this process may use); ``--jobs``
    overrides it for a run."""

    takes_jobs = True

    def __init__(
        self,
        max_workers: int | None = None,
        max_jobs_pending: int | None = None,
        max_jobs_queued: int | None = None,
    ) -> None:
        super().__init__(max_jobs_pending=max_jobs_pending, max_jobs_queued=max_jobs_queued)
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(
                f"ThreadExecutor(max_workers={max_workers!r}): use a whole number >= 1"
            )
        self.max_workers = max_workers or default_workers()
        self._limit = self.max_workers

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._limit = context.jobs or self.max_workers
        self._tasks = tasks
        self._events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._open: dict[int, list[int]] = {}  # job -> its tasks not reported yet
        self._threads: dict[int, threading.Thread] = {}
        self._cwd = _cwd()
        self._env = dict(os.environ)
        self._saved = route()

    def free_slots(self) -> int:
        busy = len(self._open)
        return self.limit_slots(self._limit - busy, busy)

    def submit(self, job: Job) -> None:
        self._open[job.index] = job.indices
        t = threading.Thread(
            target=self._run, args=(job,), name="depio_like-task", daemon=True
        )  # one stuck in C code must not keep the process
        self._threads[job.index] = t
        t.start()

    def _run(self, job: Job) -> None:
        from .. import progress

        put = self._events.put
        progress.set_thread_sink(lambda key, snap: put(("progress", key, snap)))
        try:
            # Values stay objects: producer and consumer share this process.
            for o in run_steps(
                job,
                lambda step, value: value,
                ThreadCapture(),
                hash_products=True,
                own_interrupts=True,
                isolate=False,
            ):
                put(("outcome", job.index, o))
        except BaseException as e:  # noqa: BLE001 - reported, never raised in a thread
            from .base import format_task_exception

            put(("outcome", job.index, Outcome(job.index, False, error=format_task_exception(e))))
        finally:
            forget_task()
            progress.set_thread_sink(None)
            put(("over", job.index))

    def wait(self, timeout: float | None) -> list[Outcome]:
        from .. import progress

        if not self._open:
            return []
        outcomes: list[Outcome] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while not outcomes:
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            try:
                event = self._events.get(timeout=max(0.0, left))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                continue
            while True:
                self._handle(event, outcomes, progress)
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
        return outcomes

    def _handle(self, event: tuple[Any, ...], outcomes: list[Outcome], progress: Any) -> None:
        kind = event[0]
        if kind == "progress":
            progress.deliver(event[1], event[2])
        elif kind == "over":
            pending = self._open.pop(event[1], None)
            self._threads.pop(event[1], None)
            if pending:  # the thread ended without a word on these (a bug): say so
                outcomes.extend(
                    Outcome(i, False, error="its thread ended without reporting it")
                    for i in pending[:1]
                )
        else:
            job, o = event[1], event[2]
            pending = self._open.get(job)
            if pending is None or o.index not in pending:
                return
            pending.remove(o.index)
            outcomes.append(self._surroundings(o))

    def _surroundings(self, o: Outcome) -> Outcome:
        """The working directory and environment are everyone's: a task that moved the
        first fails (moved back), one that changed the second is named."""
        label = self._tasks[o.index].label
        now = _cwd()
        if now != self._cwd and self._cwd is not None:
            try:
                os.chdir(self._cwd)
            except OSError:
                pass
            if o.ok:
                o = Outcome(
                    o.index,
                    False,
                    duration=o.duration,
                    printed=o.printed,
                    error=(
                        f"task {label} changed the working directory (to {now}); under "
                        "ThreadExecutor every task shares the driver's, so the paths of the "
                        f"tasks running beside it moved too. It was set back to {self._cwd}; "
                        "use ParallelExecutor for tasks that change directory"
                    ),
                )
        env = dict(os.environ)
        if env != self._env:
            changed = sorted(k for k in set(env) | set(self._env) if env.get(k) != self._env.get(k))
            self._env = env
            import warnings

            warnings.warn(
                f"task {label} (or one running beside it) changed os.environ "
                f"({', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}): "
                "under ThreadExecutor every task shares the driver's environment, "
                "so the change stays and the tasks running at the same time see it",
                RuntimeWarning,
                stacklevel=1,
            )
        return o

    def cancel(self) -> list[int]:
        """Raise KeyboardInterrupt in every running task's thread; wait a little for them."""
        from .. import interrupts

        for t in self._threads.values():
            if t.is_alive() and t.ident is not None:
                _interrupt(t.ident)
        deadline = time.monotonic() + 5
        for t in list(self._threads.values()):
            while t.is_alive() and time.monotonic() < deadline and not interrupts.again():
                t.join(0.1)
        cancelled = [i for pending in self._open.values() for i in pending]
        self._open.clear()
        self._threads.clear()
        return cancelled

    def shutdown(self) -> None:
        unroute(getattr(self, "_saved", None))
        self._saved = None


def _interrupt(ident: int) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
    )


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None
