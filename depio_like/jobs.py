"""What a dispatched unit becomes for its executor: a ``Job`` of ``Step``s, each with what
the executor needs besides the task (its fingerprint, who takes its value, its log files,
how long it took last time) and the values the job takes from outside it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from .channel import ValueStore
from .decision import Decision
from .executors.base import Job, Step
from .graph import TaskGraph
from .logs import TaskLogs
from .staleness import Checker


class JobMaker:
    """Makes the jobs of one run. ``expected``: seconds each task took when it last ran
    (None: never), for an executor that groups short tasks by them (Slurm); ``fingerprints``:
    the executor re-attaches to work by them (otherwise only value files need one);
    ``logs_late``: a step's log path may be a function making it (``LogPath``), for an
    executor that names logs late: most tasks print nothing and never need it."""

    def __init__(
        self,
        graph: TaskGraph,
        checker: Checker,
        values: ValueStore,
        logs: TaskLogs,
        expected: Sequence[float | None] | None,
        fingerprints: bool,
        logs_late: bool = False,
    ) -> None:
        self.graph, self.checker, self.values, self.logs = graph, checker, values, logs
        self.expected, self.fingerprints = expected, fingerprints
        self.logs_late = logs_late
        self._base = logs.base  # one bound method for every late name

    def job(
        self,
        unit: Sequence[int],
        decisions: Sequence[Decision],
        values_from: Sequence[int] | None = None,
    ) -> Job:
        """The job of ``unit``; ``values_from``: the producers outside it whose values it
        takes, if known (the plan's ``Dispatch`` says: none, for most)."""
        tasks, logs, expected = self.graph.tasks, self.logs, self.expected
        steps = []
        for m, d in zip(unit, decisions, strict=True):
            exports = self.values.takers(m)
            fp = self.checker.fingerprint(m, d) if self.fingerprints or exports else ""
            old = logs.may_exist(m)
            steps.append(
                Step(
                    m,
                    tasks[m],
                    fp,
                    tuple([tasks[c].label for c in exports]) if exports else (),
                    partial(self._base, m) if self.logs_late and not old else logs.base(m),
                    old,
                    expected[m] if expected is not None else None,
                )
            )
        if values_from is not None and not values_from:
            return Job(steps, {})
        inputs = self.values.inputs(unit)
        values = {tasks[p].id: v for p, v in inputs.items()} if inputs else {}
        return Job(steps, values)  # type: ignore[arg-type]  # a run's tasks have their ids
