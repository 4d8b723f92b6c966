"""One run: the loop that asks the planner, feeds the executor and records what succeeded."""

from __future__ import annotations

import os
from typing import Any

from .display import Display
from .executors.base import Executor, Job, Outcome, RunContext, Started
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
                 disk: Disk, *, force: bool = False, delete_on_error: bool = False) -> None:
        self.graph = graph
        self.executor = executor
        self.state = state
        self.display = display
        self.disk = disk
        self.delete_on_error = delete_on_error
        self.hasher = FileHasher(disk, state.files)
        self.planner = Planner(graph, state.records, self.hasher, disk, force=force)
        self.sched = Scheduler(graph.upstream, graph.downstream)
        self.decisions: dict[int, Decision] = {}
        self.attempts: dict[int, int] = {}

    def execute(self) -> int:
        tasks = self.graph.tasks
        self.display.start(tasks, self.sched.status, self.graph.upstream,
                           self.executor.columns, self.executor.cells)
        self._sync()
        self.executor.start(tasks, RunContext(state_dir=self.state.dir, cwd=os.getcwd()))
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
            batch = []
            while sched.has_runnable() and ex.free_slots() > len(batch):
                batch.append(sched.pop_runnable())
            if batch:
                # Recorded before the tasks touch their products: if we die while they
                # write, the next run knows those products may be partial.
                for i in batch:
                    self.state.mark_started(self.graph.tasks[i].record_key)
                self._save()
                for i in batch:
                    self._dispatch(i)
            if sched.done:
                break
            self._save()
            self.display.tick()
            for event in ex.wait(self.display.deadline()):
                if isinstance(event, Started):
                    self._changed(event.index, Status.RUNNING)
                else:
                    self._ended(event)

    def _dispatch(self, i: int) -> None:
        self.planner.before_run(i)
        self.attempts[i] = self.attempts.get(i, 0) + 1
        self.sched.started(i)
        queued = self.executor.queues
        self._changed(i, Status.PENDING if queued else Status.RUNNING)
        fingerprint = self.planner.fingerprint(i, self.decisions[i])
        self.executor.submit(Job(i, self.graph.tasks[i], fingerprint))

    def _ended(self, o: Outcome) -> None:
        i = o.index
        t = self.graph.tasks[i]
        if o.ok:
            missing = self.planner.missing_products(i)
            if missing:
                paths = ", ".join(show_path(p) for p in missing)
                o = Outcome(i, False, error=f"task {t.label} returned without creating its "
                            f"declared product(s): {paths}", duration=o.duration)
        if o.ok:
            record = self.planner.new_record(i, self.decisions.pop(i), o.duration)
            self.state.put_record(t.record_key, record)
            self._succeeded(i, Status.FINISHED, o.duration)
            return
        retries = t.retries if t.retries is not None else self.executor.retries
        if self.attempts.get(i, 1) <= retries:
            self.display.note(f"RETRY     {t.label} (attempt {self.attempts[i] + 1} of "
                              f"{retries + 1}) after: {_last_line(o.error)}")
            self.sched.runnable(i)
            self._changed(i, Status.PENDING)
            return
        self.decisions.pop(i, None)
        self._discard_products(i)
        self._changed(i, Status.FAILED, error=o.error)
        for j in self.sched.failed(i):
            self._changed(j, Status.DEPFAILED, cause=i)

    def _discard_products(self, i: int) -> None:
        """With ``delete_on_error``, remove what a failed task may have half written."""
        if not self.delete_on_error:
            return
        for p in self.graph.tasks[i].products:
            st = self.disk.stat(p)
            if st is not None and not st.is_dir:
                self.disk.remove(p)

    def _succeeded(self, i: int, status: Status, duration: float | None = None) -> None:
        self.sched.succeeded(i, status)
        self._changed(i, status, duration=duration)

    def _changed(self, i: int, status: Status, **info: Any) -> None:
        self.graph.tasks[i].status = status
        self.display.changed(i, status, **info)

    def _interrupt(self) -> None:
        cancelled = self.executor.cancel()
        for i in cancelled:
            self._discard_products(i)
        for i in self.sched.cancel_rest():
            self.graph.tasks[i].status = Status.CANCELLED
        self.display.note(f"Interrupted: stopped {len(cancelled)} running task(s); "
                          "nothing more was started.")

    def _save(self) -> None:
        self.state.put_files(self.hasher.fresh)
        self.state.flush()

    def _sync(self) -> None:
        for t, s in zip(self.graph.tasks, self.sched.status):
            t.status = s


def _last_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no error message"
