"""One run: the loop that asks the planner, feeds the executor and records what succeeded.

Tasks are dispatched by *units*: a chain of tasks joined by return values runs as one job
(see ``graph._units``); most units are a single task. A unit runs when any of its tasks is
out of date (the values passed along the chain are not kept between runs).
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from . import progress
from .channel import ValueFile
from .display import Display
from .executors.base import Executor, Job, Outcome, RunContext, Started, Step
from .fingerprint import FileHasher
from .fs import Disk
from .graph import TaskGraph
from .hooks import PipelineResult, TaskResult, call_all
from .modes import BuildMode
from .paths import show_path
from .logs import SHOWN_LINES, read_all, read_tail, task_log
from .plan import Decision, Planner, Reason, Why, predict
from .scheduler import Scheduler, longest_paths
from .state import State
from .status import Status

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class Run:
    """Drives one run of a validated graph to the end; ``execute()`` returns the exit code."""

    def __init__(self, graph: TaskGraph, executor: Executor, state: State, display: Display,
                 disk: Disk, *, force: bool = False, delete_on_error: bool = False,
                 show_output: bool = True, explain: bool = False,
                 default_mode: BuildMode = BuildMode.IF_NEW, name: str = "default",
                 on_task_finished: Sequence[Any] = (),
                 on_pipeline_finished: Sequence[Any] = (), critical_path: bool = True) -> None:
        self.graph = graph
        self.executor = executor
        self.state = state
        self.display = display
        self.disk = disk
        self.delete_on_error = delete_on_error
        self.show_output = show_output
        self.explain = explain
        self.log_dir = os.path.join(state.dir, "logs")
        self._logs: list[str | None] = [None] * len(graph.tasks)
        self._old_logs: set[str] = set()  # basenames of log files that may exist
        self.running: set[int] = set()    # tasks RUNNING now (progress is read for them)
        self.in_flight: set[int] = set()  # tasks handed to the executor, not ended yet
        self.hasher = FileHasher(disk, state.files)
        self.planner = Planner(graph, state.records, self.hasher, disk, force=force,
                               default_mode=default_mode)
        self.name = name
        self.task_hooks = list(on_task_finished)
        self.pipeline_hooks = list(on_pipeline_finished)
        self.results: dict[int, TaskResult] = {}
        self.durations: dict[int, float] = {}
        self.errors: dict[int, str] = {}
        self._next_progress = 0.0
        upstream, downstream = graph.schedule_edges()
        priority = longest_paths(graph.order, graph.downstream,
                                 recorded_durations(graph, state.records)) \
            if critical_path else None
        self.sched = Scheduler(upstream, downstream, priority)
        self.status = self.sched.status  # per task; the table reads it
        self.decisions: dict[int, Decision] = {}
        self.attempts: dict[int, int] = {}
        # Return values handed between units: producer index -> object or ValueFile,
        # kept until every consumer outside its unit has ended.
        self.values: dict[int, Any] = {}
        consumers = graph.value_consumers()
        self.outside: dict[int, set[int]] = {
            p: {c for c in cs if graph.unit_of[c] != graph.unit_of[p]} for p, cs in consumers.items()}
        self.waiting_values: dict[int, set[int]] = {p: set(cs) for p, cs in self.outside.items() if cs}

    def preview(self) -> int:
        """A dry run: the table says what would run (and, with ``explain``, why); nothing
        runs and nothing is written."""
        self.display.preview = True
        self.display.start(self.graph.tasks, self.status, self.graph.upstream,
                           self.executor.columns, lambda i: ("",) * len(self.executor.columns))
        for i, d in enumerate(predict(self.graph, self.planner)):
            self.status[i] = Status.FAILED if d.fail else Status.WOULD_RUN if d.run else Status.SKIPPED
            if d.fail:
                self.display.explain(i, "WOULD-FAIL", d.fail)
            elif d.run and self.explain:
                self.display.explain(i, "WOULD-RUN", str(d))
        self._sync()
        self.display.finish()
        self.display.close()
        return EXIT_OK

    def execute(self) -> int:
        tasks = self.graph.tasks
        self.display.start(tasks, self.status, self.graph.upstream,
                           self.executor.columns, self.executor.cells)
        self._sync()
        os.makedirs(self.log_dir, exist_ok=True)
        # Log files there may be from earlier runs: a silent task must remove its own.
        self._old_logs = {name.rsplit(".", 1)[0] for name in os.listdir(self.log_dir)}
        self.executor.start(tasks, RunContext(state_dir=self.state.dir))
        interrupted = False
        # Tasks run in this process report progress straight to the table.
        progress.set_local_sink(self._local_progress)
        try:
            self._loop()
        except KeyboardInterrupt:
            interrupted = True
            self._interrupt()
        finally:
            progress.set_local_sink(None)
            self.executor.shutdown()
            self._drop_values()
            self._save()
            self._sync()
        self.display.finish(interrupted)
        if interrupted:
            code = EXIT_INTERRUPTED
        else:
            code = EXIT_OK if all(s.ok for s in self.status) else EXIT_FAILED
        self._write_last_run(code)
        if self.pipeline_hooks:
            results = tuple(self.results.get(i) or self._result(i) for i in range(len(tasks)))
            call_all(self.pipeline_hooks, PipelineResult(self.name, code == EXIT_OK, code, results),
                     self.display.note)
        self.display.close()
        return code

    # -- progress and hooks ---------------------------------------------------------------
    def _local_progress(self, i: int, snapshot: dict) -> None:
        self.display.progress(i, snapshot)
        self.display.tick()

    def _poll_progress(self) -> None:
        """On a terminal, read what running tasks in other processes last reported."""
        if not self.display.tty or self.display.quiet:
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + 0.2
        for i in self.running:
            snap = progress.read(self.log_of(i) + ".progress")
            if snap is not None:
                self.display.progress(i, snap)

    def _result(self, i: int) -> TaskResult:
        t = self.graph.tasks[i]
        ran = self.status[i] in (Status.FINISHED, Status.FAILED)
        log = self.log_of(i)
        return TaskResult(t.id, t.name, self.status[i],
                          read_all(log + ".out") if ran else "",
                          read_all(log + ".err") if ran else "",
                          self.durations.get(i), t.products, self.errors.get(i))

    def _final(self, i: int) -> None:
        if self.task_hooks or self.pipeline_hooks:
            self.results[i] = r = self._result(i)
            call_all(self.task_hooks, r, self.display.note)

    def _write_last_run(self, code: int) -> None:
        """The final table, for ``depio-like status`` to show without running anything:
        every row for a small pipeline, for a large one the counts and the rows that
        did not end well (writing 10,000 rows would cost more than a no-op run)."""
        n = len(self.graph.tasks)
        limit = self.display.max_rows
        keep = range(n) if n <= limit else \
            [i for i, st in enumerate(self.status) if not st.ok][:limit]
        headers, rows = self.display.table(keep)
        counts: dict[str, int] = {}
        for st in self.status:
            counts[st.value] = counts.get(st.value, 0) + 1
        data = {"finished": time.strftime("%Y-%m-%d %H:%M:%S"), "exit_code": code,
                "cwd": os.getcwd(), "tasks": n, "counts": counts, "headers": headers,
                "rows": rows, "logs": [self.log_of(i) for i in keep]}
        self.state.write_last_run(data)

    # -- the loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        sched, ex = self.sched, self.executor
        while not sched.done:
            while (i := sched.pop_ready()) is not None:
                self._decide(i)
            batch: list[int] = []
            while sched.has_runnable() and ex.free_slots() > len(batch):
                head = sched.pop_runnable()
                if self._values_ready(head):
                    batch.append(head)
            if batch:
                # Recorded before the tasks touch their products: if we die while they
                # write, the next run knows those products may be partial.
                for head in batch:
                    for m in self._unit(head):
                        key = self.graph.tasks[m].record_key
                        if key in self.state.records:  # a record that may go stale
                            self.state.mark_started(key)
                self._save()
                for head in batch:
                    self._dispatch(head)
            if sched.done:
                break
            self._save()
            self._poll_progress()
            self.display.tick()
            deadline = self.display.deadline()
            events = ex.wait(deadline)
            if not events and deadline is None and self.in_flight:
                # wait() without a timeout returns only with news or with nothing left to
                # run: tasks it never reported would keep this loop spinning.
                for i in sorted(self.in_flight):
                    events.append(Outcome(i, False, error=f"the executor "
                                          f"{type(ex).__name__} lost track of this task"))
            for event in events:
                if isinstance(event, Started):
                    if event.index in self.in_flight:
                        self._changed(event.index, Status.RUNNING)
                elif event.index in self.in_flight:  # an ended task's second report: ignored
                    self._ended(event)

    def _unit(self, i: int) -> tuple[int, ...]:
        return self.graph.units[self.graph.unit_of[i]]

    def _decide(self, head: int) -> None:
        """The head of a unit is ready: skip the unit, or queue it to run."""
        unit = self._unit(head)
        decisions = [self.planner.check(m) for m in unit]
        failing = next((k for k, d in enumerate(decisions) if d.fail), None)
        if failing is not None:  # e.g. BuildMode.NEVER with a product missing
            bad = unit[failing]
            for m in unit:
                self.sched.started(m)
            self._fail(bad, decisions[failing].fail or "", [m for m in unit if m != bad])
            return
        if not any(d.run for d in decisions):
            for m in unit:  # all taken first, so none becomes ready on its own
                self.sched.started(m)
            for m in unit:
                self._succeeded(m, Status.SKIPPED)
            return
        for m, d in zip(unit, decisions):
            if not d.run:  # up to date, but the chain's values are only made by running it
                d.run, d.reasons = True, (Reason(Why.UPSTREAM, self.graph.tasks[unit[0]].label),)
            self.decisions[m] = d
            if self.explain:
                self.display.explain(m, "RUN", str(d))
        self.sched.runnable(head)

    def _values_ready(self, head: int) -> bool:
        """Make sure every value the unit takes from outside exists; if a producer was
        skipped (its value is not kept between runs), run it again first."""
        unit = self._unit(head)
        missing = sorted({p for m in unit for p in self.graph.values[m]
                          if p not in unit and p not in self.values})
        if not missing:
            return True
        reopened = 0
        for p in missing:
            if self.status[p].ok:  # skipped: run its unit again
                reason = Reason(Why.VALUE_NEEDED, self.graph.tasks[head].label)
                punit = self._unit(p)
                for m in punit:
                    d = self.planner.check(m)
                    d.run, d.reasons = True, d.reasons + (reason,)
                    self.decisions[m] = d
                    self.sched.reopen(m, queue=(m == punit[0]))
                    self._changed(m, Status.PENDING)
            reopened += 1  # reopened now, or already on its way
        self.sched.wait_for(head, reopened)
        self._changed(head, Status.WAITING)
        return False

    def _dispatch(self, head: int) -> None:
        unit = self._unit(head)
        steps = []
        for m in unit:
            self.planner.before_run(m)
            self.attempts[m] = self.attempts.get(m, 0) + 1
            self.sched.started(m)
            outside = sorted(self.outside.get(m, ()))
            # Fingerprints name work for re-attaching and value files; skip them otherwise.
            fp = self.planner.fingerprint(m, self.decisions[m]) \
                if self.executor.reattaches or outside else ""
            log = self.log_of(m)
            steps.append(Step(m, self.graph.tasks[m], fp,
                              tuple(self.graph.tasks[c].label for c in outside), log,
                              os.path.basename(log) in self._old_logs))
            self.in_flight.add(m)
        tasks = self.graph.tasks
        inputs = {tasks[p].id: self.values[p] for m in unit for p in self.graph.values[m]
                  if p not in unit}
        queued = self.executor.queues
        self._changed(head, Status.PENDING if queued else Status.RUNNING)
        for m in unit[1:]:
            self._changed(m, Status.PENDING)
        self.executor.submit(Job(steps, inputs))

    def log_of(self, i: int) -> str:
        """Where task ``i``'s output goes (+ ".out" / ".err"): stable across runs."""
        log = self._logs[i]
        if log is None:
            log = self._logs[i] = task_log(self.log_dir, self.graph.tasks[i])
        return log

    # -- outcomes ----------------------------------------------------------------------
    def _ended(self, o: Outcome) -> None:
        self.in_flight.discard(o.index)
        if o.printed:  # its log files exist now, whatever comes next
            self._old_logs.add(os.path.basename(self.log_of(o.index)))
        self._record_outcome(o)
        if o.printed:
            self._show_output(o.index)

    def _record_outcome(self, o: Outcome) -> None:
        i = o.index
        t = self.graph.tasks[i]
        if o.ok:
            missing = self.planner.missing_products(i, o.products)
            if missing:
                paths = ", ".join(show_path(p) for p in missing)
                if isinstance(o.value, ValueFile):  # a value nobody will take
                    self._remove_value_file(o.value)
                o = Outcome(i, False, error=f"task {t.label} returned without creating its "
                            f"declared product(s): {paths}", duration=o.duration,
                            printed=o.printed)
        unit = self._unit(i)
        later = unit[unit.index(i) + 1:]
        if o.ok:
            decision = self.decisions.pop(i)
            if i != unit[0]:
                # It started when the task before it in the chain ended: take its inputs
                # and upstream state as they are now, not as they were at dispatch (the
                # hasher re-reads a file only if its stat changed).
                fresh = self.planner.check(i)
                decision.inputs, decision.upstream = fresh.inputs, fresh.upstream
            record = self.planner.new_record(i, decision, o.duration, o.products)
            self.state.put_record(t.record_key, record)
            if i in self.waiting_values:
                self.values[i] = o.value
            self._succeeded(i, Status.FINISHED, o.duration)
            if later and not self.executor.queues:
                self._changed(later[0], Status.RUNNING)
            return
        retries = t.retries if t.retries is not None else self.executor.retries
        if i == unit[0] and len(unit) == 1 and self.attempts.get(i, 1) <= retries:
            self.display.note(f"RETRY     {t.label} (attempt {self.attempts[i] + 1} of "
                              f"{retries + 1}) after: {_last_line(o.error)}")
            self.sched.runnable(i)
            self._changed(i, Status.PENDING)
            return
        self.decisions.pop(i, None)
        self._discard_products(i)
        log = self.log_of(i)
        where = f"\n(output: {show_path(log)}.out, {show_path(log)}.err)" \
            if o.printed and os.path.exists(log + ".err") else ""
        self._fail(i, (o.error or "failed") + where, later)

    def _fail(self, i: int, error: str, others: Sequence[int] = ()) -> None:
        """``i`` failed: everything downstream of it, and ``others`` (the rest of its chain,
        which cannot run without it), is DEPFAILED."""
        self._changed(i, Status.FAILED, error=error)
        self._release_inputs(i)
        for j in self.sched.failed(i):
            self._changed(j, Status.DEPFAILED, cause=i)
            self._release_inputs(j)
        for m in others:
            self.decisions.pop(m, None)
            self._changed(m, Status.DEPFAILED, cause=i)
            self._release_inputs(m)
            for j in self.sched.failed(m, Status.DEPFAILED):
                self._changed(j, Status.DEPFAILED, cause=i)
                self._release_inputs(j)

    def _show_output(self, i: int) -> None:
        """Print what the task printed, as one block (never interleaved with others)."""
        if not self.show_output:
            return
        log = self.log_of(i)
        parts = []
        for ext in (".out", ".err"):
            text = read_tail(log + ext, SHOWN_LINES)
            if text:
                parts.append(text)
        if parts:
            t = self.graph.tasks[i]
            self.display.note(f"--- output of {t.label} ---\n" + "\n".join(parts).rstrip("\n"))

    def _release_inputs(self, c: int) -> None:
        """Consumer ``c`` has ended: values nobody else waits for are dropped."""
        for p in self.graph.values[c]:
            waiting = self.waiting_values.get(p)
            if waiting is None or c not in waiting:
                continue
            waiting.discard(c)
            if not waiting:
                self._drop_value(p)

    def _drop_value(self, p: int) -> None:
        v = self.values.pop(p, None)
        if isinstance(v, ValueFile):
            self._remove_value_file(v)

    @staticmethod
    def _remove_value_file(v: ValueFile) -> None:
        try:
            os.remove(v.path)
        except OSError:
            pass

    def _drop_values(self) -> None:
        for p in list(self.values):
            self._drop_value(p)

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
        self._release_inputs(i)

    def _changed(self, i: int, status: Status, **info: Any) -> None:
        if status is Status.RUNNING:
            self.running.add(i)
        else:
            self.running.discard(i)
            if status.done:
                self.in_flight.discard(i)
        self.status[i] = status
        self.graph.tasks[i].status = status
        if info.get("duration") is not None:
            self.durations[i] = info["duration"]
        if info.get("error"):
            self.errors[i] = info["error"]
        self.display.changed(i, status, **info)
        if status.done:
            self._final(i)

    def _interrupt(self) -> None:
        cancelled = self.executor.cancel()
        for i in cancelled:
            self._discard_products(i)
        self.in_flight.clear()
        for i in self.sched.cancel_rest():
            self.running.discard(i)
            self.graph.tasks[i].status = Status.CANCELLED
            self._final(i)
        self.display.note(f"Interrupted: stopped {len(cancelled)} running task(s); "
                          "nothing more was started.")

    def _save(self) -> None:
        self.state.put_files(self.hasher.fresh)
        self.state.flush()

    def _sync(self) -> None:
        for t, s in zip(self.graph.tasks, self.status):
            t.status = s


def recorded_durations(graph: TaskGraph, records: dict[str, dict[str, Any]]) -> list[float]:
    """How long each task took when it last ran; one never timed counts as the mean."""
    got = []
    for t in graph.tasks:
        r = records.get(t.record_key)
        d = r.get("t") if r is not None else None
        got.append(float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None)
    known = [d for d in got if d is not None]
    mean = sum(known) / len(known) if known else 1.0
    return [mean if d is None else d for d in got]


def _last_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no error message"
