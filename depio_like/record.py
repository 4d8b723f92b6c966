"""The record phase: what a run writes down about its tasks, and when.

A task about to write its products is marked started (so that a kill midway leaves its
products known to be partial); a task reported done is checked (its declared products
exist, its postconditions hold) before its record, with the inputs it was decided on, goes
to the state; new file digests follow in batches. A dry run records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .decision import Decision
from .display import Display
from .executors.base import Outcome
from .graph import TaskGraph
from .paths import show_path
from .staleness import Checker
from .state import State, last_run_summary
from .status import Status


class Recorder:
    """Writes the records of one run's tasks (``dry``: none)."""

    def __init__(self, graph: TaskGraph, checker: Checker, state: State, dry: bool) -> None:
        self.graph, self.checker, self.state, self.dry = graph, checker, state, dry

    def starting(self, units: Sequence[Sequence[int]]) -> None:
        """The tasks of ``units`` are about to run. Recorded before they touch their
        products: if we die while they write, the next run knows those products may be
        partial. Their products' old digests are forgotten and their directories made."""
        if self.dry:
            return
        tasks, records = self.graph.tasks, self.state.records
        marked = False
        for unit in units if records else ():  # a first run: no task has a record
            for m in unit:
                key = tasks[m].record_key
                if key in records:
                    self.state.mark_started(key)
                    marked = True
        if marked:
            self.save()  # written now: a task above had a record (mark_started)
        before_run = self.checker.before_run
        for unit in units:
            for m in unit:
                before_run(m)

    def checked(self, o: Outcome) -> tuple[Outcome, dict[str, Any]]:
        """``o`` as it stands once its task's products and postconditions are checked (a
        success that left a product missing or a condition unmet becomes a failure), and
        the stat of its products, for ``record``."""
        if not o.ok or self.dry:
            return o, {}
        i = o.index
        missing, stats = self.checker.missing_products(i, o.products)
        # after_run, called only for a task with postconditions (most have none).
        unmet = self.checker.after_run(i) if self.graph.tasks[i].ensure and not missing else None
        if not (missing or unmet):
            return o, stats
        label = self.graph.tasks[i].label
        error = unmet or (
            f"task {label} returned without creating its declared product(s): "
            + ", ".join(show_path(p) for p in missing)
        )
        return Outcome(i, False, error=error, duration=o.duration, printed=o.printed), stats

    def record(
        self,
        o: Outcome,
        d: Decision,
        head: bool,
        stats: dict[str, Any],
        failed_upstream: Iterable[int],
    ) -> None:
        """Write the record of ``o``'s task having succeeded on decision ``d``. ``head``:
        it is the first task of its unit (the rest of a chain had their inputs read by the
        process that ran them, just before each)."""
        i, tasks = o.index, self.graph.tasks
        if self.dry:
            if not d.only_for_value:  # its products would change: downstream reruns
                self.checker.assume_changed.add(i)
            return
        inputs = o.inputs if o.inputs is not None else d.inputs
        if not (self.graph.upstream[i] or (head and d.upstream)):
            # Nothing upstream (no stamps, no failed dependencies): the usual record, if
            # it is one, without new_record's general path.
            rec = self.checker.usual_record(i, o.duration, o.products, stats, inputs)
            if rec is not None:
                self.state.put_record(rec, self.checker.hasher.fresh)
                return
        upstream = d.upstream if head else self.checker.stamps(i)
        failed = (
            {tasks[j].record_key: tasks[j].label for j in failed_upstream}
            if self.graph.upstream[i]
            else None
        )
        self.state.put_record(
            self.checker.new_record(i, inputs, upstream, o.duration, o.products, stats, failed),
            self.checker.hasher.fresh,
        )

    def finish(
        self, code: int, status: Sequence[Status], display: Display, log: Callable[[int], str]
    ) -> int:
        """The run ended with exit ``code``: write the last-run summary (what ``depio-like
        status`` shows). A write that failed (a full disk) is said, and fails the run."""
        if self.dry:
            return code
        if self.state.write_error is None:
            self.state.write_last_run(
                last_run_summary(code, status, display.max_rows, display.table, log)
            )
        if self.state.write_error is not None:
            display.note(f"error: {self.state.write_error}")
            return 1 if code == 0 else code
        return code

    def before_wait(self, deadline: float | None, blocks: bool) -> float | None:
        """The run is about to wait for its executor until ``deadline`` (None: news): the
        deadline that lets records held back reach the disk in time. ``blocks``: the wait
        runs a task in this process, maybe for hours, so they are written now, or a kill
        would lose them."""
        due = self.state.flush_due()
        if due is None or self.dry:
            return deadline
        if blocks:
            self.state.flush()
            return deadline
        return due if deadline is None else min(deadline, due)

    def save(self, force: bool = False) -> None:
        """Hand new file digests and records to the state, written in batches (``force``:
        now)."""
        if not self.dry:
            fresh = self.checker.hasher.fresh
            if fresh:  # (most products are just written: none to keep)
                self.state.put_files(fresh)
            self.state.flush(force)
