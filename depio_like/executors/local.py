"""Executors on this machine: one at a time in this process, or in forked worker processes."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..locking import inherited_by_forks
from .base import (
    Capture,
    Executor,
    Job,
    Outcome,
    RunContext,
    Step,
    compact_pickle,
    export_to_file,
    log_path,
    run_step,
    run_steps,
)
from .processes import RunGroup, die_with_parent, join_group, spawning

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection


#: ``ParallelExecutor(start_method=...)``: how worker processes start.
START_METHODS = ("fork", "spawn", "forkserver")


class SequentialExecutor(Executor):
    """Runs tasks one at a time in the calling process, so a debugger and ``print`` just work.

    ``max_jobs_pending`` / ``max_jobs_queued`` (depio's) are accepted; one task at a time
    is below any limit they can set."""

    blocks_in_wait = True
    names_logs_late = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A user's subclass may read ``Step.log`` as the str it always was: late names
        # only where it asks for them.
        if "names_logs_late" not in cls.__dict__:
            cls.names_logs_late = False

    def __init__(
        self, max_jobs_pending: int | None = None, max_jobs_queued: int | None = None
    ) -> None:
        super().__init__(max_jobs_pending=max_jobs_pending, max_jobs_queued=max_jobs_queued)

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._queue: deque[Job] = deque()
        self._capture: Capture | None = None
        self._ended: set[int] = set()  # tasks of the current job that already ended

    def free_slots(self) -> int:
        return 0 if self._queue else 1

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self, timeout: float | None) -> Sequence[Outcome]:
        if not self._queue:
            return ()
        job = self._queue[0]
        if self._capture is None:
            self._capture = Capture(for_good=False)
        if len(job.steps) == 1:  # the usual job: run_steps without its generator
            o = run_step(job.steps[0], job.values, export=_as_is, capture=self._capture)
            self._queue.popleft()
            return (o,)
        outcomes = []
        ended = self._ended
        for o in run_steps(job, _as_is, self._capture):
            outcomes.append(o)
            ended.add(o.index)  # a Ctrl-C in a later step must not count it cancelled
        self._queue.popleft()
        ended.clear()
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


def _as_is(step: Step, value: Any) -> Any:
    """The ``export`` of a job run in the driver: values stay objects (producer and
    consumer share this process)."""
    return value


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@compact_pickle
@dataclass(frozen=True)
class StepOrder:
    """One step of a job as sent to a worker. The task goes by its index: the worker,
    forked once the pipeline was declared, holds every task already."""

    index: int
    fingerprint: str
    export_to: tuple[str, ...]
    log: str
    old_log: bool


@compact_pickle
@dataclass(frozen=True)
class JobOrder:
    """Driver to worker: run these steps in order, with these values from outside the job
    (``None`` instead of an order: exit)."""

    steps: tuple[StepOrder, ...]
    values: dict[int, Any]
    # Spawned workers (start_method "spawn"/"forkserver") hold no task: each comes pickled
    # (cloudpickle, in the driver before the run started), by index.
    tasks: dict[int, bytes] = field(default_factory=dict)


@compact_pickle
@dataclass(frozen=True)
class Report:
    """Worker to driver: a step ended; ``last``: the job is over and the worker is free."""

    outcome: Outcome
    last: bool


@dataclass(frozen=True)
class _ChildSetup:
    """What a freshly forked worker does before anything else."""

    driver: int | None  # the driver's pid (to die with it); None: a forkserver's
    #                                 child, which dies with the server (the server with us)
    pgid: int | None  # the run's process group
    close: tuple[Any, ...]  # the driver's ends of the workers' pipes
    close_fds: tuple[int, ...]  # other descriptors of the driver's (the reaper's pipe)
    start_method: str | None = None  # the driver's default (a spawned child starts with
    #                                  "spawn" as its own: a task's Pool must not see that)


class _Worker:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.job: list[int] | None = None  # task indices of the job it runs, not yet reported
        self.started = 0.0


class ParallelExecutor(Executor):
    """Runs ready tasks at the same time in worker processes (real parallelism for
    CPU-bound Python code).

    Workers are forked from the driver once the pipeline is declared, so they already hold
    every task: a job is sent as its index, and functions and arguments are never pickled
    (lambdas, local functions and unpicklable arguments work).

    ``start_method="spawn"`` or ``"forkserver"`` starts workers as fresh interpreters
    instead (or forked from a fresh server process): safe when the driver holds threads,
    CUDA or other state ``fork`` cannot copy (macOS; Python 3.14 makes ``forkserver`` the
    default on Linux). Tasks then travel pickled with cloudpickle, as to Slurm: a task that
    cannot be pickled (a lambda capturing a lock, an open file) is an error naming it
    before anything runs. The main script is not run again in the workers (no
    ``if __name__ == "__main__"`` guard needed). A worker that dies (``os._exit``, a
    crash, the OOM killer) fails only its own task and is replaced. Workers are not
    daemonic, so a task may start processes of its own (``multiprocessing.Pool``,
    ``ProcessPoolExecutor``); no process of the run outlives the driver, however it ends
    (see ``processes``).

    depio's arguments: ``max_jobs_queued=N`` runs at most N tasks at once (like
    ``max_workers``); ``max_jobs_pending`` is accepted and has nothing to limit (a task is
    handed to a worker only when one is free); ``internal_executor=`` (a
    ``concurrent.futures`` pool, also as the first positional argument) gives its
    ``max_workers``: tasks still run in this executor's worker processes.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        max_jobs_pending: int | None = None,
        max_jobs_queued: int | None = None,
        *,
        internal_executor: Any = None,
        start_method: str = "fork",
    ) -> None:
        super().__init__(max_jobs_pending=max_jobs_pending, max_jobs_queued=max_jobs_queued)
        if start_method not in START_METHODS:
            raise ValueError(
                f"ParallelExecutor(start_method={start_method!r}): use one of "
                f"{', '.join(map(repr, START_METHODS))}"
            )
        self.start_method = start_method
        self._blobs: list[bytes] = []
        if max_workers is not None and not isinstance(max_workers, int):
            if internal_executor is not None or not hasattr(max_workers, "submit"):
                raise TypeError(f"ParallelExecutor(max_workers={max_workers!r}): use a number")
            internal_executor, max_workers = max_workers, None  # depio's first argument
        if internal_executor is not None:
            size = getattr(internal_executor, "_max_workers", None)
            if not isinstance(size, int):
                raise TypeError(
                    f"ParallelExecutor(internal_executor={internal_executor!r}): tasks run in "
                    "this executor's own worker processes, and the number of workers cannot "
                    "be read from it; write ParallelExecutor(max_workers=N)"
                )
            if max_workers is None:
                max_workers = size
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"ParallelExecutor(max_workers={max_workers}): need at least 1")
        self.max_workers = max_workers or default_workers()
        self._workers: list[_Worker] = []
        self._tasks: Sequence[Any] = ()
        self._group: RunGroup | None = None
        self._limit = self.max_workers

    takes_jobs = True

    def prepare(self, tasks: Sequence[Any]) -> None:
        """Spawned workers get their tasks pickled: pickle them all now, before anything
        runs, so that one that cannot be is refused naming it (and the argument)."""
        if self.start_method == "fork":
            self._blobs = []
        else:  # pickle and cloudpickle: imported only for the start methods that need them
            from .slurm_job import pickled_tasks

            self._blobs = pickled_tasks(tasks)

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._limit = context.jobs or self.max_workers
        self._ctx: Any = None  # made on the first submit: a run where nothing runs needs none
        self._tasks = tasks
        self._value_dir = context.values
        self._workers = []
        self._group = None
        # One selector for the whole run: building one per wait costs more than the job.
        import selectors  # only a run that uses this executor pays the import

        self._selector = selectors.DefaultSelector()
        self._readable = selectors.EVENT_READ

    def free_slots(self) -> int:
        busy = sum(1 for w in self._workers if w.job is not None)
        return self.limit_slots(self._limit - busy, busy)

    def submit(self, job: Job) -> None:
        worker = next((w for w in self._workers if w.job is None), None)
        if worker is None:
            worker = self._spawn()
        worker.job = job.indices
        worker.started = time.perf_counter()
        worker.conn.send(
            JobOrder(
                tuple(
                    StepOrder(st.index, st.fingerprint, st.export_to, log_path(st.log), st.old_log)
                    for st in job.steps
                ),
                job.values,
                {st.index: self._blobs[st.index] for st in job.steps} if self._blobs else {},
            )
        )

    def _spawn(self) -> _Worker:
        forked = self.start_method == "fork"
        if self._ctx is None:
            import multiprocessing

            if self.start_method not in multiprocessing.get_all_start_methods():
                raise RuntimeError(
                    f"ParallelExecutor needs the {self.start_method!r} start "
                    "method, which this platform lacks; use another "
                    "start_method, or SequentialExecutor"
                )
            self._ctx = multiprocessing.get_context(self.start_method)
        if self._group is None:
            # Spawned workers: the reaper is spawned too (no fork of a driver with threads).
            self._group = RunGroup(spawned=not forked)
            self._group.start()
        parent, child = self._ctx.Pipe()
        if forked:  # what the fork copies of the driver's, the worker closes
            setup = _ChildSetup(
                os.getpid(),
                self._group.pgid,
                tuple(w.conn for w in self._workers) + (parent,),
                self._group.driver_fds(),
            )
        else:  # a fresh process inherits nothing but its own pipe
            import multiprocessing

            setup = _ChildSetup(
                os.getpid() if self.start_method == "spawn" else None,
                self._group.pgid,
                (),
                (),
                multiprocessing.get_start_method(allow_none=True),
            )
        # Not daemonic: a daemonic process may not start processes, and tasks do.
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self._tasks if forked else None, self._value_dir, setup),
            name="depio_like-worker",
            daemon=False,
        )
        if forked:
            with inherited_by_forks():  # a worker keeps the state lock while it lives
                proc.start()
        else:
            with spawning():
                proc.start()
        self._group.adopt(proc.pid)
        child.close()
        w = _Worker(proc, parent)
        self._workers.append(w)
        self._selector.register(parent, self._readable, w)
        self._selector.register(proc.sentinel, self._readable, w)
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
                    report: Report = w.conn.recv()
                except (EOFError, OSError):
                    if w.job:
                        outcomes.extend(self._died(w))
                    else:
                        self._forget(w)
                    continue
                outcomes.append(report.outcome)
                index = report.outcome.index
                if report.last:  # the job is over: the worker is free
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
        return (
            [
                Outcome(
                    indices[0],
                    False,
                    error=f"the worker process running the task {how} "
                    "(os._exit, a crash, or the out-of-memory killer)",
                    duration=time.perf_counter() - w.started,
                )
            ]
            if indices
            else []
        )

    def cancel(self) -> list[int]:
        busy = [w for w in self._workers if w.job is not None]
        if self._group is not None and self._group.pgid is not None:
            # The whole group: the tasks' own processes are stopped too, not orphaned.
            self._group.signal(signal.SIGTERM)
        else:
            for w in busy:
                w.process.terminate()
        deadline = time.monotonic() + 5
        for w in busy:
            _join(w.process, deadline)
            self._forget(w)
        return [i for w in busy for i in (w.job or [])]

    def shutdown(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            _join(w.process, deadline)
            w.conn.close()
            w.process.close()
        self._workers = []
        if self._group is not None:  # whatever the tasks left running goes now
            self._group.close()
            self._group = None
        if getattr(self, "_selector", None) is not None:
            self._selector.close()
            self._selector = None  # type: ignore[assignment]  # closed: never used again


def _join(process: Any, deadline: float) -> None:
    """Wait for ``process`` to exit until ``deadline`` (or a second Ctrl-C), then kill it."""
    from .. import interrupts

    while process.is_alive() and time.monotonic() < deadline and not interrupts.again():
        process.join(0.1)
    if process.is_alive():
        process.kill()
        process.join()


def _adopt_main(func: Any) -> None:
    """A function of the driver's script arrives by value, with the globals it uses; put
    them in this process's ``__main__`` too, where pickle looks for them by name (a task's
    ``multiprocessing.Pool`` sending a function of the script to its own workers)."""
    import sys

    main = sys.modules.get("__main__")
    g = getattr(func, "__globals__", None)
    if main is None or g is None or g is vars(main) or g.get("__name__") != "__main__":
        return
    space = vars(main)
    for k, v in g.items():
        if not k.startswith("__"):
            space.setdefault(k, v)


def _worker_main(
    conn: Connection, tasks: Sequence[Any] | None, value_dir: str, setup: _ChildSetup
) -> None:
    die_with_parent(setup.driver)
    join_group(setup.pgid)
    # The driver's ends of every pipe stay with the driver alone: when it dies, each
    # worker (and the reaper) reads end-of-file.
    for c in setup.close:
        c.close()
    for fd in setup.close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    # The driver decides what to stop; a KeyboardInterrupt here is a task's own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if tasks is None:
        # A task's multiprocessing.Pool starts processes as it would in the driver (a
        # spawned process has "spawn" for its default, and a Pool of it would need the
        # script's functions importable by name).
        import multiprocessing

        multiprocessing.set_start_method(setup.start_method, force=True)
    from .. import progress

    progress.set_local_sink(None)  # inherited from the driver: progress goes to files here
    export = export_to_file(value_dir)
    capture = Capture(for_good=True)  # a worker prints nothing of its own
    while True:
        try:
            order: JobOrder | None = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            break
        if order is None:
            break
        if tasks is None:  # spawned: the tasks come pickled with the order
            import cloudpickle

            got: Any = {i: cloudpickle.loads(b) for i, b in order.tasks.items()}
            for remote in got.values():
                _adopt_main(remote.func)
        else:
            got = tasks
        job = Job(
            [
                Step(s.index, got[s.index], s.fingerprint, s.export_to, s.log, s.old_log)
                for s in order.steps
            ],
            order.values,
        )
        # Products are hashed here, by the worker that wrote them: the driver, which
        # records every task, would otherwise read them all itself.
        n = len(job.steps)
        for k, outcome in enumerate(
            run_steps(job, export, capture, hash_products=True, own_interrupts=True)
        ):
            conn.send(Report(outcome, last=not outcome.ok or k == n - 1))  # a failure ends the job
    # Exit now: multiprocessing's exit would join processes and threads a task left
    # running, keeping this worker, and the driver's shutdown, waiting; the run group's
    # reaper stops them instead.
    os._exit(0)
