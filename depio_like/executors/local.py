"""Executors on this machine: one at a time in this process, or in forked worker processes."""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Sequence

from .base import (Capture, Executor, Job, Outcome, RunContext, Step, export_to_file,
                   run_steps)

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection


class SequentialExecutor(Executor):
    """Runs tasks one at a time in the calling process, so a debugger and ``print`` just work."""

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._queue: deque[Job] = deque()
        self._capture: Capture | None = None
        self._ended: set[int] = set()  # tasks of the current job that already ended

    def free_slots(self) -> int:
        return 0 if self._queue else 1

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not self._queue:
            return []
        job = self._queue[0]
        if self._capture is None:
            self._capture = Capture(for_good=False)
        outcomes = []
        # Values stay objects: producer and consumer share this process.
        for o in run_steps(job, lambda step, value: value, self._capture):
            outcomes.append(o)
            self._ended.add(o.index)  # a Ctrl-C in a later step must not count it cancelled
        self._queue.popleft()
        self._ended.clear()
        return outcomes

    def cancel(self) -> list[int]:
        cancelled = [i for j in self._queue for i in j.indices if i not in self._ended]
        self._queue.clear()
        self._ended.clear()
        return cancelled

    def shutdown(self) -> None:
        if self._capture is not None:
            self._capture.close()
            self._capture = None


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Worker:
    def __init__(self, process: Any, conn: "Connection") -> None:
        self.process = process
        self.conn = conn
        self.job: list[int] | None = None  # task indices of the job it runs, not yet reported
        self.started = 0.0


class ParallelExecutor(Executor):
    """Runs ready tasks at the same time in worker processes (real parallelism for
    CPU-bound Python code).

    Workers are forked from the driver once the pipeline is declared, so they already hold
    every task: a job is sent as its index, and functions and arguments are never pickled
    (lambdas, local functions and unpicklable arguments work). Needs the ``fork`` start
    method (Linux, macOS). A worker that dies (``os._exit``, a crash, the OOM killer) fails
    only its own task and is replaced.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ParallelExecutor(max_workers={max_workers}): need at least 1")
        self.max_workers = max_workers or default_workers()
        self._workers: list[_Worker] = []
        self._tasks: Sequence[Any] = ()
        self._limit = self.max_workers

    takes_jobs = True

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._limit = context.jobs or self.max_workers
        self._ctx: Any = None  # made on the first submit: a run where nothing runs needs none
        self._tasks = tasks
        self._value_dir = os.path.join(context.state_dir, "values")
        self._workers = []
        # One selector for the whole run: building one per wait costs more than the job.
        self._selector = selectors.DefaultSelector()

    def free_slots(self) -> int:
        return self._limit - sum(1 for w in self._workers if w.job is not None)

    def submit(self, job: Job) -> None:
        worker = next((w for w in self._workers if w.job is None), None)
        if worker is None:
            worker = self._spawn()
        worker.job = job.indices
        worker.started = time.perf_counter()
        # Workers hold every task already (forked after declaration): send indices only.
        worker.conn.send(([(st.index, st.fingerprint, st.export_to, st.log, st.old_log)
                           for st in job.steps], job.values))

    def _spawn(self) -> _Worker:
        if self._ctx is None:
            import multiprocessing

            if "fork" not in multiprocessing.get_all_start_methods():
                raise RuntimeError("ParallelExecutor needs the 'fork' start method, which this "
                                   "platform lacks; use SequentialExecutor")
            self._ctx = multiprocessing.get_context("fork")
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main,
                                 args=(child, self._tasks, self._value_dir),
                                 name="depio_like-worker", daemon=True)
        proc.start()
        child.close()
        w = _Worker(proc, parent)
        self._workers.append(w)
        self._selector.register(parent, selectors.EVENT_READ, w)
        self._selector.register(proc.sentinel, selectors.EVENT_READ, w)
        return w

    def _forget(self, w: _Worker) -> None:
        """A worker that is gone (or stopped): unregister it and release its resources."""
        self._workers.remove(w)
        for obj in (w.conn, w.process.sentinel):
            try:
                self._selector.unregister(obj)
            except (KeyError, ValueError):
                pass
        w.conn.close()
        w.process.join(1)
        if not w.process.is_alive():
            w.process.close()

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not any(w.job is not None for w in self._workers):
            return []
        outcomes = []
        seen: set[int] = set()
        for key, _ in self._selector.select(timeout):
            w = key.data
            if id(w) in seen or w not in self._workers:
                continue
            seen.add(id(w))
            # One message per wake-up: if more are waiting, the next select returns at
            # once (Connection.poll builds a selector per call: too dear per task).
            if key.fileobj is w.conn or w.conn.poll(0):
                try:
                    msg = w.conn.recv()
                except (EOFError, OSError):
                    if w.job:
                        outcomes.extend(self._died(w))
                    else:
                        self._forget(w)
                    continue
                index, ok, error, duration, value, printed, products, last = msg
                outcomes.append(Outcome(index, ok, value=value, error=error, duration=duration,
                                        printed=printed, products=products))
                if last:  # the job is over: the worker is free
                    w.job = None
                elif w.job is not None and index in w.job:
                    w.job.remove(index)
            elif w.job is not None:
                outcomes.extend(self._died(w))
            else:  # an idle worker went away: forget it
                self._forget(w)
        return outcomes

    def _died(self, w: _Worker) -> list[Outcome]:
        w.process.join(1)
        if w.process.is_alive():  # its pipe broke but it lingers: make sure it is gone
            w.process.kill()
            w.process.join()
        code = w.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        indices = w.job or []
        self._forget(w)
        # The task that was running dies with it; later tasks of its chain never ran and
        # are failed by the driver as downstream of it.
        return [Outcome(indices[0], False, error=f"the worker process running the task {how} "
                        "(os._exit, a crash, or the out-of-memory killer)",
                        duration=time.perf_counter() - w.started)] if indices else []

    def cancel(self) -> list[int]:
        busy = [w for w in self._workers if w.job is not None]
        for w in busy:
            w.process.terminate()
        for w in busy:
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            self._forget(w)
        return [i for w in busy for i in (w.job or [])]

    def shutdown(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
            w.process.close()
        self._workers = []
        if getattr(self, "_selector", None) is not None:
            self._selector.close()
            self._selector = None


def _worker_main(conn: "Connection", tasks: Sequence[Any], value_dir: str) -> None:
    # Ctrl-C reaches the whole process group; the driver decides what to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .. import progress

    progress.set_local_sink(None)  # inherited from the driver: progress goes to files here
    export = export_to_file(value_dir)
    capture = Capture(for_good=True)  # a worker prints nothing of its own
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if msg is None:
            return
        steps, values = msg
        job = Job([Step(i, tasks[i], fp, to, log, old) for i, fp, to, log, old in steps], values)
        # Products are hashed here, by the worker that wrote them: the driver, which
        # records every task, would otherwise read them all itself.
        n = len(job.steps)
        for k, outcome in enumerate(run_steps(job, export, capture, hash_products=True)):
            last = not outcome.ok or k == n - 1  # a failure ends the job too
            conn.send((outcome.index, outcome.ok, outcome.error, outcome.duration, outcome.value,
                       outcome.printed, outcome.products, last))
