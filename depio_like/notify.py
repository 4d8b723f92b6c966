"""Who hears of a task's new status during a run: the table, the value store, the user's
hooks; and what a failed task leaves behind (``delete_on_error``). The plan decides every
status; this only passes the news on, in the order the plan gave it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .channel import ValueStore
from .display import Display
from .fs import Disk, remove_files
from .hooks import RunHooks
from .logs import TaskLogs
from .options import PipelineSettings
from .plan import Changed, Statuses
from .status import Flags, Status


class StatusNews:
    """Passes the plan's status changes on (``dry``: a preview, no hooks, nothing removed).
    ``ran`` holds the tasks an executor reported on: only they have output, only what they
    wrote is removed."""

    def __init__(
        self,
        tasks: Sequence[Any],
        status: Sequence[Status],
        display: Display,
        values: ValueStore,
        logs: TaskLogs,
        disk: Disk,
        settings: PipelineSettings,
        dry: bool,
    ) -> None:
        self.tasks, self.display, self.values, self.disk = tasks, display, values, disk
        self.dry, self.delete_on_error = dry, settings.delete_on_error
        self.ran = Flags(len(tasks))
        self.hooks = RunHooks(
            tasks,
            status,
            self.ran,
            logs,
            () if dry else settings.on_task_finished,
            () if dry else settings.on_pipeline_finished,
            display.note,
        )
        # Without hooks, a skipped task is only counted (by the table) and settled (values).
        self._quiet_skips = not self.hooks.active
        self._hooked = self.hooks.active

    def changed(self, a: Changed) -> None:
        i, st = a.index, a.status
        if st is Status.FINISHED and not self.dry:  # the other change of every task run
            self.display.finished(i, a.duration)  # (a FINISHED has no error)
            self.values.ended(i, True)
            if self._hooked:
                self.hooks.changed(i, True, a.duration, None)
            return
        self.display.track(i, st)
        if st is Status.RUNNING:  # only the table shows it (no line, no value, no hook)
            return
        if st is Status.SKIPPED and self._quiet_skips:  # most of a no-op run: only count it
            self.values.ended(i, False)
            return
        if self.dry and st is Status.FAILED:
            self.display.explain(i, "WOULD-FAIL", a.error or "")
        elif not self.dry:
            self.display.changed(i, st, duration=a.duration, error=a.error, cause=a.cause)
        if st is Status.PENDING:
            self.values.reopened(i)
        if st.done:
            self.values.ended(i, st is not Status.SKIPPED)
            if st is Status.FAILED and i in self.ran:
                self.discard(i)
        self.hooks.changed(i, st.done, a.duration, a.error)

    def running(self, i: int) -> None:
        """``changed`` for task ``i`` now RUNNING (said by a ``Dispatch``)."""
        self.display.running(i)

    def statuses(self, a: Statuses) -> None:
        """Many tasks at once, with no hook to tell (the plan batches only then)."""
        self.display.track_all(a.indices, a.status)
        if a.status is Status.SKIPPED:
            self.values.ended_all(a.indices)
        else:
            self.values.reopened_all(a.indices)

    def discard(self, i: int) -> None:
        """With ``delete_on_error``, remove what a failed task may have half written."""
        if self.delete_on_error:
            remove_files(self.disk, self.tasks[i].products)
