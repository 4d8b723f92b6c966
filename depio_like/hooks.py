"""Hooks: functions the driver calls when a task or the pipeline finishes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .status import Status

if TYPE_CHECKING:
    from .logs import TaskLogs


@dataclass(frozen=True)
class TaskResult:
    """A task at its final status. ``stdout``/``stderr`` are what it printed in this run
    (empty if it did not run): all of it up to 1 MiB each, else its last MiB after a line
    saying so; ``log`` is where all of it is (``log + ".out"`` / ``".err"``), if it ran."""

    id: int
    name: str
    status: Status
    stdout: str
    stderr: str
    duration: float | None
    products: tuple[str, ...]
    error: str | None = None
    log: str | None = None


@dataclass(frozen=True)
class PipelineResult:
    """The whole run: ``success`` is exit code 0."""

    name: str
    success: bool
    exit_code: int
    tasks: tuple[TaskResult, ...]


Hook = Callable[[Any], Any]


def as_list(hooks: Hook | Sequence[Hook] | None) -> list[Hook]:
    """A hook, a list of hooks, or None, as a list."""
    if hooks is None:
        return []
    if callable(hooks):
        return [hooks]
    hooks = list(hooks)
    for h in hooks:
        if not callable(h):
            raise TypeError(f"a hook must be callable, got {type(h).__name__} {h!r}")
    return hooks


def call_all(hooks: Iterable[Hook], result: Any, report: Callable[[str], None]) -> None:
    """Call each hook; one that raises is reported and the others still run."""
    for hook in hooks:
        try:
            hook(result)
        except Exception as e:  # noqa: BLE001 - a user's hook must not stop the pipeline
            name = getattr(hook, "__qualname__", repr(hook))
            report(f"hook {name} raised {type(e).__name__}: {e} (the pipeline goes on)")


class RunHooks:
    """The hooks of one run: each task's ``TaskResult`` when it reaches a final status,
    the ``PipelineResult`` at the end. ``status`` is the run's live list of statuses and
    ``ran`` the tasks an executor reported on (only they have output); both are read here,
    never written. A hook that raises is reported with ``report``."""

    def __init__(
        self,
        tasks: Sequence[Any],
        status: Sequence[Status],
        ran: Container[int],
        logs: TaskLogs,
        on_task: Sequence[Hook],
        on_pipeline: Sequence[Hook],
        report: Callable[[str], None],
    ) -> None:
        self._tasks, self._status, self._ran, self._logs = tasks, status, ran, logs
        self._on_task, self._on_pipeline = list(on_task), list(on_pipeline)
        self._report = report
        self._results: dict[int, TaskResult] = {}
        self._durations: dict[int, float] = {}
        self._errors: dict[int, str] = {}

    @property
    def active(self) -> bool:
        """Whether any hook is set (else nothing need be kept for them)."""
        return bool(self._on_task or self._on_pipeline)

    def changed(self, i: int, done: bool, duration: float | None, error: str | None) -> None:
        """Task ``i`` has a new status (``done``: a final one)."""
        if not (self._on_task or self._on_pipeline):
            return
        if duration is not None:
            self._durations[i] = duration
        if error:
            self._errors[i] = error
        if done:
            self._results[i] = r = self._result(i)
            call_all(self._on_task, r, self._report)

    def finished(self, name: str, code: int) -> None:
        """The run is over with exit code ``code``."""
        if self._on_pipeline:
            results = tuple(
                self._results.get(i) or self._result(i) for i in range(len(self._tasks))
            )
            call_all(
                self._on_pipeline, PipelineResult(name, code == 0, code, results), self._report
            )

    def _result(self, i: int) -> TaskResult:
        t, ran = self._tasks[i], i in self._ran
        out, err = self._logs.output(i) if ran else ("", "")
        return TaskResult(
            t.id,
            t.name,
            self._status[i],
            out,
            err,
            self._durations.get(i),
            t.products,
            self._errors.get(i),
            self._logs.base(i) if ran else None,
        )


def make_save_hook(folder: str | os.PathLike) -> Callable[[TaskResult], None]:
    """A ready ``on_task_finished`` hook: each task that ran leaves its stdout and stderr in
    ``folder/<id>-<name>.out`` / ``.err``."""
    folder = os.fspath(folder)

    def save(result: TaskResult) -> None:
        if result.status not in (Status.FINISHED, Status.FAILED):
            return
        os.makedirs(folder, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.name)[:60] or "task"
        base = os.path.join(folder, f"{result.id}-{safe}")
        for ext, text in ((".out", result.stdout), (".err", result.stderr)):
            if result.log is not None and os.path.exists(result.log + ext):
                import shutil  # only here: not every run pays its import

                shutil.copyfile(result.log + ext, base + ext)  # all of it, in bounded memory
            else:
                with open(base + ext, "w", encoding="utf-8") as f:
                    f.write(text)

    save.__qualname__ = f"make_save_hook({folder!r})"
    return save
