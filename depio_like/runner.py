"""One run: the I/O around the build plan.

The plan (``plan.py``) decides; the run does what its actions ask: read a unit's inputs
and decide it (``Check``), hand a job to the executor (``Dispatch``), pass a new status on
(``Changed``, to ``notify.StatusNews``), and write the record of each task that succeeded.
A dry run is the same loop with an executor that succeeds at once and writes nothing.
What the run leans on owns the rest: value lifetimes (``channel.ValueStore``), who hears
of a status (``notify.StatusNews``: the table, the values, the hooks), progress from
running tasks (``progress.Watch``), task logs (``logs.TaskLogs``), what a job carries
(``jobs.JobMaker``), when records and the last-run summary are written
(``record.Recorder``) and their form (``state``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, overload

from .channel import ValueStore
from .display import Display
from .executors.base import Executor, Outcome, RunContext, Started
from .fingerprint import FileHasher
from .fs import Disk
from .graph import TaskGraph
from .jobs import JobMaker
from .logs import TaskLogs
from .notify import StatusNews
from .options import PipelineSettings, RunOptions
from .plan import Action, BuildPlan, Changed, Check, Checks, Dispatch, Retry, Statuses
from .progress import Watch
from .record import Recorder
from .scheduler import longest_paths
from .staleness import Checker
from .state import State, last_durations, recorded_durations
from .status import Status, not_ok

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class _Retries(Sequence[int]):
    """How many times each task runs again after a failure (its own ``retries``, else its
    executor's), worked out when one fails, not for every task before the run."""

    def __init__(self, tasks: Sequence[Any], default: int) -> None:
        self._tasks, self._default = tasks, default

    def __len__(self) -> int:
        return len(self._tasks)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        r = self._tasks[i].retries
        return self._default if r is None else r


class Run:
    """Drives one run of a validated graph to the end; ``execute()`` returns the exit code."""

    def __init__(
        self,
        graph: TaskGraph,
        executor: Executor,
        state: State,
        display: Display,
        disk: Disk,
        options: RunOptions = RunOptions(),
        settings: PipelineSettings = PipelineSettings(),
    ) -> None:
        from .executors.dry import DryRunExecutor

        self.graph, self.state, self.display, self.disk = graph, state, display, disk
        self.dry = options.dry_run
        self.executor = DryRunExecutor() if self.dry else executor
        self.options, self.settings = options, settings
        tasks = graph.tasks
        hasher = FileHasher(
            disk,
            state.files,
            stats=graph.stats,
            skip=(state.dir,),
            spill=None if self.dry else state.put_files,
        )
        self.checker = Checker(
            graph,
            state.records,
            hasher,
            disk,
            force=options.force,
            default_mode=settings.default_mode,
        )
        self.recorder = Recorder(graph, self.checker, state, self.dry)
        self.logs = TaskLogs(os.path.join(state.dir, "logs"), tasks)
        # A dry run writes no value file (and leaves those of others alone).
        self.values = ValueStore.between_jobs(
            graph.values,
            graph.unit_of,
            graph.units,
            None if self.dry else os.path.join(state.dir, "values"),
        )
        keys = [t.record_key for t in tasks]

        def priority() -> list[float]:  # made when a task is first queued: a no-op needs none
            durations = recorded_durations(keys, state.records)
            return longest_paths(graph.order, graph.downstream, durations)

        self.plan = BuildPlan(
            graph,
            priority=priority if settings.critical_path else None,
            queues=self.executor.queues,
            dry=self.dry,
            retries=_Retries(tasks, executor.retries),
            has_value=self.values.has,
            all_done=[t.run_if == "all_done" for t in tasks],
            # Without hooks, what is only counted comes in bulk (Statuses, Checks).
            batch=self.dry or not (settings.on_task_finished or settings.on_pipeline_finished),
        )
        self.status = self.plan.status  # per task; the table reads it
        expected = last_durations(keys, state.records) if executor.uses_durations else None
        self.jobs = JobMaker(
            graph,
            self.checker,
            self.values,
            self.logs,
            expected,
            self.executor.reattaches,
            self.executor.names_logs_late,
        )
        self.news = StatusNews(
            tasks, self.status, display, self.values, self.logs, disk, settings, self.dry
        )
        self.watch = Watch(
            display.progress,
            display.tick,
            self.logs.base,
            polling=display.tty and not display.quiet and not self.dry,
        )

    def execute(self) -> int:
        tasks = self.graph.tasks
        self.executor.prepare(tasks)  # refuses what it cannot take, before anything shows
        for i in self.graph.order:  # the graph's own ints: none made per task
            tasks[i]._attach(self.status, i)
        self.display.preview = self.dry
        self.display.start(
            tasks, self.status, self.graph.upstream, self.executor.columns, self.executor.cells
        )
        if not self.dry:
            self.logs.open()
        self.values.open_area(keep_earlier=self.executor.reattaches)
        self.executor.start(
            tasks, RunContext(self.state.dir, jobs=self.options.jobs, value_dir=self.values.area)
        )
        interrupted = False
        self.watch.listen()
        try:
            self._apply(self.plan.start())
            self._loop()
        except KeyboardInterrupt:
            interrupted = True
            cancelled = self.executor.cancel()
            for i in cancelled:
                self.news.discard(i)
            self._apply(self.plan.cancel())
            self.display.note(
                f"Interrupted: stopped {len(cancelled)} running task(s); nothing more was started."
            )
        finally:
            self.watch.stop()
            self.executor.shutdown()
            self.values.close(keep_area=self.executor.outlived())
            self.recorder.save(force=True)
        self.display.finish(interrupted)
        code = (
            EXIT_INTERRUPTED
            if interrupted
            else EXIT_OK
            if self.dry or not not_ok(self.status)
            else EXIT_FAILED
        )
        code = self.recorder.finish(code, self.status, self.display, self.logs.base)
        self.news.hooks.finished(self.settings.name, code)
        self.display.close()
        return code

    def _loop(self) -> None:
        plan, ex, recorder, display = self.plan, self.executor, self.recorder, self.display
        blocks = ex.blocks_in_wait
        polling = self.watch.polling
        # Without a live table, tick() does nothing and deadline() is None: not asked.
        live = display.tty and not display.quiet
        while not plan.done:
            free = ex.free_slots()
            if free > 0:
                actions = plan.dispatch(free)
                if len(actions) == 1 and type(actions[0]) is Dispatch:  # one task runs (the usual)
                    self._dispatch(actions)  # type: ignore[arg-type]
                else:
                    self._apply(actions)
                if plan.done:
                    break
            if polling:
                self.watch.poll(i for i in plan.in_flight if self.status[i] is Status.RUNNING)
            if live:
                display.tick()
            if blocks:
                # The wait runs a task in this process, maybe for hours: what is held back
                # is written now, or a kill would lose it (what before_wait does then).
                recorder.save(force=True)
                deadline = display.deadline() if live else None
            else:
                recorder.save()
                deadline = recorder.before_wait(display.deadline() if live else None, False)
            events: Sequence[Outcome | Started] = ex.wait(deadline)
            if not events and deadline is None and plan.any_in_flight:
                # wait() without a timeout returns only with news or with nothing left to
                # run: tasks it never reported would keep this loop spinning.
                events = [
                    Outcome(
                        i, False, error=f"the executor {type(ex).__name__} lost track of this task"
                    )
                    for i in sorted(plan.in_flight)
                ]
            for e in events:
                if isinstance(e, Started):
                    self._apply(plan.started(e.index))
                else:
                    self._ended(e)

    def _apply(self, actions: Iterable[Action]) -> None:
        """Do what the plan asks, and what that brings, in order (no recursion: a skipped
        chain of 10,000 tasks is 10,000 rounds here)."""
        todo = actions if type(actions) is list else list(actions)
        dispatched: list[Dispatch] = []
        changed = self.news.changed
        # In waves: what a wave's checks bring comes after the whole wave (the order a queue
        # would give), and a wave is let go once done (a wave of 100,000 skipped tasks).
        while todo:
            more: list[Action] = []
            for a in todo:
                # The usual ones first (two status changes and a job per task); type() is
                # cheaper than isinstance() and these classes have no subclasses.
                if type(a) is Changed:
                    changed(a)
                elif type(a) is Dispatch:
                    dispatched.append(a)
                elif type(a) is Check:
                    more += self.plan.decided(a.unit, [self.checker.check(m) for m in a.unit])
                elif type(a) is Checks:
                    more += self.plan.decided_all(a.units, self.checker.check_all(a.units))
                elif type(a) is Statuses:
                    self.news.statuses(a)
                elif type(a) is Retry:
                    self.display.retry(a.index, a.attempt, a.attempts, a.error)
            todo = more
        if dispatched:
            self._dispatch(dispatched)

    def _dispatch(self, batch: list[Dispatch]) -> None:
        self.recorder.starting([batch[0].unit] if len(batch) == 1 else [a.unit for a in batch])
        for a in batch:
            if a.running:  # its Changed(RUNNING), which only the table hears of
                self.news.running(a.unit[0])
            if self.options.explain and a.attempt == 1:
                for m, d in zip(a.unit, a.decisions, strict=True):
                    self.display.explain(m, "WOULD-RUN" if self.dry else "RUN", str(d))
            self.executor.submit(self.jobs.job(a.unit, a.decisions, a.values_from))

    def _ended(self, o: Outcome) -> None:
        """An executor's report: check and record it, tell the plan, show the output."""
        i, plan = o.index, self.plan
        if not plan.is_in_flight(i):
            self.values.refuse(o.value)
            return  # an ended task's second report
        self.news.ran.add(i)
        if o.printed:
            self.logs.wrote(i)
        value = o.value  # a success that fails its checks hands on nothing
        o, stats = self.recorder.checked(o)
        if o.ok:
            d = plan.decision(i)
            assert d is not None
            head = plan.unit(i)[0] == i
            self.recorder.record(o, d, head, stats, plan.failed_upstream(i))
            self.values.put(i, value)  # kept only if a task may still take it
            actions = plan.ended(i, True, duration=o.duration)
        else:
            self.values.refuse(value)
            actions = plan.ended(
                i,
                False,
                duration=o.duration,
                error=(o.error or "failed") + (self.logs.where(i) if o.printed else ""),
            )
        if len(actions) == 1 and type(actions[0]) is Changed:  # the usual: nothing follows
            self.news.changed(actions[0])
        else:
            self._apply(actions)
        if o.printed and self.settings.show_output:
            self.display.output(i, self.logs.tail(i))
