"""One run: the loop that asks the planner, feeds the executor and records what succeeded."""

from __future__ import annotations

from typing import Any

from .display import Display
from .executors.base import Executor, Job, Outcome
from .fingerprint import FileHasher
from .fs import Disk
from .graph import TaskGraph
from .paths import show_path
from .plan import Decision, Planner
from .scheduler import Scheduler
from .state import State
from .status import Status

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class Run:
    """Drives one run of a validated graph to the end; ``execute()`` returns the exit code."""

    def __init__(self, graph: TaskGraph, executor: Executor, state: State, display: Display,
                 disk: Disk, *, force: bool = False) -> None:
        self.graph = graph
        self.executor = executor
        self.state = state
        self.display = display
        self.hasher = FileHasher(disk, state.files)
        self.planner = Planner(graph, state.records, self.hasher, disk, force=force)
        self.sched = Scheduler(graph.upstream, graph.downstream)
        self.decisions: dict[int, Decision] = {}

    def execute(self) -> int:
        tasks = self.graph.tasks
        self.display.start(tasks, self.sched.status, self.graph.upstream,
                           self.executor.columns, self.executor.cells)
        self._sync()
        self.executor.start(tasks)
        interrupted = False
        try:
            self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self._interrupt()
        finally:
            self.executor.shutdown()
            self._save()
            self._sync()
        self.display.finish(interrupted)
        if interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if all(s.ok for s in self.sched.status) else EXIT_FAILED

    def _loop(self) -> None:
        sched, ex = self.sched, self.executor
        while not sched.done:
            while (i := sched.pop_ready()) is not None:
                decision = self.planner.check(i)
                if decision.run:
                    self.decisions[i] = decision
                    sched.runnable(i)
                else:
                    self._succeeded(i, Status.SKIPPED)
            while sched.has_runnable() and ex.free_slots() > 0:
                i = sched.pop_runnable()
                self.planner.before_run(i)
                sched.started(i)
                self._changed(i, Status.RUNNING)
                ex.submit(Job(i, self.graph.tasks[i]))
            if sched.done:
                break
            self._save()
            self.display.tick()
            for outcome in ex.wait(self.display.deadline()):
                self._ended(outcome)

    def _ended(self, o: Outcome) -> None:
        i = o.index
        if o.ok:
            missing = self.planner.missing_products(i)
            if missing:
                paths = ", ".join(show_path(p) for p in missing)
                o = Outcome(i, False, error=f"task {self.graph.tasks[i].label} returned without "
                            f"creating its declared product(s): {paths}", duration=o.duration)
        if o.ok:
            record = self.planner.new_record(i, self.decisions.pop(i), o.duration)
            self.state.put_record(self.graph.tasks[i].record_key, record)
            self._succeeded(i, Status.FINISHED, o.duration)
        else:
            self.decisions.pop(i, None)
            self._changed(i, Status.FAILED, error=o.error)
            for j in self.sched.failed(i):
                self._changed(j, Status.DEPFAILED, cause=i)

    def _succeeded(self, i: int, status: Status, duration: float | None = None) -> None:
        self.sched.succeeded(i, status)
        self._changed(i, status, duration=duration)

    def _changed(self, i: int, status: Status, **info: Any) -> None:
        self.graph.tasks[i].status = status
        self.display.changed(i, status, **info)

    def _interrupt(self) -> None:
        cancelled = set(self.executor.cancel())
        for i in self.sched.cancel_rest():
            self.graph.tasks[i].status = Status.CANCELLED
        n = len(cancelled)
        self.display.note(f"Interrupted: stopped {n} running task(s); nothing more was started.")

    def _save(self) -> None:
        self.state.put_files(self.hasher.fresh)
        self.state.flush()

    def _sync(self) -> None:
        for t, s in zip(self.graph.tasks, self.sched.status):
            t.status = s
